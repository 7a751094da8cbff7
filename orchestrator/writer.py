"""The run store's write queue: the executor's writes, batched into few transactions, never lost, never jamming.

Writes gather for up to ``linger_s`` (or until someone flushes) and commit as one transaction. A batch that fails
because the database is away is kept and retried with backoff until it commits: meanwhile ``unavailable`` is
true, ``room()`` holds runs back before their next agent call (they pause, they do not fail) and readers answer
"database unavailable". A batch that fails for a bad write is applied one operation at a time so only that one
is lost. The queue is bounded: past ``max_pending`` operations ``room()`` makes submitters and runs wait.
Whoever waits on the writer (``flush``, ``room``) is always released, whatever the database does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.runs import Fence, Op, RunStore, is_unavailable

__all__ = ["RunWriter"]

_log = logging.getLogger(__name__)
_RUN_KEYED = ("update_run", "update_task")


class _Flush:
    """A flush request in the writer's queue: set when the writes before it are committed (or failed)."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.error: BaseException | None = None


@dataclass
class _Outcome:
    lost: set[str] = field(default_factory=set)  # runs whose writes the fence refused
    retry: list[Op] = field(default_factory=list)  # not yet applied: the database is away
    error: BaseException | None = None  # why the retry, or the first bad write that was dropped
    committed: set[str] = field(default_factory=set)  # runs with events committed


class RunWriter:
    """Queues store operations and applies them in batches from one background task (``run``)."""

    def __init__(
        self,
        store: RunStore,
        *,
        max_batch: int = 5_000,
        linger_s: float = 0.05,
        max_pending: int = 50_000,
        fence: Fence | None = None,
        on_commit: Callable[[set[str]], None] | None = None,
        on_lost: Callable[[set[str]], None] | None = None,
        max_retry_delay_s: float = 2.0,
    ) -> None:
        """``fence`` decides in each transaction which runs' writes are refused (``Leases.fence``); ``on_commit``
        hears which runs got events committed, ``on_lost`` which runs were refused."""
        self.store = store
        self.max_batch = max_batch
        # Gather writes this long before a commit (fewer, larger transactions); a flush cuts the wait short.
        self.linger_s = linger_s
        self.max_pending = max_pending
        self.fence = fence
        self.on_commit = on_commit
        self.on_lost = on_lost
        self.max_retry_delay_s = max_retry_delay_s
        self.pending = 0  # operations queued and not yet committed (or dropped)
        self.unavailable: BaseException | None = None  # set while the database cannot be reached
        self.error: BaseException | None = None  # the last write that failed (it was dropped; later ones go on)
        self._wake = anyio.Event()
        self._changed = anyio.Event()  # set (and replaced) whenever pending or availability changes
        self._give_up = False
        send, receive = anyio.create_memory_object_stream[Op | _Flush](max_buffer_size=math.inf)
        self._send: MemoryObjectSendStream[Op | _Flush] = send
        self._receive: MemoryObjectReceiveStream[Op | _Flush] = receive

    def put(self, kind: str, values: Any, *key: str, run_id: str | None = None) -> None:
        """Queue one write; it reaches the database with the next batch. ``run_id`` (derived where the write
        names it) ties the write to its run's lease."""
        if run_id is None:
            if kind == "event" or kind == "insert_attempt" or kind == "insert_run":
                run_id = values.get("run_id") or values.get("id")
            elif kind in _RUN_KEYED:
                run_id = key[0]
            elif kind == "insert_tasks" and values:
                run_id = values[0]["run_id"]
        self.pending += 1
        self._send.send_nowait(Op(kind, values, key, run_id))

    async def room(self) -> None:
        """Wait while the queue is full or the database is away (back-pressure on submitters and runs)."""
        while self.pending >= self.max_pending or self.unavailable is not None:
            await self._changed.wait()

    async def flush(self) -> None:
        """Wait until everything queued so far is committed; raises if a write of the last batch failed."""
        marker = _Flush()
        self._send.send_nowait(marker)
        self._wake.set()
        await marker.done.wait()
        if marker.error is not None:
            raise RuntimeError(f"the run store failed: {marker.error}") from marker.error

    async def run(self) -> None:
        """The writer loop: take what is queued (up to ``max_batch``), commit it, repeat until closed."""
        async with self._receive:
            async for first in self._receive:
                if self.linger_s and not isinstance(first, _Flush) and not self._wake.is_set():
                    with anyio.move_on_after(self.linger_s):
                        await self._wake.wait()
                self._wake = anyio.Event()
                batch: list[Op] = []
                waiters: list[_Flush] = []
                item: Op | _Flush = first
                while True:
                    if isinstance(item, _Flush):
                        waiters.append(item)
                    else:
                        batch.append(item)
                    if len(batch) >= self.max_batch:
                        break
                    try:
                        item = self._receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                failure = await self._commit(batch) if batch else None
                for waiter in waiters:
                    waiter.error = failure
                    waiter.done.set()

    async def _commit(self, batch: list[Op]) -> BaseException | None:
        """Commit ``batch``, retrying while the database is away; returns the first dropped write's error."""
        size, delay, dropped_error = len(batch), 0.05, None
        try:
            while batch:
                outcome = await anyio.to_thread.run_sync(self._apply, batch)
                dropped_error = dropped_error or (outcome.error if not outcome.retry else None)
                if outcome.committed and self.on_commit is not None:
                    self.on_commit(outcome.committed)
                if outcome.lost and self.on_lost is not None:
                    self.on_lost(outcome.lost)
                batch = outcome.retry
                if not batch:
                    break
                if self._give_up:
                    _log.error("run store: database unavailable at shutdown; %d writes not saved", len(batch))
                    return outcome.error
                if self.unavailable is None:
                    _log.warning("run store: database unavailable, retrying (runs pause): %s", outcome.error)
                self.unavailable = outcome.error
                self._signal()
                await anyio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay_s)
            if self.unavailable is not None:
                _log.warning("run store: database available again")
            self.unavailable = None
            return dropped_error
        finally:
            self.pending -= size
            self._signal()

    def _signal(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def _apply(self, batch: list[Op]) -> _Outcome:
        """In a worker thread: commit ``batch``; if a write in it is bad, commit one by one and drop the bad ones."""
        try:
            lost = self.store.apply(batch, self.fence)
            return _Outcome(lost=lost, committed=_event_runs(batch) - lost)
        except Exception as exc:
            if is_unavailable(exc):
                return _Outcome(retry=batch, error=exc)
            first: BaseException = exc
        outcome, dropped = _Outcome(), 0
        for index, op in enumerate(batch):
            try:
                lost = self.store.apply([op], self.fence)
                outcome.lost |= lost
                outcome.committed |= _event_runs([op]) - lost
            except Exception as exc:
                if is_unavailable(exc):
                    outcome.retry, outcome.error = batch[index:], exc
                    return outcome
                dropped += 1
                first = exc if dropped == 1 else first
        if dropped:
            self.error = outcome.error = first
            _log.warning("run store: %d of %d writes failed and were dropped: %s", dropped, len(batch), first)
        return outcome

    async def aclose(self, *, patience_s: float = 30.0) -> None:
        """Flush (retrying an unavailable database for up to ``patience_s``), then stop the loop."""
        with anyio.move_on_after(patience_s) as scope:
            try:
                await self.flush()
            except RuntimeError:
                pass  # a dropped write was already logged
        if scope.cancelled_caught:
            self._give_up = True
            with anyio.move_on_after(5.0):
                await self.flush()
        self._send.close()


def _event_runs(ops: list[Op]) -> set[str]:
    return {op.run_id for op in ops if op.kind == "event" and op.run_id}
