"""In-memory state of one active run: its graph, outputs so far, event sequence and live subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.graph import TaskGraph
from orchestrator.runs import RunWriter, now

__all__ = ["RunState", "SUBSCRIBER_BUFFER"]

SUBSCRIBER_BUFFER = 10_000


@dataclass
class RunState:
    """An active run. Events get consecutive ``seq`` numbers (the SSE event ids) and go to the store and subscribers."""

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
    subscribers: list[MemoryObjectSendStream[dict[str, Any]]] = field(default_factory=list)

    def emit(self, kind: str, task_id: str | None = None, **data: Any) -> dict[str, Any]:
        """Record an event: queue it for the store and hand it to every live subscriber."""
        self.seq += 1
        event = {"run_id": self.run_id, "seq": self.seq, "kind": kind, "task_id": task_id, "data": data, "at": now()}
        self.writer.put("event", event)
        for stream in list(self.subscribers):
            try:
                stream.send_nowait(event)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                # A subscriber that cannot keep up is dropped; it catches up from the store by its last seq.
                stream.close()
                self.subscribers.remove(stream)
        return event

    def subscribe(self) -> MemoryObjectReceiveStream[dict[str, Any]]:
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](max_buffer_size=SUBSCRIBER_BUFFER)
        if self.done.is_set():
            send.close()
        else:
            self.subscribers.append(send)
        return receive

    def close_subscribers(self) -> None:
        for stream in self.subscribers:
            stream.close()
        self.subscribers.clear()

    def add_usage(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            if key in self.usage:
                self.usage[key] += value
