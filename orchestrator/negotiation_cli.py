"""``scaleout negotiate SPEC.json``: start a negotiation on an orchestrator, follow its steps, print its outcome.

The file holds a ``NegotiationSpec`` as JSON (docs/negotiation.md, "Negotiations are runs"). Exit status: 0 when
the run succeeded (an agreement, an award, or no agreement), 1 when it failed, 2 when the orchestrator refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio

__all__ = ["add_parser", "describe_step"]

_EXAMPLE = (
    "example:\n  scaleout negotiate spec.json --url http://127.0.0.1:8100   (spec.json: a NegotiationSpec, "
    "docs/negotiation.md)"
)


def add_parser(subparsers: Any) -> None:
    """Register ``negotiate`` on the top-level ``scaleout`` parser."""
    from orchestrator.cli import _URL_HELP, _add_client_flags

    negotiate = subparsers.add_parser(
        "negotiate",
        help="start a negotiation from a JSON spec and follow it",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    negotiate.add_argument("spec", help="a JSON file holding a NegotiationSpec")
    negotiate.add_argument("--no-wait", action="store_true", help="print the run id and return")
    negotiate.add_argument("--url", help=_URL_HELP)
    _add_client_flags(negotiate)
    negotiate.set_defaults(func=_negotiate)


def describe_step(kind: str, data: dict[str, Any]) -> str:
    """One line for a negotiation event (the rest of a run's events: the kind and its error, if any)."""
    if kind == "negotiation.started":
        names = ", ".join(f"{p['name']} ({p['role']})" for p in data.get("parties", []))
        return f"{data.get('protocol')} among {names}"
    if kind == "negotiation.offer":
        by = data.get("move", "") + (", overruled" if data.get("overruled") else "")
        move = f"round {data['round']} {data['sender']} -> {data['receiver']}: {data['offer']}"
        return f"{move} ({by}) {data['response']}"
    if kind == "negotiation.bid":
        verdict = "valid" if data.get("valid") else f"not valid: {data.get('reason')}"
        return f"{data['bidder']} bids {data.get('price')} for {data['item']} ({verdict})"
    if kind == "negotiation.award":
        return f"{data['item']} awarded to {data.get('winner')} at {data.get('price')}"
    if kind == "negotiation.ended":
        return f"{data['outcome']}: {data.get('agreement')} ({data.get('reason', '')})"
    return str(data.get("error") or "")


def _negotiate(args: argparse.Namespace) -> int:
    from orchestrator.cli import _client
    from orchestrator.client import OrchestratorError

    path = Path(args.spec)
    try:
        spec = json.loads(path.read_text())
    except OSError as exc:
        raise SystemExit(f"error: cannot read the negotiation file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise SystemExit(f"error: the negotiation file {path} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise SystemExit(f"error: {path} must hold a JSON object: a NegotiationSpec")

    async def go() -> int:
        async with _client(args) as client:
            try:
                run_id = await client.start_negotiation(spec)
                print(run_id if args.no_wait else f"negotiation run {run_id}", file=sys.stdout)
                if args.no_wait:
                    return 0
                async for event in client.events(run_id):
                    print(f"{event['seq']:>5} {event['kind']:<20} {describe_step(event['kind'], event['data'])}")
                record = await client.get_run(run_id)
            except OrchestratorError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(json.dumps({"id": run_id, "status": record["status"], "output": record.get("output")}, indent=2))
            return 0 if record["status"] == "succeeded" else 1

    return anyio.run(go)
