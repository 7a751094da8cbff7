"""``scaleout agent serve|mcp|call``: serve agents over A2A + MCP, or one agent over MCP stdio."""

from __future__ import annotations

import argparse
import json
import os
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
    serve.add_argument(
        "--jwks",
        metavar="FILE",
        help="JWKS file of the keys callers' bearer tokens are signed with ('scaleout auth keygen' writes one); "
        "required to bind beyond loopback. Without it every caller on this machine may call the agents",
    )
    serve.add_argument("--audience", default="scaleout", help="the audience tokens must name (default scaleout)")
    serve.add_argument("--issuer", help="the issuer tokens must name (default: any)")
    serve.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate chain (with --tls-key)")
    serve.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    serve.set_defaults(func=_serve)

    mcp = sub.add_parser("mcp", help="serve skills as MCP tools over stdio (tools of several agents: agent.skill)")
    mcp.add_argument("target", help="module:attr naming an Agent, a list of Agents, or a factory")
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


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from agents.loading import load_agents
    from agents.serve import create_app
    from protocol.auth import AuthSettings
    from protocol.boundary import BoundaryPolicy
    from protocol.serving import ServerLimits, TlsFiles, serve
    from protocol.validation import describe_validation_error

    if (args.tls_cert is None) != (args.tls_key is None):
        print("error: --tls-cert and --tls-key go together: pass both to serve HTTPS", file=sys.stderr)
        return 2
    tls = TlsFiles(cert=args.tls_cert, key=args.tls_key) if args.tls_cert and args.tls_key else None
    unreadable = [path for path in (args.tls_cert, args.tls_key) if path and not os.access(path, os.R_OK)]
    if unreadable:
        print(f"error: cannot read {unreadable[0]} (--tls-cert/--tls-key)", file=sys.stderr)
        return 2
    agents = load_agents(args.target)
    scheme = "https" if tls else "http"
    base = args.public_url or f"{scheme}://{_url_host(args.host)}:{args.port}"
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
            auth=AuthSettings(jwks_file=args.jwks, audience=args.audience, issuer=args.issuer),
            host=args.host,
        )
    except ValidationError as exc:
        print(f"error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for agent in agents:
        print(f"{agent.name}: {app.agent_server.card_url(agent)}", file=sys.stderr)
    if args.jwks is None:
        print(
            "warning: no --jwks: callers are not authenticated; any process on this machine may call these agents "
            "(pass --jwks FILE to require bearer tokens)",
            file=sys.stderr,
        )
    serve(app, args.host, args.port, limits, tls=tls)
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
