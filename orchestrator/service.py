"""The orchestrator: accepts runs, validates them, executes them, persists everything, recovers after a restart.

>>> async with Orchestrator(registry, "sqlite:///scaleout.db", local_agents=[echo_agent()]).running() as orch:
...     run = await orch.run({"skill": "echo", "input": {"text": "hi"}})
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup

from agents.agent import Agent
from orchestrator.credentials import AgentCredentials
from orchestrator.energy import EnergyModel
from orchestrator.executor import Executor, StatsSink
from orchestrator.graph import TaskGraph
from orchestrator.limits import (
    LimitExceeded,
    RunLimits,
    check_after,
    check_graph_limits,
    check_list_query,
    check_request_size,
    valid_run_id,
)
from orchestrator.router import RegistryLike, Router
from orchestrator.runs import RunStore, RunWriter, now, owned_by
from orchestrator.spec import GraphSpec, TaskSpec, as_graph
from orchestrator.state import RunState
from orchestrator.transports import Transport, Transports
from protocol.a2a import new_id
from protocol.egress import EgressPolicy
from registry.stdio import StdioAllowlist

__all__ = ["Orchestrator", "RunNotFound", "RESTART_REASON"]

RESTART_REASON = "the orchestrator restarted while this run was in progress"


class RunNotFound(LookupError):
    """No run with that id."""


class Orchestrator:
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
    ) -> None:
        """``limits`` bound what runs are accepted; ``stdio_allowlist`` names the only commands an ``mcp+stdio:``
        target may start (default: the host's allowlist file); ``egress`` says which addresses agent calls may
        reach (default: public and loopback addresses, never link-local or private ranges);
        ``agent_credentials`` the bearer tokens agent calls carry and the CA their TLS is checked against
        (from configuration only; default: no token, the system's CAs)."""
        self.registry = registry
        self.store = store if isinstance(store, RunStore) else RunStore(store)
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
        self.writer = RunWriter(self.store)
        self.active: dict[str, RunState] = {}
        self._tg: TaskGroup | None = None
        self._stopping = False

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Orchestrator]:
        """Start the writer and recover unfinished runs; on exit stop runs (they resume next start) and flush."""
        async with anyio.create_task_group() as service:
            service.start_soon(self.writer.run)
            service.start_soon(self.stats.run)
            try:
                async with AsyncExitStack() as stack:
                    if self._transports is not None:
                        await stack.enter_async_context(self._transports)
                    async with anyio.create_task_group() as tg:
                        self._tg = tg
                        await self._recover()
                        try:
                            yield self
                        finally:
                            self._stopping = True
                            tg.cancel_scope.cancel()
            finally:
                self._tg = None
                with anyio.CancelScope(shield=True):
                    await self.writer.aclose()
                    with anyio.move_on_after(10.0):  # statistics are best effort: never hang a shutdown on them
                        await self.stats.aclose()
                service.cancel_scope.cancel()

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
        """Validate and start a run; returns its id at once (follow it with ``wait`` or ``events``).

        ``owner`` (a principal's ``owner``: its tenant, else its subject) is recorded on the run; the methods that
        read or cancel runs take the same ``owner`` and see only that owner's runs. None, a trusted in-process
        caller, records no owner (the run counts as owner "local") and sees every run."""
        if self._tg is None:
            raise RuntimeError("the orchestrator is not running; use 'async with orchestrator.running():'")
        self._check_capacity()
        graph = await self.validate(spec)
        self._check_capacity()  # others may have started while this one was validated
        run_id = new_id()
        stamp = now()
        self.writer.put(
            "insert_run",
            {
                "id": run_id,
                "name": graph.spec.name,
                "status": "pending",
                "spec": graph.spec.model_dump(mode="json"),
                "created_at": stamp,
                "updated_at": stamp,
                "owner": owner,
            },
        )
        self.writer.put(
            "insert_tasks",
            [{"run_id": run_id, "task_id": tid, "status": "pending", "attempts": 0} for tid in graph.order()],
        )
        state = RunState(run_id, graph, self.writer, owner=owner)
        state.emit("run.created", tasks=len(graph.tasks), name=graph.spec.name)
        self._start(state)
        return run_id

    def _check_capacity(self) -> None:
        if len(self.active) >= self.limits.max_active_runs:
            raise LimitExceeded(
                429,
                f"{self.limits.max_active_runs} runs are active, this orchestrator's limit (RunLimits.max_active_runs,"
                " 'orchestrator serve --max-active-runs'); wait for some to finish",
            )

    async def run(self, spec: GraphSpec | TaskSpec | dict[str, Any], *, owner: str | None = None) -> dict[str, Any]:
        """Submit a run, wait for its end, return its full record."""
        return await self.wait(await self.submit(spec, owner=owner), owner=owner)

    async def wait(self, run_id: str, *, owner: str | None = None) -> dict[str, Any]:
        """Wait until ``run_id`` ends; return its record (tasks, attempts, usage)."""
        state = self.active.get(run_id)
        if state is not None and owned_by(state.owner, owner):
            await state.done.wait()
        return await self.get_run(run_id, owner=owner)

    async def cancel(self, run_id: str, *, owner: str | None = None) -> bool:
        """Cancel an active run and its tasks on the agents; False when it had already ended. Another owner's
        run raises RunNotFound exactly as an unknown id does."""
        if not valid_run_id(run_id):
            raise RunNotFound(_no_run(run_id))
        state = self.active.get(run_id)
        if state is not None and not owned_by(state.owner, owner):
            raise RunNotFound(_no_run(run_id))
        if state is None:
            run = await anyio.to_thread.run_sync(self.store.get_run, run_id)
            if run is None or not owned_by(run["owner"], owner):
                raise RunNotFound(_no_run(run_id))
            return False
        state.cancel_requested = True
        state.scope.cancel()
        await state.done.wait()
        return True

    async def get_run(self, run_id: str, *, attempts: bool = True, owner: str | None = None) -> dict[str, Any]:
        """The stored record of a run: status, error, usage, tasks and (optionally) attempts."""
        if not valid_run_id(run_id):
            raise RunNotFound(_no_run(run_id))
        await self.writer.flush()
        run = await anyio.to_thread.run_sync(self.store.get_run, run_id)
        if run is None or not owned_by(run["owner"], owner):
            raise RunNotFound(_no_run(run_id))
        run["tasks"] = await anyio.to_thread.run_sync(self.store.tasks_of, run_id)
        if attempts:
            run["attempts"] = await anyio.to_thread.run_sync(self.store.attempts_of, run_id)
        return run

    async def list_runs(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0, owner: str | None = None
    ) -> list[dict[str, Any]]:
        """The most recent runs (newest first) of ``owner`` (every run when None); raises InvalidQuery for an
        unknown status or out-of-range numbers."""
        check_list_query(status, limit, offset)
        await self.writer.flush()
        return await anyio.to_thread.run_sync(
            lambda: self.store.list_runs(status=status, limit=limit, offset=offset, owner=owner)
        )

    async def events(self, run_id: str, after: int = 0, *, owner: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """The run's events with ``seq > after``: stored ones first, then live ones until the run ends."""
        check_after(after)
        if not valid_run_id(run_id):
            raise RunNotFound(_no_run(run_id))
        if owner is not None:
            await self._check_owner(run_id, owner)
        last = after
        while True:
            state = self.active.get(run_id)
            live = state.subscribe() if state is not None else None
            await self.writer.flush()
            while True:
                rows = await anyio.to_thread.run_sync(self.store.events_after, run_id, last)
                for row in rows:
                    last = row["seq"]
                    yield row
                if len(rows) < 1000:
                    break
            if live is None:
                if last == after and await anyio.to_thread.run_sync(self.store.get_run, run_id) is None:
                    raise RunNotFound(_no_run(run_id))
                return
            async with live:
                async for event in live:
                    if event["seq"] > last:
                        last = event["seq"]
                        yield event
            if state is not None and state.done.is_set():
                live = None  # one more pass reads what the store got after the stream closed

    # -- internals ------------------------------------------------------------------------------------------

    async def _check_owner(self, run_id: str, owner: str) -> None:
        """RunNotFound unless ``run_id`` exists and belongs to ``owner``."""
        state = self.active.get(run_id)
        if state is not None:
            if not owned_by(state.owner, owner):
                raise RunNotFound(_no_run(run_id))
            return
        await self.writer.flush()
        run = await anyio.to_thread.run_sync(self.store.get_run, run_id)
        if run is None or not owned_by(run["owner"], owner):
            raise RunNotFound(_no_run(run_id))

    def _start(self, state: RunState) -> None:
        assert self._tg is not None
        self.active[state.run_id] = state
        self._tg.start_soon(self._execute, state)

    async def _execute(self, state: RunState) -> None:
        deadline = state.graph.spec.deadline_s
        if deadline:
            state.scope.deadline = anyio.current_time() + deadline
        status, error = "failed", None
        try:
            with state.scope:
                state.status = "running"
                self.writer.put("update_run", {"status": "running", "updated_at": now()}, state.run_id)
                state.emit("run.started")
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
                if self._stopping and not state.cancel_requested:
                    state.emit("run.interrupted", reason="orchestrator stopping; the run resumes at next start")
                else:
                    await self._close(state, status, error)
                state.done.set()
                state.close_subscribers()
                self.active.pop(state.run_id, None)

    async def _close(self, state: RunState, status: str, error: str | None) -> None:
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
        self.writer.put(
            "update_run",
            {"status": status, "error": error, "usage": usage, "updated_at": stamp, "finished_at": stamp},
            state.run_id,
        )
        state.status = status
        state.emit(f"run.{status}", error=error, usage=usage)
        await self.writer.flush()

    def _running_attempts(self, run_id: str) -> list[dict[str, Any]]:
        return self.store.attempts_of(run_id, status="running")

    async def _recover(self) -> None:
        """Resume (or fail, with the reason) every run a previous orchestrator left unfinished."""
        for run in await anyio.to_thread.run_sync(self.store.active_runs):
            run_id = run["id"]
            try:
                graph = TaskGraph(GraphSpec.model_validate(run["spec"]))
            except ValueError as exc:  # a stored spec this version cannot read: fail it, with the reason
                stamp = now()
                self.writer.put(
                    "update_run",
                    {
                        "status": "failed",
                        "updated_at": stamp,
                        "finished_at": stamp,
                        "error": f"{RESTART_REASON}; its spec cannot be resumed: {exc}",
                    },
                    run_id,
                )
                continue
            state = RunState(run_id, graph, self.writer, owner=run.get("owner"))
            state.seq = await anyio.to_thread.run_sync(self.store.last_seq, run_id)
            running = await anyio.to_thread.run_sync(self._running_attempts, run_id)
            for attempt in running:
                self.writer.put(
                    "update_attempt",
                    {"status": "interrupted", "error": RESTART_REASON, "finished_at": now()},
                    attempt["id"],
                )
                state.emit("attempt.interrupted", attempt["task_id"], attempt_id=attempt["id"], error=RESTART_REASON)
            for task in await anyio.to_thread.run_sync(self.store.tasks_of, run_id):
                if task["status"] in ("succeeded", "failed", "skipped"):
                    state.finished[task["task_id"]] = task["status"]
                    if task["status"] == "succeeded":
                        state.outputs[task["task_id"]] = task["output"]
            if self.resume:
                state.emit("run.resumed", reason=RESTART_REASON, done=len(state.finished))
                self._start(state)
            else:
                await self._close(state, "failed", RESTART_REASON + " (resume is off)")


def _no_run(run_id: str) -> str:
    return f"no run {str(run_id)[:80]!r}; list runs with GET /runs"
