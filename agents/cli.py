"""``scaleout agent serve|mcp|call``: serve agents over A2A + MCP, or one agent over MCP stdio."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the ``agent`` command group on the top-level ``scaleout`` parser."""
    agent = subparsers.add_parser("agent", help="serve agents (A2A + MCP) or call one")
    sub = agent.add_subparsers(dest="agent_command", required=True)

    serve = sub.add_parser("serve", help="serve agents from module:attr over A2A JSON-RPC, SSE and MCP")
    serve.add_argument("target", help="module:attr naming an Agent, a list of Agents, or a factory")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--public-url", help="base URL advertised in agent cards (default http://HOST:PORT)")
    serve.set_defaults(func=_serve)

    mcp = sub.add_parser("mcp", help="serve skills as MCP tools over stdio (tools of several agents: agent.skill)")
    mcp.add_argument("target", help="module:attr naming an Agent, a list of Agents, or a factory")
    mcp.set_defaults(func=_mcp)

    call = sub.add_parser("call", help="call a skill of a served agent: scaleout agent call URL SKILL JSON")
    call.add_argument("url", help="the agent's A2A endpoint URL")
    call.add_argument("skill", help="skill id ('-' for the agent's default skill)")
    call.add_argument("arguments", help="skill input as JSON (or plain text)")
    call.set_defaults(func=_call)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from agents.loading import load_agents
    from agents.serve import create_app

    agents = load_agents(args.target)
    base = args.public_url or f"http://{args.host}:{args.port}"
    app = create_app(agents, base_url=base)
    for agent in agents:
        print(f"{agent.name}: {app.state.agent_server.card_url(agent)}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _mcp(args: argparse.Namespace) -> int:
    import anyio

    from agents.loading import load_agents
    from agents.mcp import run_stdio

    agents = load_agents(args.target)
    anyio.run(run_stdio, agents[0] if len(agents) == 1 else agents)
    return 0


def _call(args: argparse.Namespace) -> int:
    import anyio

    from agents.client import HttpAgentClient, skill_message

    try:
        arguments: Any = json.loads(args.arguments)
    except json.JSONDecodeError:
        arguments = args.arguments

    async def main() -> int:
        async with HttpAgentClient(args.url) as client:
            task = await client.send_message(skill_message(None if args.skill == "-" else args.skill, arguments))
        print(json.dumps(task.wire(), indent=2))
        return 0 if task.status.state.value == "TASK_STATE_COMPLETED" else 1

    return anyio.run(main)
