"""What the batching engine works on: a job (one generation) and a slot (one KV sequence)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.llm.constraints import Constraint
from agents.llm.sampling import TokenSampler

__all__ = ["Job", "JobResult", "Slot", "common_prefix"]


@dataclass
class JobResult:
    """The outcome of one job, filled by the engine thread."""

    tokens: list[int]
    text: str
    stop_reason: str
    prompt_tokens: int
    cached_tokens: int
    wall_seconds: float
    cpu_seconds: float


@dataclass(eq=False)
class Job:
    """One generation queued on an engine. ``cancel()`` may be called from any thread."""

    prompt: list[int]
    max_tokens: int
    sampler: TokenSampler
    constraint: Constraint | None = None
    session_id: str | None = None
    deadline: float | None = None  # time.monotonic() value
    stop: tuple[str, ...] = ()
    on_token: Callable[[int], None] | None = None  # called on the engine thread for each new token
    submitted: float = field(default_factory=time.perf_counter)
    done: threading.Event = field(default_factory=threading.Event)
    result: JobResult | None = None
    error: BaseException | None = None
    cancelled: bool = False
    # engine-thread state
    slot: Slot | None = None
    n_past: int = 0  # prompt tokens already in the KV cache
    cached: int = 0  # of those, how many were reused rather than evaluated
    generated: list[int] = field(default_factory=list)
    pending: int | None = None  # sampled token not yet decoded
    cpu: float = 0.0

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def prefilling(self) -> bool:
        return self.n_past < len(self.prompt)


@dataclass(eq=False)
class Slot:
    """One sequence id of the context and the tokens whose KV cells it holds (positions 0..n-1)."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    session: str | None = None
    job: Job | None = None
    last_used: float = 0.0


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
