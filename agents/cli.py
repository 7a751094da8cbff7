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
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="also answer to this Host header (repeatable; 'name:*' = any port). Default: loopback names, the bind "
        "host and the public URL's host; any other Host gets 421",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept requests from web pages at this Origin (repeatable, e.g. https://app.example.org); "
        "other origins get 403",
    )
    serve.add_argument(
        "--max-body-bytes", type=int, default=1_000_000, help="largest request body accepted (413 past it)"
    )
    serve.add_argument(
        "--header-timeout", type=float, default=10.0, help="seconds a client may take to send a request's head"
    )
    serve.add_argument(
        "--mcp-sessions-per-client",
        type=int,
        default=32,
        help="MCP sessions one client address may hold; a new one past that ends its least recently used idle one",
    )
    serve.add_argument(
        "--mcp-idle-timeout", type=float, default=300.0, help="seconds an MCP session may stay idle before it ends"
    )
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
    from pydantic import ValidationError

    from agents.loading import load_agents
    from agents.serve import create_app
    from protocol.boundary import BoundaryPolicy
    from protocol.serving import ServerLimits, serve
    from protocol.validation import describe_validation_error

    agents = load_agents(args.target)
    base = args.public_url or f"http://{_url_host(args.host)}:{args.port}"
    try:
        policy = BoundaryPolicy.for_bind(
            args.host,
            args.port,
            public_url=base,
            allow_hosts=args.allow_host,
            allow_origins=args.allow_origin,
            max_body_bytes=args.max_body_bytes,
        )
        limits = ServerLimits(header_timeout_s=args.header_timeout)
        app = create_app(
            agents,
            base_url=base,
            policy=policy,
            mcp_sessions_per_client=args.mcp_sessions_per_client,
            mcp_idle_timeout_s=args.mcp_idle_timeout,
        )
    except ValidationError as exc:
        print(f"error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for agent in agents:
        print(f"{agent.name}: {app.agent_server.card_url(agent)}", file=sys.stderr)
    serve(app, args.host, args.port, limits)
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


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
