"""``scaleout agent serve|mcp|call``: serve agents over A2A + MCP, or one agent over MCP stdio."""

from __future__ import annotations

import argparse
import json
import os
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
    serve.add_argument(
        "--signing-key",
        metavar="FILE",
        default=os.environ.get("SCALEOUT_AGENT_KEY"),
        help="Ed25519 private key to sign the agent cards with (scaleout agent keygen makes one; default "
        "$SCALEOUT_AGENT_KEY); its public key is served at /.well-known/jwks.json",
    )
    serve.add_argument(
        "--a2a-v03-card",
        action="store_true",
        default=os.environ.get("SCALEOUT_A2A_V03_CARD", "").strip() in ("1", "true", "yes"),
        help="also put the A2A 0.3 card fields (url, preferredTransport, protocolVersion) on the served card, for "
        "0.3 clients that read only those (default $SCALEOUT_A2A_V03_CARD; off: strict 1.0 card schemas refuse them)",
    )
    serve.set_defaults(func=_serve)

    keygen = sub.add_parser("keygen", help="make an agent's Ed25519 identity key; prints the public JWK")
    keygen.add_argument("--out", required=True, metavar="FILE", help="where to write the private key (mode 0600)")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing key file")
    keygen.set_defaults(func=_keygen)

    mcp = sub.add_parser("mcp", help="serve skills as MCP tools over stdio (tools of several agents: agent.skill)")
    mcp.add_argument("target", help="module:attr naming an Agent, a list of Agents, or a factory")
    mcp.add_argument("--app-dir", default=".", help="directory to import the target from (default: the current one)")
    mcp.set_defaults(func=_mcp)

    call = sub.add_parser("call", help="call a skill of a served agent: scaleout agent call URL SKILL JSON")
    call.add_argument("url", help="the agent's A2A endpoint URL")
    call.add_argument("skill", help="skill id ('-' for the agent's default skill)")
    call.add_argument("arguments", help='skill input as JSON; text not starting with { [ or " is sent as plain text')
    call.add_argument("--json", action="store_true", help="print the whole A2A task (status, history, artifacts)")
    call.add_argument(
        "--token", help="bearer token (default: $SCALEOUT_TOKEN, else $SCALEOUT_TOKEN_FILE or ~/.config/scaleout/token)"
    )
    call.add_argument("--ca-file", metavar="PEM", help="CA certificates to verify an https:// agent with")
    call.set_defaults(func=_call)
    for name, command in {"agent": agent, **sub.choices}.items():  # every command's --help ends with an example
        command.epilog = command.epilog or _EXAMPLES.get(name)
        command.formatter_class = argparse.RawDescriptionHelpFormatter


_EXAMPLES = {
    "agent": "examples:\n  scaleout agent serve mymodule:triage --port 8000\n"
    '  scaleout agent call http://127.0.0.1:8000 classify \'{"text": "my pump leaks"}\'',
    "serve": "example:\n  scaleout agent serve mymodule:triage --port 8000",
    "keygen": "example:\n  scaleout agent keygen --out agent-key.pem",
    "mcp": "example:\n  scaleout agent mcp mymodule:triage",
    "call": 'examples:\n  scaleout agent call http://127.0.0.1:8000 classify \'{"text": "my pump leaks"}\'\n'
    "  scaleout agent call http://127.0.0.1:8000 - 'hello' --json",
}


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
    from protocol.auth import SigningKey
    from protocol.serving import PortInUse, check_port, serve
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
        signing_key = SigningKey.load(args.signing_key) if args.signing_key else None
    except (OSError, ValueError) as exc:
        print(f"error: cannot load the signing key {args.signing_key}: {exc}", file=sys.stderr)
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
            signing_key=signing_key,
            v03_card=args.a2a_v03_card,
        )
    except ValidationError as exc:
        print(f"error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:  # InsecureBind (beyond loopback without --jwks), a bad MCP setting
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        check_port(settings.host, settings.port)  # before anything is printed
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for agent in agents:
        print(f"{agent.name}: {app.agent_server.card_url(agent)}", file=sys.stderr)
    announce(settings, "these agents")
    serve(app, settings.host, settings.port, settings.limits, tls=settings.tls, log_config=None)  # our logging
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from pathlib import Path

    from protocol.auth import SigningKey

    if Path(args.out).exists() and not args.force:
        print(f"error: {args.out} exists; pass --force to replace it (the agents' identity changes)", file=sys.stderr)
        return 2
    key = SigningKey.generate()
    try:
        key.save(args.out)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(key.jwk()))
    print(f"wrote the private key to {args.out}; serve with --signing-key {args.out}", file=sys.stderr)
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
    from protocol.cli_errors import ArgumentError, describe_failure, json_argument

    try:
        example = f"""scaleout agent call {args.url} {args.skill} '{{"text": "hello"}}'"""
        arguments: Any = json_argument(args.arguments, "the skill input", example)
    except ArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        async with HttpAgentClient(args.url, token=args.token, ca_file=args.ca_file) as client:
            task = await client.send_message(skill_message(None if args.skill == "-" else args.skill, arguments))
        print(json.dumps(task.wire(), indent=2) if args.json else _result(task))
        return 0 if task.status.state.value == "TASK_STATE_COMPLETED" else 1

    hint = "start it with 'scaleout agent serve MODULE:AGENT' or check the URL"
    try:
        return anyio.run(main)
    except A2AError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (httpx.HTTPError, OSError) as exc:  # OSError: e.g. an unreadable --ca-file
        print(f"error: {describe_failure(exc, url=args.url, server_hint=hint)}", file=sys.stderr)
    return 1


def _result(task: Any) -> str:
    """A task as a person reads it: each artifact's data (JSON) or text, then the final state (and its message)."""
    lines: list[str] = []
    for artifact in task.artifacts or ():
        for part in artifact.parts:
            if part.data is not None:
                lines.append(json.dumps(part.data, indent=2))
            elif part.text is not None:
                lines.append(part.text)
    state = task.status.state.value.removeprefix("TASK_STATE_").lower()
    message = task.status.message
    said = " ".join(p.text for p in message.parts if p.text) if message is not None else ""
    lines.append(f"state: {state}" + (f" ({said})" if said and state != "completed" else ""))
    return "\n".join(lines)
