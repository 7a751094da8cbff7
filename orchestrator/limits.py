"""What one orchestrator accepts: run sizes (``RunLimits``) and the ranges of every query parameter.

Every check here runs before anything is built or stored, so a request past a limit costs almost nothing and is
refused with a one-line reason that names the limit and the setting that raises it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

__all__ = [
    "RunLimits",
    "LimitExceeded",
    "InvalidQuery",
    "RUN_STATUSES",
    "MAX_BODY_BYTES",
    "MAX_LIST_LIMIT",
    "MAX_SEQ",
    "check_request_size",
    "check_graph_limits",
    "check_list_query",
    "check_after",
    "parse_int",
    "valid_run_id",
]

MAX_BODY_BYTES = 10_000_000  # the HTTP API's default request body cap (--max-body-bytes)
RUN_STATUSES = ("pending", "running", "waiting", "succeeded", "failed", "cancelled")
MAX_LIST_LIMIT = 500
MAX_SEQ = 2**31  # event numbers and offsets stay below this (a 32-bit column on every database)
_RUN_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_INTEGER = re.compile(r"-?[0-9]{1,19}")


class RunLimits(BaseModel):
    """How much one orchestrator takes on: tasks per graph, workers per run, active and queued runs, input size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tasks: int = Field(default=1_000, ge=1, le=1_000_000, description="tasks in one graph (--max-tasks)")
    max_concurrency: int = Field(
        default=64, ge=1, le=10_000, description="highest 'concurrency' a graph may ask for (--max-concurrency)"
    )
    max_active_runs: int = Field(
        default=1_000, ge=1, description="runs this replica runs at once (--max-active-runs); more are queued"
    )
    max_queued_runs: int = Field(
        default=10_000, ge=0, description="runs waiting for a replica with room, over all replicas (--max-queued-runs)"
    )
    max_input_bytes: int = Field(
        default=1_000_000, ge=1, description="JSON size of one task's input as submitted (--max-input-bytes)"
    )


class LimitExceeded(ValueError):
    """A request past one of the orchestrator's ``RunLimits``; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class InvalidQuery(ValueError):
    """A query parameter (or tool argument) out of its range; the message says which and what is allowed."""


def check_request_size(raw: Any, limits: RunLimits) -> None:
    """Refuse a raw request (JSON or model) whose task count or concurrency is past ``limits``; O(1), no parsing."""
    tasks = getattr(raw, "tasks", None) if not isinstance(raw, dict) else raw.get("tasks")
    if isinstance(tasks, list) and len(tasks) > limits.max_tasks:
        raise LimitExceeded(
            413,
            f"the graph has {len(tasks)} tasks, over this orchestrator's limit of {limits.max_tasks} "
            "(RunLimits.max_tasks, 'orchestrator serve --max-tasks'); split it into smaller runs",
        )
    concurrency = getattr(raw, "concurrency", None) if not isinstance(raw, dict) else raw.get("concurrency")
    if isinstance(concurrency, int) and concurrency > limits.max_concurrency:
        raise LimitExceeded(
            400,
            f"concurrency {concurrency} is over this orchestrator's limit of {limits.max_concurrency} "
            "(RunLimits.max_concurrency, 'orchestrator serve --max-concurrency'); ask for less",
        )


def check_graph_limits(spec: Any, limits: RunLimits) -> None:
    """Refuse a parsed graph (a GraphSpec) past ``limits``, inputs included (CPU work: call it in a thread)."""
    check_request_size(spec, limits)
    for task in spec.tasks:
        size = len(to_json(task.input))
        if size > limits.max_input_bytes:
            raise LimitExceeded(
                413,
                f"the input of task {task.id!r} is {size} bytes of JSON, over this orchestrator's limit of "
                f"{limits.max_input_bytes} (RunLimits.max_input_bytes, 'orchestrator serve --max-input-bytes')",
            )


def check_list_query(status: str | None, limit: int, offset: int) -> None:
    """Refuse a run listing with an unknown status, a limit outside 1..500 or an offset outside 0..2**31-1."""
    if status is not None and status not in RUN_STATUSES:
        raise InvalidQuery(f"status must be one of {', '.join(RUN_STATUSES)}, not {str(status)[:40]!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidQuery(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, not {str(limit)[:40]!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < MAX_SEQ:
        raise InvalidQuery(f"offset must be an integer from 0 to {MAX_SEQ - 1}, not {str(offset)[:40]!r}")


def check_after(after: int) -> None:
    """Refuse an event number (``Last-Event-ID`` / ``after``) outside 0..2**31-1."""
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < MAX_SEQ:
        raise InvalidQuery(f"Last-Event-ID must be an event number from 0 to {MAX_SEQ - 1}, not {str(after)[:40]!r}")


def parse_int(name: str, raw: str) -> int:
    """An integer query parameter or header: plain decimal digits with an optional '-', else InvalidQuery."""
    if not _INTEGER.fullmatch(raw):
        raise InvalidQuery(f"{name} must be a whole number written in digits, not {raw[:40]!r}")
    return int(raw)


def valid_run_id(run_id: str) -> bool:
    """True when ``run_id`` could name a run (1-64 letters, digits, '_' or '-'): anything else is not looked up."""
    return isinstance(run_id, str) and _RUN_ID.fullmatch(run_id) is not None
