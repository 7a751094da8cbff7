"""``scaleout agent serve|mcp|call``: serve agents over A2A + MCP, or one agent over MCP stdio."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from protocol.server_flags import (
    SettingsError,
    add_server_flags,
    announce,
    configure_observability,
    server_settings,
)

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Register the ``agent`` command group on the top-level ``scaleout`` parser."""
    agent = subparsers.add_parser("agent", help="serve agents (A2A + MCP) or call one")
    sub = agent.add_subparsers(dest="agent_command", required=True)

    serve = sub.add_parser("serve", help="serve agents from module:attr over A2A JSON-RPC, SSE and MCP")
    serve.add_argument("target", help="module:attr naming an Agent, a list of Agents, or a factory")
    serve.add_argument("--app-dir", default=".", help="directory to import the target from (default: the current one)")
    add_server_flags(serve, default_port=8000, max_body_bytes=1_000_000, what="these agents")
    serve.add_argument("--public-url", help="base URL advertised in agent cards (default http://HOST:PORT)")
    serve.add_argument(
        "--mcp-sessions-per-client",
        type=int,
        default=32,
        help="MCP sessions one client address may hold; a new one past that ends its least recently used idle one",
    )
    serve.add_argument(
        "--mcp-idle-timeout", type=float, default=300.0, help="seconds an MCP session may stay idle before it ends"
    )
    serve.add_argument(
        "--disconnect-grace-s",
        type=_grace,
        default=30.0,
        metavar="SECONDS|none",
        help="cancel a task this long after its last waiting caller went away (default 30: longer than an "
        "orchestrator replica's failover, so the replica taking over can adopt it); 'none' never cancels",
    )
    serve.set_defaults(func=_serve)

    mcp = sub.add_parser("mcp", help="serve skills as MCP tools over stdio (tools of several agents: agent.skill)")
    mcp.add_argument("target", help="module:attr naming an Agent, a list of Agents, or a factory")
    mcp.add_argument("--app-dir", default=".", help="directory to import the target from (default: the current one)")
    mcp.set_defaults(func=_mcp)

    call = sub.add_parser("call", help="call a skill of a served agent: scaleout agent call URL SKILL JSON")
    call.add_argument("url", help="the agent's A2A endpoint URL")
    call.add_argument("skill", help="skill id ('-' for the agent's default skill)")
    call.add_argument("arguments", help="skill input as JSON (or plain text)")
    call.add_argument(
        "--token", help="bearer token (default: $SCALEOUT_TOKEN, else $SCALEOUT_TOKEN_FILE or ~/.config/scaleout/token)"
    )
    call.add_argument("--ca-file", metavar="PEM", help="CA certificates to verify an https:// agent with")
    call.set_defaults(func=_call)


def _grace(value: str) -> float | None:
    """``--disconnect-grace-s``: seconds (>= 0), or ``none``."""
    if value.strip().lower() == "none":
        return None
    seconds = float(value)
    if not 0 <= seconds <= 86_400:
        raise argparse.ArgumentTypeError("give seconds between 0 and 86400, or 'none'")
    return seconds


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from agents.loading import load_agents
    from agents.serve import create_app
    from protocol.serving import serve
    from protocol.validation import describe_validation_error

    try:
        configure_observability(args, "scaleout-agent")
        settings = server_settings(args, default_public_url=True)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        agents = load_agents(args.target, app_dir=args.app_dir)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(
            agents,
            base_url=settings.public_url or settings.own_url,
            policy=settings.boundary,
            mcp_sessions_per_client=args.mcp_sessions_per_client,
            mcp_idle_timeout_s=args.mcp_idle_timeout,
            auth=settings.auth,
            host=settings.host,
            disconnect_grace_s=args.disconnect_grace_s,
        )
    except ValidationError as exc:
        print(f"error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:  # InsecureBind (beyond loopback without --jwks), a bad MCP setting
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for agent in agents:
        print(f"{agent.name}: {app.agent_server.card_url(agent)}", file=sys.stderr)
    announce(settings, "these agents")
    serve(app, settings.host, settings.port, settings.limits, tls=settings.tls, log_config=None)  # our logging
    return 0


def _mcp(args: argparse.Namespace) -> int:
    import anyio

    from agents.loading import load_agents
    from agents.mcp import run_stdio

    try:
        agents = load_agents(args.target, app_dir=args.app_dir)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    anyio.run(run_stdio, agents[0] if len(agents) == 1 else agents)
    return 0


def _call(args: argparse.Namespace) -> int:
    import anyio
    import httpx

    from agents.client import A2AError, HttpAgentClient, skill_message

    try:
        arguments: Any = json.loads(args.arguments)
    except json.JSONDecodeError:
        arguments = args.arguments

    async def main() -> int:
        async with HttpAgentClient(args.url, token=args.token, ca_file=args.ca_file) as client:
            task = await client.send_message(skill_message(None if args.skill == "-" else args.skill, arguments))
        print(json.dumps(task.wire(), indent=2))
        return 0 if task.status.state.value == "TASK_STATE_COMPLETED" else 1

    try:
        return anyio.run(main)
    except A2AError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except httpx.HTTPError as exc:
        print(f"error: cannot call {args.url}: {exc}", file=sys.stderr)
    except OSError as exc:  # e.g. an unreadable --ca-file
        print(f"error: {exc}", file=sys.stderr)
    return 1
