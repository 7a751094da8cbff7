"""What the batching engine works on: a job (one generation), a slot (one KV sequence) and the ledger of the
KV cells the slots hold (shared prefixes share cells)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agents.llm.constraints import Constraint
from agents.llm.sampling import TokenSampler

__all__ = ["CellLedger", "Job", "JobResult", "Slot", "cached_prefix", "common_prefix", "pick_slot"]


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
    bypassed: int = 0  # later jobs started while this one waited for KV cells
    slot: Slot | None = None
    n_past: int = 0  # prompt tokens already in the KV cache
    cached: int = 0  # of those, how many were reused rather than evaluated
    generated: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # generated tokens not decoded yet (sampled, then forced)
    served: int = -1  # the last engine step that decoded some of its tokens
    cpu: float = 0.0

    def cancel(self) -> None:
        self.cancelled = True

    def finish(self, reason: str, text: str) -> None:
        """Record the outcome (``text``: the generated tokens, cut at the first stop string) and wake the caller."""
        if reason == "stop" and self.stop:
            cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
        self.result = JobResult(
            tokens=list(self.generated),
            text=text,
            stop_reason=reason,
            prompt_tokens=len(self.prompt),
            cached_tokens=self.cached,
            wall_seconds=time.perf_counter() - self.submitted,
            cpu_seconds=self.cpu,
        )
        self._close()

    def fail(self, error: BaseException) -> None:
        """End the job with ``error`` (raised to its caller) and wake the caller."""
        self.error = error
        self._close()

    def _close(self) -> None:
        if self.constraint is not None:
            self.constraint.close()
        self.done.set()

    @property
    def prefilling(self) -> bool:
        """Some of its prompt is not in the KV cache yet."""
        return self.n_past < len(self.prompt)

    @property
    def cells_needed(self) -> int:
        """KV cells this job's sequence may span: its prompt plus every token it may generate."""
        return len(self.prompt) + self.max_tokens


@dataclass(eq=False)
class Slot:
    """One sequence id of the context and the tokens whose KV cells it holds (positions 0..n-1)."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    cells: list[int] = field(default_factory=list)  # ledger ids of the cells holding ``tokens``, one each
    session: str | None = None
    job: Job | None = None
    last_used: float = 0.0


def pick_slot(slots: list[Slot], job: Job, *, lowest: bool = False) -> Slot | None:
    """The job's idle session slot, else an idle one: empty first, then anonymous caches, then the least
    recently used session (a session whose slot is busy runs beside it). ``None`` when every slot is busy.

    ``lowest`` (per-sequence KV streams): the lowest idle sequence id that holds no session, so the running
    sequences stay consecutive and one micro-batch takes them all; sessions' slots only when nothing else is idle.
    """
    if job.session_id is not None:
        owned = [s for s in slots if s.session == job.session_id and s.job is None]
        if owned:
            return owned[0]
    idle = [s for s in slots if s.job is None]
    if not idle:
        return None
    if lowest:
        return min(idle, key=lambda s: (s.session is not None, s.last_used if s.session else s.seq))
    return min(idle, key=lambda s: (bool(s.tokens), s.session is not None, s.last_used))


def cached_prefix(slots: list[Slot], slot: Slot, prompt: list[int], *, copy: bool) -> tuple[Slot | None, int]:
    """How much of ``prompt`` is cached for a job about to run on ``slot``: ``(None, n)`` for its own first
    ``n`` tokens, ``(other, n)`` when (``copy``) another slot holds a longer common prefix."""
    cap = len(prompt) - 1  # the last prompt token is always evaluated, for its logits
    src, best = None, min(common_prefix(slot.tokens, prompt), cap)
    if copy:
        for other in slots:
            if other is not slot and len(other.tokens) > best:
                n = min(common_prefix(other.tokens, prompt), cap)
                if n > best:
                    src, best = other, n
    return src, best


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class CellLedger:
    """Counts the distinct KV cells the slots hold; a prefix shared with ``llama_memory_seq_cp`` is one set of
    cells however many slots hold it. Every change to a slot's tokens goes through here."""

    def __init__(self) -> None:
        self._refs: dict[int, int] = {}  # cell id -> slots holding it
        self._next_id = 0

    @property
    def used(self) -> int:
        """Distinct cells held by any slot."""
        return len(self._refs)

    def append(self, slot: Slot, tokens: list[int]) -> None:
        """``tokens`` were decoded into ``slot``'s sequence: one new cell each."""
        first = self._next_id
        self._next_id += len(tokens)
        ids = range(first, self._next_id)
        self._refs.update(dict.fromkeys(ids, 1))
        slot.cells.extend(ids)
        slot.tokens.extend(tokens)

    def truncate(self, slot: Slot, keep: int) -> None:
        """``slot`` keeps its first ``keep`` cells; cells no other slot holds become free."""
        for cell in slot.cells[keep:]:
            left = self._refs[cell] - 1
            if left:
                self._refs[cell] = left
            else:
                del self._refs[cell]
        del slot.cells[keep:]
        del slot.tokens[keep:]

    def share(self, src: Slot, dst: Slot, n: int) -> None:
        """``dst`` (empty) now holds ``src``'s first ``n`` cells too (no new cells)."""
        assert not dst.cells, "share into an empty slot"
        dst.cells = src.cells[:n]
        dst.tokens = src.tokens[:n]
        for cell in dst.cells:
            self._refs[cell] += 1

    def freed_by(self, cuts: Mapping[Slot, int]) -> int:
        """How many cells would become free if each slot in ``cuts`` kept only its first ``cuts[slot]``."""
        dropped: Counter[int] = Counter()
        for slot, keep in cuts.items():
            dropped.update(slot.cells[keep:])
        return sum(1 for cell, n in dropped.items() if n >= self._refs[cell])
