"""Run a task graph: ready tasks concurrently under a limit, routed to agents, with deadlines, bounded retries
with exponential backoff (``constraints.backoff_s`` doubling up to ``constraints.max_backoff_s``), fallback to
the next candidate, output validation, and full event records.

An agent that rejects the input (``AgentRejectedInput``: invalid arguments, unknown skill) ends the task after that
one attempt, and the call is not reported to the registry: the caller's mistake is not the agent's failure.
Output that fails the output schema is the agent's: retried and reported.

An attempt on a remote agent is committed to the store before its message is sent, under the attempt id that
is also the message's ``messageId`` and ``contextId``; a replica that takes a run over adopts the task an attempt
left running on its agent (``Transport.adopt``) instead of sending it again (orchestrator/attempts.py).
A task with an approval gate holds its output until a person decides (orchestrator/approvals.py); a rejection
counts as a failed attempt.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import anyio

from orchestrator.approvals import hold, restored, settle
from orchestrator.attempts import Attempts, InvalidOutput, Outcome, until_reachable
from orchestrator.energy import EnergyModel
from orchestrator.graph import GraphError, resolve_input
from orchestrator.router import Router
from orchestrator.runs import now
from orchestrator.spec import TaskSpec
from orchestrator.state import RunState
from orchestrator.stats_sink import StatsSink
from orchestrator.transports import Transport
from protocol import telemetry
from protocol.logs import log_context

__all__ = ["Executor", "InvalidOutput"]


class Executor:
    """Executes runs: schedules a run's DAG and each task's attempts; all state changes become events."""

    def __init__(
        self, router: Router, transport: Transport, *, energy: EnergyModel | None = None, stats: StatsSink | None = None
    ) -> None:
        self.router = router
        self.transport = transport
        self.energy = energy or EnergyModel.from_env()
        self.stats = stats
        self.attempts = Attempts(router, transport, self.energy, stats)

    async def execute(self, state: RunState) -> None:
        """Run every unfinished task of ``state``, producers first, until all end or the scope is cancelled."""
        graph = state.graph
        waiting = {
            tid: sum(1 for p in graph.predecessors(tid) if state.finished.get(p) != "succeeded")
            for tid in graph.tasks
            if tid not in state.finished
        }
        total = len(waiting)
        if total == 0:
            return
        ready: deque[str] = deque(tid for tid, n in waiting.items() if n == 0)
        for tid, n in list(waiting.items()):  # resumed runs: tasks below a failed task stay skipped
            if n and any(state.finished.get(p) in ("failed", "skipped") for p in graph.predecessors(tid)):
                self._skip(state, tid, waiting, ready)
        send, receive = anyio.create_memory_object_stream[str](math.inf)
        for tid in ready:
            send.send_nowait(tid)
        ready.clear()
        if len(state.finished) >= len(graph.tasks):
            send.close()

        async def worker() -> None:
            async for tid in receive:
                await self._run_task(state, tid)
                outcome = state.finished[tid]
                for succ in graph.successors(tid):
                    if succ not in waiting:
                        continue
                    if outcome == "succeeded":
                        waiting[succ] -= 1
                        if waiting[succ] == 0:
                            send.send_nowait(succ)
                    else:
                        self._skip(state, succ, waiting, ready)
                if len(state.finished) >= len(graph.tasks):
                    send.close()

        async with send, receive, anyio.create_task_group() as tg:
            for _ in range(min(graph.spec.concurrency, total)):
                tg.start_soon(worker)

    def _skip(self, state: RunState, tid: str, waiting: dict[str, int], ready: deque[str]) -> None:
        if tid in state.finished:
            return
        failed = [p for p in state.graph.predecessors(tid) if state.finished.get(p) in ("failed", "skipped")]
        reason = f"skipped: upstream task {failed[0]!r} did not succeed" if failed else "skipped"
        state.finished[tid] = "skipped"
        state.writer.put("update_task", {"status": "skipped", "error": reason, "finished_at": now()}, state.run_id, tid)
        state.emit("task.skipped", tid, error=reason)
        self._release_inputs(state, tid)
        for succ in state.graph.successors(tid):
            if succ in waiting:
                self._skip(state, succ, waiting, ready)

    async def _run_task(self, state: RunState, tid: str) -> None:
        """Run task ``tid`` inside its task span, its log lines carrying the task id."""
        with log_context(task_id=tid), telemetry.span(telemetry.SPAN_TASK) as span:
            if span.is_recording():
                need = _need(state.graph.tasks[tid])
                span.set_attributes({"scaleout.run.id": state.run_id, "scaleout.task.id": tid, "scaleout.need": need})
            await self._task(state, tid)
            if span.is_recording():
                status = state.finished.get(tid, "unfinished")
                span.set_attribute("scaleout.task.status", status)
                if status != "succeeded":
                    span.set_status(telemetry.StatusCode.ERROR, f"task {status}")

    async def _task(self, state: RunState, tid: str) -> None:
        spec = state.graph.tasks[tid]
        run_id = state.run_id
        made = state.attempts_made.get(tid, 0)
        left_running = state.in_flight.pop(tid, None)
        errors: list[str] = []
        if left_running is not None:
            adopted = await self.attempts.adopt(state, spec, left_running)
            if adopted is not None and adopted[0]:
                agent_id = left_running["agent_id"]
                rejected = await hold(state, spec, adopted[1], left_running["number"], agent_id, left_running["id"])
                if rejected is None:
                    return self._finish(state, tid, "succeeded", output=adopted[1], agent_id=agent_id, attempts=made)
                errors.append(f"attempt {made}: {rejected}")
        elif (prior := await restored(state, spec)) is not None:  # resumed while its output awaited approval
            rejected = await settle(state, spec, prior)
            if rejected is None:
                return self._finish(
                    state, tid, "succeeded", output=prior.output, agent_id=prior.agent_id, attempts=made
                )
            errors.append(f"attempt {prior.attempt}: {rejected}")
        try:
            arguments = resolve_input(spec.input, state.outputs)
        except GraphError as exc:
            return self._finish(state, tid, "failed", error=str(exc))
        await state.writer.room()  # the store is away or far behind: wait before routing
        routing = await until_reachable(lambda: self.router.route(spec))
        explained = routing.explain()
        state.writer.put(
            "update_task",
            {"status": "running", "input": arguments, "started_at": now(), "routing": explained},
            run_id,
            tid,
        )
        # The full explanation (scores, reasons, exclusions) is in the task record; the event names the ranking.
        state.emit(
            "task.routed",
            tid,
            ranked=[c.agent.name for c in routing.candidates],
            excluded=[e["name"] for e in routing.excluded],
        )
        _routed(telemetry.current_span(), routing)
        if not routing.candidates:
            why = "; ".join(f"{e['name']}: {e['why']}" for e in routing.excluded) or "none registered"
            return self._finish(state, tid, "failed", error=f"no healthy candidate for {_need(spec)} ({why})")
        c = spec.constraints
        # after a takeover numbering goes on, and the attempts made before count (one more is always allowed)
        last = made + max(1, c.max_attempts - made)
        for number in range(made + 1, last + 1):
            candidate = routing.candidates[(number - 1) % len(routing.candidates)]
            if number > made + 1 and c.backoff_s:
                await anyio.sleep(c.backoff(number - made - 1))
            await state.writer.room()  # the store is away or far behind: wait, do not call agents meanwhile
            outcome = await self.attempts.attempt(state, spec, number, candidate, arguments)
            if outcome.ok:
                agent_id = candidate.agent.id
                rejected = await hold(state, spec, outcome.value, number, agent_id, outcome.attempt_id)
                if rejected is None:
                    return self._finish(
                        state, tid, "succeeded", output=outcome.value, agent_id=agent_id, attempts=number
                    )
                outcome = Outcome(False, rejected)
            errors.append(f"attempt {number} on {candidate.agent.name}: {outcome.value}")
            if not outcome.retry:  # the input itself was refused: every further attempt would be too
                return self._finish(state, tid, "failed", error=" | ".join(errors), attempts=number)
        self._finish(state, tid, "failed", error=" | ".join(errors), attempts=last)

    def _finish(
        self,
        state: RunState,
        tid: str,
        status: str,
        *,
        output: Any = None,
        error: str | None = None,
        agent_id: str | None = None,
        attempts: int = 0,
    ) -> None:
        state.finished[tid] = status
        if status == "succeeded" and state.graph.successors(tid):
            state.outputs[tid] = output  # kept only while a consumer may still need it
        values = {"status": status, "output": output, "error": error, "attempts": attempts, "finished_at": now()}
        if agent_id:
            values["agent_id"] = agent_id
        state.writer.put("update_task", values, state.run_id, tid)
        state.emit(
            f"task.{status}", tid, agent_id=agent_id, error=error, output=output if status == "succeeded" else None
        )
        self._release_inputs(state, tid)

    def _release_inputs(self, state: RunState, tid: str) -> None:
        """Forget outputs nobody will read again (memory stays flat on large graphs)."""
        for pred in state.graph.predecessors(tid):
            left = state.consumers_left.get(pred, len(state.graph.successors(pred))) - 1
            state.consumers_left[pred] = left
            if left <= 0:
                state.outputs.pop(pred, None)


def _routed(span: Any, routing: Any) -> None:
    """The routing decision on the task span: the ranked candidates, the exclusions, and why, as an event."""
    if not span.is_recording():
        return
    ranked = [c.agent.name for c in routing.candidates[:50]]  # bounded: a ranking may hold thousands
    excluded = [e["name"] for e in routing.excluded[:50]]
    span.set_attributes({"scaleout.routing.ranked": ranked, "scaleout.routing.excluded": excluded})
    for rank, candidate in enumerate(routing.candidates[:10], 1):
        span.add_event("routing.candidate", {"rank": rank, "agent": candidate.agent.name, "why": candidate.reason})
    for exclusion in routing.excluded[:10]:
        span.add_event("routing.excluded", {"agent": exclusion["name"], "why": str(exclusion["why"])})


def _need(spec: TaskSpec) -> str:
    return f"skill {spec.skill!r}" if spec.skill else f"tags {spec.tags}" if spec.tags else f"text {spec.text!r}"
