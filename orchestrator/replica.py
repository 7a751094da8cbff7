"""One orchestrator replica among many: its identity, its heartbeat, claiming runs, taking them over.

Every ``lease_s / 3`` (or at once when told a run was queued or released) the replica renews its leases, learns
which of its runs another replica asked to cancel or took away, and claims queued or expired runs while it has
room. A claimed run is rebuilt from the store: finished tasks keep their outputs, attempt numbering goes on, and
attempts left running by a dead replica are handed to the executor to adopt (``RunState.in_flight``).
On SQLite one replica runs: ``SqliteLock`` makes a second process on the same file refuse to start.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import sqlalchemy as sa

from orchestrator.graph import TaskGraph
from orchestrator.leases import Leases
from orchestrator.runs import is_unavailable, now
from orchestrator.spec import GraphSpec
from orchestrator.state import RunState

if TYPE_CHECKING:
    from orchestrator.service import Orchestrator

__all__ = ["ReplicaLoop", "SqliteLock", "ReplicaConflict", "default_replica_id", "RESTART_REASON"]

_log = logging.getLogger(__name__)
RESTART_REASON = "the orchestrator restarted while this run was in progress"


class ReplicaConflict(RuntimeError):
    """Another orchestrator already runs on this SQLite database."""


def default_replica_id() -> str:
    """``host-pid-random``: unique per process, readable in ``orch_runs.lease_owner`` and ``pg_stat_activity``."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class SqliteLock:
    """An exclusive lock on ``<database>.orchestrator.lock`` held while an orchestrator runs on that SQLite file
    (released by the kernel even on SIGKILL). No lock for in-memory databases or other engines."""

    def __init__(self, url: str) -> None:
        parsed = sa.make_url(url)
        database = parsed.database if parsed.get_backend_name() == "sqlite" else None
        self.database = database or ""
        self.path = Path(database + ".orchestrator.lock") if database and database != ":memory:" else None
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ReplicaConflict(
                f"another orchestrator already runs on the SQLite database {self.database}"
                f" (it holds {self.path}); SQLite allows one orchestrator: stop the other one, or use PostgreSQL"
                " (--db postgresql+psycopg://...) to run several replicas"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class ReplicaLoop:
    """The replica's background duty: heartbeat (renew leases), honour remote cancels, claim runs."""

    def __init__(self, orch: Orchestrator, leases: Leases) -> None:
        self.orch = orch
        self.leases = leases
        self.interval_s = max(leases.lease_s / 3, 0.05)
        self._claim = anyio.Event()
        self._first = True
        self._last_beat = -float("inf")

    def claim_soon(self) -> None:
        """Look for runs to claim now (a run was queued or released, or a run here ended)."""
        self._claim.set()

    async def step(self) -> None:
        """One heartbeat (when due) and one claim; the first step also recovers runs left by this replica id."""
        try:
            if anyio.current_time() - self._last_beat >= self.interval_s * 0.9:
                await self._heartbeat()
                self._last_beat = anyio.current_time()
            await self._claim_runs()
        except Exception as exc:  # the database is away, or a bug: log, keep the loop alive
            level = logging.WARNING if is_unavailable(exc) else logging.ERROR
            _log.log(level, "replica %s: %s: %s", self.leases.replica_id, type(exc).__name__, exc)

    async def run(self) -> None:
        """Step every ``lease_s / 3``, or sooner when ``claim_soon`` is called; runs until cancelled."""
        while True:
            with anyio.move_on_after(self.interval_s):
                await self._claim.wait()
            self._claim = anyio.Event()
            await self.step()

    async def _heartbeat(self) -> None:
        before = set(self.orch.active)  # a run submitted while renewing is not in ``held`` yet, and not lost
        held, cancels = await anyio.to_thread.run_sync(self.leases.renew, before) if before else (set(), set())
        # a run that ended meanwhile gave its lease up itself: not lost
        lost = {rid for rid in before - held if rid in self.orch.active and not self.orch.active[rid].closing}
        if lost:
            self.orch.abandon(lost)
        for run_id in cancels:
            self.orch.cancel_here(run_id)

    async def _claim_runs(self) -> None:
        room = self.orch.free_slots()
        if room <= 0:
            return
        exclude = set(self.orch.active)
        rows = await anyio.to_thread.run_sync(lambda: self.leases.claim(room, exclude=exclude, own_too=self._first))
        self._first = False
        for row in rows:
            if row["id"] not in self.orch.active:
                await take_over(self.orch, row)


async def take_over(orch: Orchestrator, row: dict[str, Any]) -> None:
    """Start (a queued run) or resume (a run another replica left) the claimed run ``row`` on ``orch``."""
    run_id, store = row["id"], orch.store
    if row.get("kind") == "negotiation":  # negotiations are not resumed: the run fails as interrupted
        from orchestrator.negotiation.runs import fail_interrupted

        await fail_interrupted(orch, row)
        return
    try:
        graph = TaskGraph(GraphSpec.model_validate(row["spec"]))
    except ValueError as exc:  # a stored spec this version cannot read: fail it, with the reason
        stamp = now()
        orch.writer.put(
            "update_run",
            {
                "status": "failed",
                "updated_at": stamp,
                "finished_at": stamp,
                "error": f"{RESTART_REASON}; its spec cannot be resumed: {exc}",
                "lease_owner": None,
            },
            run_id,
        )
        return
    state = RunState(run_id, graph, orch.writer, owner=row.get("owner"))
    state.seq = await anyio.to_thread.run_sync(store.last_seq, run_id)
    fresh = row["status"] == "pending" and state.seq <= 1  # queued, never started: nothing to resume
    if not fresh:
        state.status = row["status"]
        state.attempts_made = await anyio.to_thread.run_sync(store.attempt_numbers, run_id)
        for task in await anyio.to_thread.run_sync(store.tasks_of, run_id):
            if task["status"] in ("succeeded", "failed", "skipped"):
                state.finished[task["task_id"]] = task["status"]
                if task["status"] == "succeeded":
                    state.outputs[task["task_id"]] = task["output"]
        for attempt in await anyio.to_thread.run_sync(lambda: store.attempts_of(run_id, status="running")):
            if attempt["task_id"] in state.finished:
                continue
            state.in_flight[attempt["task_id"]] = attempt
    if row.get("cancel_requested"):
        state.cancel_requested = True
    if fresh:
        orch.start(state)
    elif orch.resume:
        state.emit("run.resumed", reason=RESTART_REASON, done=len(state.finished), replica=orch.replica_id)
        orch.start(state)
    else:
        for attempt in state.in_flight.values():
            orch.writer.put(
                "update_attempt",
                {"status": "interrupted", "error": RESTART_REASON, "finished_at": now()},
                attempt["id"],
                run_id=run_id,
            )
        state.in_flight.clear()
        orch.active[run_id] = state
        try:
            await orch.close(state, "failed", RESTART_REASON + " (resume is off)")
        finally:
            orch.active.pop(run_id, None)
            state.done.set()
