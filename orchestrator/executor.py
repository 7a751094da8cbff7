"""Run a task graph: ready tasks concurrently under a limit, routed to agents, with deadlines, bounded retries
with exponential backoff (``constraints.backoff_s`` doubling up to ``constraints.max_backoff_s``), fallback to
the next candidate, output validation, and full event records.

An agent that rejects the input (``AgentRejectedInput``: invalid arguments, unknown skill) ends the task after that
one attempt, and the call is not reported to the registry: the caller's mistake is not the agent's failure.
Output that fails the output schema is the agent's: retried and reported.

An attempt on a remote agent is committed to the store before its message is sent, under the attempt id that
is also the message's ``messageId`` and ``contextId``; a replica that takes a run over adopts the task an attempt
left running on its agent (``Transport.adopt``) instead of sending it again.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import anyio
import jsonschema

from agents.usage import Usage
from orchestrator.energy import EnergyModel
from orchestrator.graph import GraphError, resolve_input
from orchestrator.router import Candidate, Router
from orchestrator.runs import is_unavailable, now
from orchestrator.spec import TaskSpec
from orchestrator.state import RunState
from orchestrator.stats_sink import StatsSink
from orchestrator.transports import AgentCallError, AgentRejectedInput, CallResult, Transport
from protocol import telemetry
from protocol.a2a import new_id
from protocol.logs import log_context
from registry.errors import RegistryUnavailable
from registry.models import AgentRecord

__all__ = ["Executor", "InvalidOutput"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


class InvalidOutput(AgentCallError):
    """The agent's output does not meet the task's (or the skill's) output schema."""


@dataclass
class _Ended:
    """How a call to an agent ended (``status`` "failed" with no ``error``: there was nothing to adopt)."""

    result: CallResult | None = None
    status: str = "failed"
    usage: Usage = field(default_factory=Usage)
    output: Any = None
    error: str | None = None
    rejected: bool = False  # the agent refused the input: not the agent's failure


class _Outcome(NamedTuple):
    """How one attempt ended: ``value`` is the output, or the error; ``retry`` False when another attempt would
    repeat the caller's own mistake."""

    ok: bool
    value: Any
    retry: bool = True


class Executor:
    """Executes runs: schedules a run's DAG and each task's attempts; all state changes become events."""

    def __init__(
        self, router: Router, transport: Transport, *, energy: EnergyModel | None = None, stats: StatsSink | None = None
    ) -> None:
        self.router = router
        self.transport = transport
        self.energy = energy or EnergyModel.from_env()
        self.stats = stats
        self._validators: dict[int, Any] = {}

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
        if left_running is not None:
            adopted = await self._adopt(state, spec, left_running)
            if adopted is not None and adopted[0]:
                agent_id = left_running["agent_id"]
                return self._finish(state, tid, "succeeded", output=adopted[1], agent_id=agent_id, attempts=made)
        try:
            arguments = resolve_input(spec.input, state.outputs)
        except GraphError as exc:
            return self._finish(state, tid, "failed", error=str(exc))
        await state.writer.room()  # the store is away or far behind: wait before routing
        routing = await _until_reachable(lambda: self.router.route(spec))
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
        errors: list[str] = []
        c = spec.constraints
        # after a takeover numbering goes on, and the attempts made before count (one more is always allowed)
        last = made + max(1, c.max_attempts - made)
        for number in range(made + 1, last + 1):
            candidate = routing.candidates[(number - 1) % len(routing.candidates)]
            if number > made + 1 and c.backoff_s:
                await anyio.sleep(c.backoff(number - made - 1))
            await state.writer.room()  # the store is away or far behind: wait, do not call agents meanwhile
            outcome = await self._attempt(state, spec, number, candidate, arguments)
            if outcome.ok:
                agent_id = candidate.agent.id
                return self._finish(state, tid, "succeeded", output=outcome.value, agent_id=agent_id, attempts=number)
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

    async def _attempt(self, state: RunState, spec: TaskSpec, number: int, cand: Candidate, arguments: Any) -> _Outcome:
        """One attempt inside its attempt span, its log lines carrying the attempt id."""
        attempt_id = new_id()
        with log_context(attempt_id=attempt_id), telemetry.span(telemetry.SPAN_ATTEMPT) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        "scaleout.attempt.id": attempt_id,
                        "scaleout.attempt.number": number,
                        "scaleout.agent.id": cand.agent.id,
                        "scaleout.agent.name": cand.agent.name,
                        "scaleout.agent.transport": cand.agent.transport,
                        "scaleout.skill": cand.skill,
                        "scaleout.routing.reason": cand.reason,
                    }
                )
            outcome = await self._try(state, spec, number, cand, arguments, attempt_id)
            if span.is_recording() and not outcome.ok:
                span.set_status(telemetry.StatusCode.ERROR, str(outcome.value)[:500])
            return outcome

    async def _try(
        self, state: RunState, spec: TaskSpec, number: int, cand: Candidate, arguments: Any, attempt_id: str
    ) -> _Outcome:
        agent = cand.agent
        state.writer.put(
            "insert_attempt",
            {
                "id": attempt_id,
                "run_id": state.run_id,
                "task_id": spec.id,
                "number": number,
                "agent_id": agent.id,
                "agent_url": agent.url,
                "transport": agent.transport,
                "skill": cand.skill,
                "status": "running",
                "request": {"skill": cand.skill, "input": arguments},
                "started_at": now(),
            },
        )
        state.emit(
            "attempt.started",
            spec.id,
            attempt_id=attempt_id,
            number=number,
            agent_id=agent.id,
            agent=agent.name,
            url=agent.url,
            skill=cand.skill,
            why=cand.reason,
        )
        if agent.transport != "local" and not agent.url.startswith("local://"):
            # at most once across failover: the attempt (its message id) is stored before the message goes out
            try:
                await state.writer.flush()
            except RuntimeError:
                pass  # the write was dropped and logged; the call goes on
        self.router.load[agent.id] += 1
        started = time.perf_counter()
        try:
            call = self._ended(
                spec,
                agent,
                cand.skill,
                attempt_id,
                lambda: self.transport.call(agent, cand.skill, arguments, attempt_id=attempt_id),
            )
            ended = await call
        except anyio.get_cancelled_exc_class():
            if state.handed_over:
                raise  # stays "running" in the store: the next owner adopts the agent's task
            error = "cancelled (run cancelled or past its deadline)"
            with anyio.CancelScope(shield=True):
                await self.transport.cancel(agent, attempt_id)
                self._record(state, spec, attempt_id, agent.id, "cancelled", Usage(), started, None, error, cand.skill)
            raise
        finally:
            self.router.load[agent.id] -= 1
        counted = not ended.rejected
        self._record(
            state,
            spec,
            attempt_id,
            agent.id,
            ended.status,
            ended.usage,
            started,
            ended.output,
            ended.error,
            cand.skill,
            counted=counted,
        )
        if ended.status == "succeeded":
            return _Outcome(True, ended.output)
        return _Outcome(False, ended.error, retry=counted)

    async def _ended(
        self,
        spec: TaskSpec,
        agent: AgentRecord,
        skill: str,
        attempt_id: str,
        call: Callable[[], Awaitable[CallResult | None]],
    ) -> _Ended:
        """How ``call`` (a send, or an adoption) ended, under the task's deadline, its output validated; a missed
        deadline cancels the agent's task. Cancellation propagates to the caller."""
        deadline = spec.constraints.deadline_s
        try:
            with anyio.fail_after(deadline) if deadline else nullcontext():
                result = await call()
            if result is None:
                return _Ended()
            self._validate(spec, agent, skill, result.output)
            return _Ended(result, "succeeded", result.usage, result.output)
        except TimeoutError:
            _log.warning("attempt %s on %s missed its deadline of %s s", attempt_id, agent.name, deadline)
            with anyio.CancelScope(shield=True):
                await self.transport.cancel(agent, attempt_id)
            return _Ended(error=f"missed its deadline of {deadline} s; the agent's task was cancelled")
        except AgentRejectedInput as exc:
            _log.info("attempt %s: agent %s rejected the input: %s", attempt_id, agent.name, exc)
            why = f"the agent rejected the input (not retried, not counted against the agent): {exc}"
            return _Ended(error=why, rejected=True)
        except AgentCallError as exc:
            _log.warning("attempt %s on %s failed", attempt_id, agent.name, exc_info=True)
            return _Ended(error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a transport bug fails the attempt (and is recorded), not the whole run
            _log.error("attempt %s on %s failed unexpectedly", attempt_id, agent.name, exc_info=True)
            return _Ended(error=f"unexpected {type(exc).__name__} calling {agent.url}: {exc}")

    def _record(
        self,
        state: RunState,
        spec: TaskSpec,
        attempt_id: str,
        agent_id: str,
        status: str,
        usage: Usage,
        started: float,
        output: Any,
        error: str | None,
        skill: str | None = None,
        *,
        counted: bool = True,
    ) -> None:
        """Store and announce how an attempt ended; report it to the registry unless cancelled or not
        ``counted`` (the caller's own mistake)."""
        wall = time.perf_counter() - started
        joules = self.energy.joules(usage, observed_wall_s=wall)
        values = {
            "status": status,
            "response": {"output": output} if output is not None else None,
            "error": error,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "wall_seconds": usage.wall_seconds or wall,
            "cpu_seconds": usage.cpu_seconds,
            "energy_joules": joules,
            "finished_at": now(),
        }
        state.writer.put("update_attempt", values, attempt_id, run_id=state.run_id)
        state.add_usage(
            {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "wall_seconds": wall,
                "cpu_seconds": usage.cpu_seconds,
                "energy_joules": joules,
                "attempts": 1,
            }
        )
        state.emit(
            f"attempt.{status}",
            spec.id,
            attempt_id=attempt_id,
            agent_id=agent_id,
            error=error,
            wall_seconds=round(wall, 6),
            tokens=usage.total_tokens,
            energy_joules=round(joules, 6),
        )
        if self.stats is not None and status != "cancelled" and counted:
            self.stats.put(agent_id, status == "succeeded", wall, usage.total_tokens, skill)
        span = telemetry.current_span()
        if span.is_recording():
            span.set_attributes(
                {
                    "scaleout.attempt.status": status,
                    "gen_ai.usage.input_tokens": usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": usage.completion_tokens,
                    "scaleout.energy_joules": joules,
                }
            )
        telemetry.record_attempt(
            agent_id, skill or "", status, wall, usage.prompt_tokens, usage.completion_tokens, joules
        )

    async def _adopt(self, state: RunState, spec: TaskSpec, attempt: dict[str, Any]) -> tuple[bool, Any] | None:
        """Finish the attempt a previous owner left running: take the agent's task for it (its outcome) if the
        agent has one; None (the attempt marked interrupted) when there is nothing to adopt."""
        attempt_id, agent_id = attempt["id"], attempt["agent_id"]
        adopt = getattr(self.transport, "adopt", None)
        try:
            agent = await _until_reachable(lambda: anyio.to_thread.run_sync(self.router.registry.get, agent_id))
        except Exception:  # deregistered meanwhile: nothing to ask
            agent = None
        started = time.perf_counter()
        ended = _Ended()
        if agent is not None and adopt is not None:
            state.emit("attempt.adopting", spec.id, attempt_id=attempt_id, agent_id=agent_id, number=attempt["number"])
            ended = await self._ended(spec, agent, attempt["skill"], attempt_id, lambda: adopt(agent, attempt_id))
        if ended.status != "succeeded" and ended.error is None:  # nothing to adopt
            why = "its replica stopped before the agent answered, and the agent holds no task for it: sent again"
            state.writer.put(
                "update_attempt",
                {"status": "interrupted", "error": why, "finished_at": now()},
                attempt_id,
                run_id=state.run_id,
            )
            state.emit("attempt.interrupted", spec.id, attempt_id=attempt_id, error=why)
            return None
        self._record(
            state,
            spec,
            attempt_id,
            agent_id,
            ended.status,
            ended.usage,
            started,
            ended.output,
            ended.error,
            attempt["skill"],
            counted=not ended.rejected,
        )
        return (True, ended.output) if ended.status == "succeeded" else (False, ended.error)

    def _validate(self, spec: TaskSpec, agent: AgentRecord, skill: str, output: Any) -> None:
        schema = spec.output_schema or next(
            (s.output_schema for s in agent.skills if s.id == skill and s.output_schema), None
        )
        if schema is None:
            return
        validator = self._validators.get(id(schema))
        if validator is None:
            if len(self._validators) > 256:
                self._validators.clear()
            validator = jsonschema.validators.validator_for(schema)(schema)
            self._validators[id(schema)] = validator
        error = jsonschema.exceptions.best_match(validator.iter_errors(output))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "<root>"
            raise InvalidOutput(f"output fails the output schema at {where}: {error.message[:200]}")


async def _until_reachable(call: Callable[[], Awaitable[_T]]) -> _T:
    """``await call()``, retried with backoff while the database behind it cannot be reached: the run pauses."""
    delay = 0.05
    while True:
        try:
            return await call()
        except Exception as exc:
            if not (is_unavailable(exc) or isinstance(exc, RegistryUnavailable)):
                raise
        await anyio.sleep(delay)
        delay = min(delay * 2, 2.0)


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
