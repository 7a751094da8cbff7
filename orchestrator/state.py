"""In-memory state of one active run on the replica that owns it: its graph, outputs so far, event sequence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from orchestrator.graph import TaskGraph
from orchestrator.runs import now
from orchestrator.writer import RunWriter

__all__ = ["RunState", "WaitingTask"]


@dataclass
class WaitingTask:
    """A task whose agent waits for input: where to send the answer, what it must look like, whom to wake."""

    agent: Any  # the AgentRecord the attempt runs on
    agent_task_id: str
    schema: dict[str, Any] | None
    wake: anyio.Event = field(default_factory=anyio.Event)


@dataclass
class RunState:
    """An active run. Events get consecutive ``seq`` numbers (the SSE event ids) and go to the store; readers get
    them from the store once committed, so a number seen by anyone is never given again, even after a crash."""

    run_id: str
    graph: TaskGraph
    writer: RunWriter
    owner: str | None = None  # who submitted it (a principal's owner); None: a trusted caller, counts as "local"
    seq: int = 0
    status: str = "pending"
    outputs: dict[str, Any] = field(default_factory=dict)
    finished: dict[str, str] = field(default_factory=dict)  # task id -> succeeded | failed | skipped
    consumers_left: dict[str, int] = field(default_factory=dict)  # producer -> consumers not yet finished
    usage: dict[str, float] = field(
        default_factory=lambda: {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "wall_seconds": 0.0,
            "cpu_seconds": 0.0,
            "energy_joules": 0.0,
            "attempts": 0,
        }
    )
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    cancel_requested: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)
    abandoned: bool = False  # this replica lost the run's lease: another one runs it now
    stopping: bool = False  # this replica stops: the run goes on elsewhere, or at its next start
    closing: bool = False  # its end is being written (and its lease given up)
    attempts_made: dict[str, int] = field(default_factory=dict)  # task id -> attempts before a takeover
    in_flight: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> attempt left running to adopt
    waiting: dict[str, WaitingTask] = field(default_factory=dict)  # task id -> its agent's question, unanswered
    approvals: dict[str, Any] = field(default_factory=dict)  # task id -> its output held for approval (approvals.py)

    @property
    def handed_over(self) -> bool:
        """The run leaves this replica unfinished: attempts in flight stay with their agents, to be adopted."""
        return self.abandoned or self.stopping

    def emit(self, kind: str, task_id: str | None = None, **data: Any) -> dict[str, Any]:
        """Record an event: queue it for the store (readers see it once it is committed)."""
        self.seq += 1
        event = {"run_id": self.run_id, "seq": self.seq, "kind": kind, "task_id": task_id, "data": data, "at": now()}
        self.writer.put("event", event)
        return event

    def add_usage(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            if key in self.usage:
                self.usage[key] += value
