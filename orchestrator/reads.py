"""Reading runs from the store, the same on every replica: records, listings, event streams, waiting for an end.

Nothing here trusts memory: a run may be running on another replica, so every answer comes from the database,
and waits are woken by ``Wakeups`` (this replica's commits, other replicas' notifications) and bounded by
``poll_s``. A database that cannot be reached is ``StoreUnavailable`` (HTTP 503), never a hang.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio

from orchestrator.limits import InvalidQuery, check_after, check_list_query, valid_run_id
from orchestrator.runs import RUN_KINDS, TERMINAL, RunStore, StoreUnavailable, is_unavailable, owned_by
from orchestrator.state import RunState
from orchestrator.wakeups import Wakeups
from orchestrator.writer import RunWriter

__all__ = ["StoredRuns", "RunNotFound", "UNAVAILABLE", "no_run"]

_T = TypeVar("_T")
_END_KINDS = frozenset(f"run.{status}" for status in TERMINAL)
UNAVAILABLE = "the run database is unavailable; runs are paused and resume when it is back: retry shortly"


class RunNotFound(LookupError):
    """No run with that id."""


def no_run(run_id: str) -> str:
    return f"no run {str(run_id)[:80]!r}; list runs with GET /runs"


class StoredRuns:
    """The read side of the ``Orchestrator`` (a base class: it reads the attributes the orchestrator sets)."""

    store: RunStore
    writer: RunWriter
    wakeups: Wakeups
    poll_s: float
    active: dict[str, RunState]
    _stopping: bool
    read_failing: bool = False  # the last read found the database unreachable

    async def get_run(self, run_id: str, *, attempts: bool = True, owner: str | None = None) -> dict[str, Any]:
        """The stored record of a run: status, error, usage, tasks and (optionally) attempts."""
        if not valid_run_id(run_id):
            raise RunNotFound(no_run(run_id))
        await self._flushed()
        run = await self._read(self.store.get_run, run_id)
        if run is None or not owned_by(run["owner"], owner):
            raise RunNotFound(no_run(run_id))
        run["tasks"] = await self._read(self.store.tasks_of, run_id)
        if attempts:
            run["attempts"] = await self._read(self.store.attempts_of, run_id)
        return run

    async def list_runs(
        self,
        *,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        owner: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """The most recent runs (newest first) of ``owner`` (every run when None), of ``kind`` ("graph",
        "negotiation") when given; raises InvalidQuery for an unknown status or kind or out-of-range numbers."""
        check_list_query(status, limit, offset)
        if kind is not None and kind not in RUN_KINDS:
            raise InvalidQuery(f"kind must be one of {', '.join(RUN_KINDS)}, not {kind[:40]!r}")
        await self._flushed()
        return await self._read(
            lambda: self.store.list_runs(status=status, limit=limit, offset=offset, owner=owner, kind=kind)
        )

    async def events(self, run_id: str, after: int = 0, *, owner: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """The run's events with ``seq > after``, from the store, until the run ends (wherever it runs): each once,
        in order; woken by this replica's commits and other replicas' notifications."""
        check_after(after)
        if not valid_run_id(run_id):
            raise RunNotFound(no_run(run_id))
        if owner is not None:
            await self._check_owner(run_id, owner)
        last = after
        while not self._stopping:
            armed = self.wakeups.arm(run_id)
            rows = await self._read(self.store.events_after, run_id, last)
            for row in rows:
                last = row["seq"]
                yield row
                if row["kind"] in _END_KINDS:
                    return
            if len(rows) >= 1000:
                continue
            if not rows:
                run = await self._read(self.store.get_run, run_id)
                if run is None:
                    raise RunNotFound(no_run(run_id))
                if run["status"] in TERMINAL:  # its last events were committed with that status: read them
                    for row in await self._read(self.store.events_after, run_id, last):
                        yield row
                    return
                with anyio.move_on_after(self.poll_s):
                    await armed.wait()

    async def _read(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on the store in a worker thread; a database that cannot be reached is StoreUnavailable."""
        try:
            value = await anyio.to_thread.run_sync(fn, *args)
        except Exception as exc:
            if is_unavailable(exc):
                self.read_failing = True
                raise StoreUnavailable(UNAVAILABLE) from exc
            raise
        self.read_failing = False
        return value

    @property
    def database_available(self) -> bool:
        """False while the last read or the pending writes found the database unreachable."""
        return self.writer.unavailable is None and not self.read_failing

    async def _flushed(self) -> None:
        """Wait until this replica's queued writes are in the store (read your own writes), briefly."""
        if self.writer.unavailable is not None:
            raise StoreUnavailable(UNAVAILABLE)
        with anyio.move_on_after(5.0):
            try:
                await self.writer.flush()
            except RuntimeError:
                pass  # a dropped write was logged; reading goes on
            return
        raise StoreUnavailable(UNAVAILABLE)

    async def _check_owner(self, run_id: str, owner: str) -> None:
        """RunNotFound unless ``run_id`` exists and belongs to ``owner``."""
        state = self.active.get(run_id)
        if state is not None:
            if not owned_by(state.owner, owner):
                raise RunNotFound(no_run(run_id))
            return
        await self._flushed()
        run = await self._read(self.store.get_run, run_id)
        if run is None or not owned_by(run["owner"], owner):
            raise RunNotFound(no_run(run_id))

    async def _wait_stored(self, run_id: str, owner: str | None) -> dict[str, Any]:
        """Wait until the stored run ends (on any replica); its record."""
        while True:
            armed = self.wakeups.arm(run_id)
            run = await self.get_run(run_id, owner=owner)
            if run["status"] in TERMINAL:
                return run
            with anyio.move_on_after(self.poll_s):
                await armed.wait()
