"""``scaleout runs answer RUN TASK --input JSON``: answer the question a task of a run waits on;
``scaleout runs approve RUN TASK [--reject] [--comment TEXT]``: decide on the output a task holds for approval.

Exit status: 0 when the agent has the answer (the decision is taken), 2 when the orchestrator refused it (unknown
run, the task does not wait, the answer fails the question's schema, the caller may not decide: the message says
which).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio

from protocol.cli_errors import json_argument

__all__ = ["add_parser"]

_APPROVE_EXAMPLE = (
    "example:\n  scaleout runs approve 3f2a... contract --comment 'within budget'\n"
    "  scaleout runs approve 3f2a... contract --reject --comment 'too expensive, ask another supplier'\n"
    "  (the held output: scaleout runs show RUN, or the run's task.approval_requested event)"
)
_EXAMPLE = (
    'example:\n  scaleout runs answer 3f2a... ship --input \'{"plant": "north"}\'\n'
    "  (the question and its schema: scaleout runs show RUN, or the run's task.waiting event)"
)


def add_parser(runs_sub: Any) -> None:
    """Register ``answer`` and ``approve`` under ``scaleout runs``."""
    from orchestrator.cli import _URL_HELP, _add_client_flags

    answer = runs_sub.add_parser(
        "answer",
        help="answer the question a task waits on",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    answer.add_argument("run_id")
    answer.add_argument("task_id")
    answer.add_argument("--input", required=True, help="the answer as JSON (a plain string is sent as text)")
    answer.add_argument("--url", help=_URL_HELP)
    _add_client_flags(answer)
    answer.set_defaults(func=_answer)

    approve = runs_sub.add_parser(
        "approve",
        help="approve (or --reject) the output a task holds for approval",
        epilog=_APPROVE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    approve.add_argument("run_id")
    approve.add_argument("task_id")
    approve.add_argument(
        "--reject", action="store_true", help="reject the output: that attempt fails, the next is tried"
    )
    approve.add_argument("--comment", default="", help="why (recorded in the run's events; a rejection's reason)")
    approve.add_argument("--url", help=_URL_HELP)
    _add_client_flags(approve)
    approve.set_defaults(func=_approve)


def _answer(args: argparse.Namespace) -> int:
    from orchestrator.cli import _client
    from orchestrator.client import OrchestratorError

    example = '--input \'{"plant": "north"}\''
    value = json_argument(args.input, "--input", example)  # text that does not look like JSON stays text

    async def go() -> int:
        async with _client(args) as client:
            try:
                print(json.dumps(await client.answer(args.run_id, args.task_id, value)))
            except OrchestratorError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            return 0

    return anyio.run(go)


def _approve(args: argparse.Namespace) -> int:
    from orchestrator.cli import _client
    from orchestrator.client import OrchestratorError

    async def go() -> int:
        async with _client(args) as client:
            try:
                decided = await client.approve(args.run_id, args.task_id, not args.reject, args.comment)
            except OrchestratorError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(json.dumps(decided))
            return 0

    return anyio.run(go)
