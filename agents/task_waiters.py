"""Abandoned work stops: who waits on each task, and the cancel of a turn nobody waits for any more.

A turn started by a caller that waits for it (a blocking ``SendMessage``, a ``SendStreamingMessage``) is
*attended*. Every waiting call counts as a waiter while it waits: that first call, a repeat of its ``messageId``
(blocking or streamed), ``SubscribeToTask``. When the last waiter goes (its connection closed, its stream ended
early, its in-process caller was cancelled) a grace period of ``grace_s`` starts; a ``GetTask``, a
``ListTasks`` by ``contextId`` that names the task or a ``returnImmediately`` repeat restarts it, and a new waiter
stops it. When it runs out the
task is cancelled (``CANCELED``, its skill's cancel scope). Turns started with ``returnImmediately`` are the
caller's to poll or cancel and are never cancelled here; ``grace_s=None`` turns all of this off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from agents.task_handle import TaskHandle

__all__ = ["DISCONNECT_GRACE_S", "Disconnected", "Waiters"]

DISCONNECT_GRACE_S = 30.0
"""The default grace: longer than an orchestrator replica's default failover (``--lease-s 15`` plus one claim
interval of ``lease_s / 3``), so a replica taking over a dead one's run can still adopt the task it left."""

WATCH_AFTER_S = 0.1
"""A blocking call is watched for its client's disconnect once it has taken this long (sooner costs a task each)."""

Disconnected = Callable[[], Awaitable[object]]
"""Returns when the caller of a blocking SendMessage has gone (its connection closed); the transport gives it."""


@dataclass(eq=False)
class _Call:
    due: float  # when to start watching this blocking call's connection
    watch: Callable[[], Coroutine[Any, Any, None]]


@dataclass(eq=False)
class _Watch:
    waiters: int = 0
    attended: bool = False  # the current turn was started by a waiting call
    last_seen: float = 0.0  # when the last waiter left, or a GetTask/ListTasks last named the task
    timing: bool = False  # a grace timer runs for this task


class Waiters:
    """The waiters of one runtime's tasks; grace timers run in ``task_group`` (the runtime's)."""

    def __init__(self, grace_s: float | None = DISCONNECT_GRACE_S) -> None:
        self.grace_s = grace_s
        self.task_group: TaskGroup | None = None
        self._watches: dict[TaskHandle, _Watch] = {}
        self._calls: set[_Call] = set()  # blocking calls not watched yet
        self._supervising = False
        self._wake: anyio.Event | None = None  # set when a call arrives while the supervisor idles

    def __len__(self) -> int:
        return len(self._watches)

    def start_turn(self, handle: TaskHandle, *, attended: bool) -> None:
        """A turn of ``handle`` begins; ``attended`` when the call that started it waits for it."""
        if self.grace_s is None:
            return
        watch = self._watches.get(handle)
        if watch is None:
            if not attended:
                return
            watch = self._watches[handle] = _Watch()
        watch.attended = attended
        self._settle(handle, watch)

    @contextmanager
    def attached(self, handle: TaskHandle) -> Iterator[_Leave]:
        """Count a waiter on ``handle`` until the block ends, or until the ``leave`` it gives is called."""
        if self.grace_s is None:
            yield _Leave(self, handle, None)
            return
        watch = self._watches.setdefault(handle, _Watch())
        watch.waiters += 1
        leave = _Leave(self, handle, watch)
        try:
            yield leave
        finally:
            leave()

    async def attend(
        self,
        handle: TaskHandle,
        work: Callable[[], Awaitable[object]],
        disconnected: Disconnected | None,
        *,
        runs: bool = False,
    ) -> None:
        """Do ``work`` (wait for ``handle``'s turn, or with ``runs`` run it) as one of its waiters.

        When ``disconnected`` returns first the caller is gone: it stops counting as a waiter, and a wait ends
        while a turn run here goes on (until it settles, or its grace period runs out and cancels it). A call is
        watched only once it has taken ``WATCH_AFTER_S`` (a fast call costs no task), and ``disconnected`` is
        never cancelled: it must return soon after the call ends (the HTTP binding's returns once the response is
        sent).
        """
        with self.attached(handle) as leave:
            if disconnected is None or self.grace_s is None or self.task_group is None:
                await work()
                return
            waiting = None if runs else anyio.CancelScope()

            async def watch() -> None:
                try:
                    await disconnected()
                except Exception:  # a transport that cannot tell any more: the caller is as good as gone
                    pass
                leave()  # a no-op once the call has ended
                if waiting is not None:
                    waiting.cancel()

            call = _Call(anyio.current_time() + WATCH_AFTER_S, watch)
            self._calls.add(call)
            if not self._supervising:
                self._supervising = True
                self.task_group.start_soon(self._supervise)
            elif len(self._calls) == 1 and self._wake is not None:
                self._wake.set()
            try:
                if waiting is None:
                    await work()
                else:
                    with waiting:
                        await work()
            finally:
                self._calls.discard(call)

    async def _supervise(self) -> None:
        """Start watching each blocking call still running ``WATCH_AFTER_S`` after it began."""
        try:
            while True:
                if not self._calls:
                    self._wake = wake = anyio.Event()
                    await wake.wait()
                    self._wake = None
                await anyio.sleep(WATCH_AFTER_S)
                now = anyio.current_time()
                for call in [c for c in self._calls if c.due <= now]:
                    self._calls.discard(call)
                    if self.task_group is not None:
                        self.task_group.start_soon(call.watch)
        finally:
            self._supervising = False

    def seen(self, handle: TaskHandle) -> None:
        """Someone asked about ``handle`` (GetTask, ListTasks by contextId, a returnImmediately repeat): if its
        grace period runs, it starts again."""
        watch = self._watches.get(handle)
        if watch is not None and watch.waiters == 0:
            watch.last_seen = anyio.current_time()

    def _left(self, handle: TaskHandle, watch: _Watch) -> None:
        watch.waiters -= 1
        if watch.waiters:
            return
        watch.last_seen = anyio.current_time()
        if self._settle(handle, watch) or watch.timing or self.task_group is None:
            return
        watch.timing = True
        self.task_group.start_soon(self._grace, handle, watch)

    def _settle(self, handle: TaskHandle, watch: _Watch) -> bool:
        """Forget ``watch`` once nothing about it can cancel its task; True when forgotten."""
        if watch.waiters or watch.timing or (watch.attended and not handle.settled.is_set()):
            return False
        if self._watches.get(handle) is watch:
            del self._watches[handle]
        return True

    async def _grace(self, handle: TaskHandle, watch: _Watch) -> None:
        """Cancel ``handle``'s turn once nobody has waited for it or named it for ``grace_s``."""
        grace = self.grace_s
        try:
            while grace is not None and watch.waiters == 0 and watch.attended:
                settled = handle.settled
                if settled.is_set():
                    break
                left = watch.last_seen + grace - anyio.current_time()
                if left <= 0:
                    handle.cancel(f"canceled: its caller went away and nobody came back for it within {grace:g} s")
                    break
                with anyio.move_on_after(left):
                    await settled.wait()
                grace = self.grace_s
        finally:
            watch.timing = False
            self._settle(handle, watch)


class _Leave:
    """Ends one waiter's wait (at most once): called when its connection closes, or as its block ends."""

    def __init__(self, waiters: Waiters, handle: TaskHandle, watch: _Watch | None) -> None:
        self._waiters, self._handle, self._watch = waiters, handle, watch

    def __call__(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            self._waiters._left(self._handle, watch)
