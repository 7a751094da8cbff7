"""The orchestrator: accepts runs, validates them, executes them, persists everything; one of many replicas.

>>> async with Orchestrator(registry, "sqlite:///scaleout.db", local_agents=[echo_agent()]).running() as orch:
...     run = await orch.run({"skill": "echo", "input": {"text": "hi"}})

Replicas share one PostgreSQL database (SQLite: one replica). A submitted run is committed before ``submit``
returns, leased to this replica when it has room and queued for any replica otherwise; reads, events and cancels
work on every replica for every run (orchestrator/replica.py, orchestrator/leases.py, docs/deploy.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup

from agents.agent import Agent
from orchestrator.answers import answer_task
from orchestrator.approvals import decide
from orchestrator.credentials import AgentCredentials
from orchestrator.energy import EnergyModel
from orchestrator.executor import Executor
from orchestrator.graph import TaskGraph
from orchestrator.leases import Leases
from orchestrator.limits import (
    LimitExceeded,
    RunLimits,
    check_graph_limits,
    check_request_size,
    valid_run_id,
)
from orchestrator.reads import UNAVAILABLE, RunNotFound, StoredRuns, no_run
from orchestrator.replica import RESTART_REASON, ReplicaConflict, ReplicaLoop, SqliteLock, default_replica_id
from orchestrator.router import RegistryLike, Router
from orchestrator.runs import RunStore, StoreUnavailable, now, owned_by
from orchestrator.spec import GraphSpec, TaskSpec, as_graph
from orchestrator.state import RunState
from orchestrator.stats_sink import StatsSink
from orchestrator.transports import Transport, Transports
from orchestrator.wakeups import Wakeups, listen
from orchestrator.writer import RunWriter
from protocol import telemetry
from protocol.a2a import new_id
from protocol.auth import Principal
from protocol.egress import EgressPolicy
from protocol.logs import log_context
from registry.stdio import StdioAllowlist

__all__ = ["Orchestrator", "RunNotFound", "RESTART_REASON", "ReplicaConflict", "StoreUnavailable"]

_log = logging.getLogger(__name__)


class Orchestrator(StoredRuns):
    """Routes and runs task graphs over registered agents; every run is recorded in the store."""

    def __init__(
        self,
        registry: RegistryLike,
        store: RunStore | str,
        *,
        local_agents: list[Agent] | None = None,
        transport: Transport | None = None,
        router: Router | None = None,
        energy: EnergyModel | None = None,
        resume: bool = True,
        record_stats: bool = True,
        limits: RunLimits | None = None,
        stdio_allowlist: StdioAllowlist | None = None,
        egress: EgressPolicy | None = None,
        agent_credentials: AgentCredentials | None = None,
        replica_id: str | None = None,
        lease_s: float = 15.0,
        poll_s: float = 1.0,
    ) -> None:
        """``limits`` bound what runs are accepted; ``stdio_allowlist`` names the only commands an ``mcp+stdio:``
        target may start (default: the host's allowlist file); ``egress`` says which addresses agent calls may
        reach (default: public and loopback addresses, never link-local or private ranges);
        ``agent_credentials`` the bearer tokens agent calls carry and the CA their TLS is checked against
        (from configuration only; default: no token, the system's CAs). ``replica_id`` names this replica
        (default host-pid-random); ``lease_s`` is how long its runs stay its own without a heartbeat (a crashed
        replica's runs move after at most that); readers poll the store every ``poll_s`` between wake-ups."""
        if lease_s <= 0 or poll_s <= 0:
            raise ValueError("lease_s and poll_s must be positive")
        self.registry = registry
        self.replica_id = replica_id or default_replica_id()
        self.store = (
            store
            if isinstance(store, RunStore)
            else RunStore(store, application_name=f"scaleout-orchestrator {self.replica_id}")
        )
        self.router = router or Router(registry)
        self.limits = limits or RunLimits()
        self._transports = (
            Transports(local_agents, stdio_allowlist=stdio_allowlist, egress=egress, credentials=agent_credentials)
            if transport is None
            else None
        )
        self.transport: Transport = transport or self._transports  # type: ignore[assignment]
        self.stats = StatsSink(self.router)
        self.executor = Executor(self.router, self.transport, energy=energy, stats=self.stats if record_stats else None)
        self.resume = resume
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.leases = Leases(self.store, self.replica_id, lease_s)
        self.wakeups = Wakeups()
        self.writer = RunWriter(self.store, fence=self.leases.fence, on_commit=self._committed, on_lost=self.abandon)
        self.replica = ReplicaLoop(self, self.leases)
        self.active: dict[str, RunState] = {}
        self._tg: TaskGroup | None = None
        self._stopping = False
        self._reserved = 0  # runs being submitted here, not yet stored

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Orchestrator]:
        """Start the writer, the heartbeat and the listener, and take over unfinished runs; on exit stop this
        replica's runs, flush, and release their leases (another replica, or the next start, resumes them).
        Raises ``ReplicaConflict`` when another orchestrator runs on the same SQLite file."""
        lock = SqliteLock(self.store.url)
        lock.acquire()
        stop = threading.Event()
        try:
            async with anyio.create_task_group() as service:
                service.start_soon(self.writer.run)
                service.start_soon(self.stats.run)
                if self.store.postgres:
                    name = f"scaleout-orchestrator {self.replica_id} listener"
                    service.start_soon(lambda: listen(self.store.url, self._notified, stop, application_name=name))
                try:
                    async with AsyncExitStack() as stack:
                        if self._transports is not None:
                            await stack.enter_async_context(self._transports)
                        async with anyio.create_task_group() as tg:
                            self._tg = tg
                            await self.replica.step()  # runs left unfinished start again before we answer
                            tg.start_soon(self.replica.run)
                            try:
                                yield self
                            finally:
                                self._stopping = True
                                for state in self.active.values():
                                    state.stopping = not state.cancel_requested
                                tg.cancel_scope.cancel()
                finally:
                    self._tg = None
                    with anyio.CancelScope(shield=True):
                        await self.writer.aclose()
                        with anyio.move_on_after(10.0):
                            try:
                                await anyio.to_thread.run_sync(self.leases.release)
                            except Exception as exc:  # the database is away: the leases lapse instead
                                _log.warning("could not release this replica's runs: %s", exc)
                        with anyio.move_on_after(10.0):  # statistics are best effort: never hang a shutdown on them
                            await self.stats.aclose()
                    stop.set()
                    service.cancel_scope.cancel()
        finally:
            stop.set()
            lock.release()

    # -- runs ---------------------------------------------------------------------------------------------

    async def validate(self, spec: GraphSpec | TaskSpec | dict[str, Any]) -> TaskGraph:
        """Parse and check a request: within the limits (LimitExceeded), well-formed (pydantic ValidationError),
        acyclic, every reference bound and every need served (GraphError). The CPU work runs in a thread."""
        check_request_size(spec, self.limits)  # before any parsing: a huge graph costs nothing
        graph = await anyio.to_thread.run_sync(self._build, spec)
        await anyio.to_thread.run_sync(graph.check_served, self.router.serves)
        return graph

    def _build(self, spec: GraphSpec | TaskSpec | dict[str, Any]) -> TaskGraph:
        graph_spec = as_graph(spec)
        check_graph_limits(graph_spec, self.limits)
        return TaskGraph(graph_spec)

    async def submit(self, spec: GraphSpec | TaskSpec | dict[str, Any], *, owner: str | None = None) -> str:
        """Validate and store a run; returns its id once the run is committed (follow it with ``wait`` or
        ``events``). It runs here when this replica has room, else it is queued for any replica.

        ``owner`` (a principal's ``owner``: its tenant, else its subject) is recorded on the run; the methods that
        read or cancel runs take the same ``owner`` and see only that owner's runs. None, a trusted in-process
        caller, records no owner (the run counts as owner "local") and sees every run. Raises StoreUnavailable
        while the database cannot be reached."""
        if self._tg is None:
            raise RuntimeError("the orchestrator is not running; use 'async with orchestrator.running():'")
        if self.writer.unavailable is not None:
            raise StoreUnavailable(UNAVAILABLE)
        await self.writer.room()
        graph = await self.validate(spec)
        here = self.free_slots() > 0
        if not here and await self._read(self.store.count_queued) >= self.limits.max_queued_runs:
            raise LimitExceeded(
                429,
                f"{self.limits.max_active_runs} runs are active on this replica and {self.limits.max_queued_runs}"
                " wait for one (RunLimits.max_active_runs / max_queued_runs, 'orchestrator serve --max-active-runs"
                " / --max-queued-runs'); wait for some to finish",
            )
        run_id, stamp = new_id(), now()
        run = {
            "id": run_id,
            "name": graph.spec.name,
            "status": "pending",
            "spec": graph.spec.model_dump(mode="json"),
            "created_at": stamp,
            "updated_at": stamp,
            "owner": owner,
            "lease_owner": self.replica_id if here else None,
            "lease_expires_at": stamp + timedelta(seconds=self.lease_s) if here else None,
        }
        tasks = [{"run_id": run_id, "task_id": tid, "status": "pending", "attempts": 0} for tid in graph.order()]
        state = RunState(run_id, graph, self.writer, owner=owner, seq=1)
        created = {
            "run_id": run_id,
            "seq": 1,
            "kind": "run.created",
            "task_id": None,
            "data": {"tasks": len(graph.tasks), "name": graph.spec.name},
            "at": stamp,
        }
        self._reserved += here  # holds the slot while the run is written (not in ``active``: no lease yet)
        try:
            await self._read(self.store.create_run, run, tasks, created)
        finally:
            self._reserved -= here
        if here:
            self.start(state)
        return run_id

    async def run(self, spec: GraphSpec | TaskSpec | dict[str, Any], *, owner: str | None = None) -> dict[str, Any]:
        """Submit a run, wait for its end, return its full record."""
        return await self.wait(await self.submit(spec, owner=owner), owner=owner)

    async def wait(self, run_id: str, *, owner: str | None = None) -> dict[str, Any]:
        """Wait until ``run_id`` ends, wherever it runs; return its record (tasks, attempts, usage)."""
        state = self.active.get(run_id)
        if state is not None and owned_by(state.owner, owner):
            await state.done.wait()
        return await self._wait_stored(run_id, owner)

    async def cancel(self, run_id: str, *, owner: str | None = None) -> bool:
        """Cancel a run and its tasks on the agents, wherever it runs; False when it had already ended. Another
        owner's run raises RunNotFound exactly as an unknown id does."""
        if not valid_run_id(run_id):
            raise RunNotFound(no_run(run_id))
        state = self.active.get(run_id)
        if state is not None and not owned_by(state.owner, owner):
            raise RunNotFound(no_run(run_id))
        if state is not None and not state.abandoned:
            self.cancel_here(run_id)
            await state.done.wait()
            if not state.abandoned:
                return True
        run = await self._read(self.store.get_run, run_id)
        if run is None or not owned_by(run["owner"], owner):
            raise RunNotFound(no_run(run_id))
        outcome = await self._read(self.leases.request_cancel, run_id)
        if outcome == "ended":
            return False
        self.wakeups.wake(run_id)
        if outcome == "requested":  # the owner cancels it at its next wake-up or heartbeat
            with anyio.move_on_after(max(3 * self.lease_s, 30.0)):
                await self.wait(run_id, owner=owner)
        return True

    async def answer(
        self, run_id: str, task_id: str, answer: Any, *, by: str = "local", owner: str | None = None
    ) -> dict[str, Any]:
        """Answer the question task ``task_id`` of ``run_id`` waits on (see ``orchestrator.answers``); raises
        RunNotFound, NotWaiting or InvalidAnswer."""
        return await answer_task(self, run_id, task_id, answer, by=by, owner=owner)

    async def approve(
        self,
        run_id: str,
        task_id: str,
        approve: bool = True,
        comment: str = "",
        *,
        principal: Principal | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Approve (or reject) the output task ``task_id`` of ``run_id`` holds for approval (see
        ``orchestrator.approvals``); raises RunNotFound, NotAwaitingApproval or NotAnApprover."""
        return await decide(self, run_id, task_id, approve, comment, principal=principal, owner=owner)

    # -- this replica's runs --------------------------------------------------------------------------------

    def free_slots(self) -> int:
        """How many more runs this replica takes on now."""
        if self._stopping or self._tg is None:
            return 0
        return self.limits.max_active_runs - len(self.active) - self._reserved

    def start(self, state: RunState) -> None:
        """Execute ``state`` here (its lease is this replica's)."""
        assert self._tg is not None
        self.active[state.run_id] = state
        self._tg.start_soon(self._execute, state)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``fn()`` in this replica's task group (a negotiation run's body); it is cancelled when the replica
        stops."""
        if self._tg is None:
            raise RuntimeError("the orchestrator is not running; use 'async with orchestrator.running():'")
        self._tg.start_soon(fn)

    def cancel_here(self, run_id: str) -> None:
        """Cancel this replica's run ``run_id`` (asked here, or by another replica)."""
        state = self.active.get(run_id)
        if state is not None and not state.cancel_requested:
            state.cancel_requested = True
            state.scope.cancel()

    def abandon(self, run_ids: set[str]) -> None:
        """Stop running ``run_ids`` here without recording an end: this replica lost their leases."""
        for run_id in run_ids:
            state = self.active.get(run_id)
            if state is not None and not state.abandoned:
                _log.warning("replica %s lost the lease of run %s; another replica runs it", self.replica_id, run_id)
                state.abandoned = True
                state.scope.cancel()

    async def close(self, state: RunState, status: str, error: str | None) -> None:
        """Record the end of ``state``: unfinished tasks, the run's status and usage, the final event; release
        its lease. Waits until written (a failed write is logged, never raised: waiters must be released)."""
        state.closing = True
        if status != "cancelled":
            for tid in state.graph.tasks:  # a deadline or a crash leaves tasks that never ended
                if tid not in state.finished:
                    state.finished[tid] = "failed"
                    self.writer.put(
                        "update_task", {"status": "failed", "error": error, "finished_at": now()}, state.run_id, tid
                    )
        else:
            for tid in state.graph.tasks:
                if tid not in state.finished:
                    self.writer.put("update_task", {"status": "cancelled", "finished_at": now()}, state.run_id, tid)
        usage = {k: round(v, 6) for k, v in state.usage.items()}
        stamp = now()
        state.status = status
        state.emit(f"run.{status}", error=error, usage=usage)
        self.writer.put(
            "update_run",
            {
                "status": status,
                "error": error,
                "usage": usage,
                "updated_at": stamp,
                "finished_at": stamp,
                "lease_owner": None,
                "lease_expires_at": None,
            },
            state.run_id,
        )
        # Bounded: with the database away the writes stay queued (and are retried) but waiters are released.
        with anyio.move_on_after(5.0 if self._stopping else 30.0):
            try:
                await self.writer.flush()
            except RuntimeError as exc:
                _log.error("run %s ended %s but a write failed: %s", state.run_id, status, exc)

    # -- internals ------------------------------------------------------------------------------------------

    def _committed(self, run_ids: set[str]) -> None:
        for run_id in run_ids:
            self.wakeups.wake(run_id)

    def _notified(self, channel: str, payload: str) -> None:
        if channel == "scaleout_events":
            self.wakeups.wake(payload)
        elif channel == "scaleout_runs":
            self.replica.claim_soon()
        elif channel == "scaleout_cancel":
            self.cancel_here(payload)
        else:  # the listener reconnected: anything may have happened meanwhile
            self.wakeups.wake_all()
            self.replica.claim_soon()

    async def _execute(self, state: RunState) -> None:
        """Run ``state`` inside its run span (the trace's root here), its log lines carrying the run id."""
        with log_context(run_id=state.run_id), telemetry.span(telemetry.SPAN_RUN) as span:
            if span.is_recording():
                name = state.graph.spec.name or ""
                span.set_attributes({"scaleout.run.id": state.run_id, "scaleout.run.name": name})
                span.set_attributes({"scaleout.run.tasks": len(state.graph.tasks), "scaleout.replica": self.replica_id})
            await self._execute_run(state)
            if span.is_recording():
                span.set_attribute("scaleout.run.status", state.status)
                if state.status == "failed":
                    span.set_status(telemetry.StatusCode.ERROR, "the run failed")

    async def _execute_run(self, state: RunState) -> None:
        deadline = state.graph.spec.deadline_s
        if deadline:
            state.scope.deadline = anyio.current_time() + deadline
        if state.cancel_requested:
            state.scope.cancel()
        status, error = "failed", None
        try:
            with state.scope:
                if state.status == "waiting":  # resumed while a task waited for input: it asks again if it still does
                    state.status = "running"
                    self.writer.put("update_run", {"status": "running", "updated_at": now()}, state.run_id)
                elif state.status != "running":
                    state.status = "running"
                    self.writer.put("update_run", {"status": "running", "updated_at": now()}, state.run_id)
                    state.emit("run.started", replica=self.replica_id)
                await self.executor.execute(state)
            bad = [t for t, s in state.finished.items() if s != "succeeded"]
            if state.cancel_requested:
                status, error = "cancelled", "cancelled by request"
            elif state.scope.cancelled_caught:
                error = f"the run passed its deadline of {deadline} s"
            elif bad:
                error = f"{len(bad)} task(s) did not succeed: {', '.join(bad[:10])}"
            else:
                status = "succeeded"
        except Exception as exc:  # a bug must end the run with a reason, never lose it
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]  # type: ignore[assignment]
            error = f"orchestrator error: {type(exc).__name__}: {exc}"
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    if state.abandoned:
                        pass  # another replica owns it now: it records the rest
                    elif self._stopping and not state.cancel_requested:
                        why = "orchestrator stopping; another replica or the next start resumes it"
                        state.emit("run.interrupted", reason=why)
                    else:
                        await self.close(state, status, error)
                finally:
                    state.done.set()
                    self.active.pop(state.run_id, None)
                    self.replica.claim_soon()
