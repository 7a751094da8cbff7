"""One attempt of a task on one agent: the call (or the adoption of a call a previous owner left running), its
deadline and output validation, the wait while the agent's task asks for input, and its record (store, events,
registry statistics, telemetry).

An attempt on a remote agent is committed to the store before its message is sent, under the attempt id that
is also the message's ``messageId`` and ``contextId``; a replica that takes a run over adopts the task an attempt
left running on its agent (``Transport.adopt``) instead of sending it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import anyio
import jsonschema

from agents.usage import Usage
from orchestrator.energy import EnergyModel
from orchestrator.router import Candidate, Router
from orchestrator.runs import is_unavailable, now
from orchestrator.spec import TaskSpec
from orchestrator.state import RunState, WaitingTask
from orchestrator.stats_sink import StatsSink
from orchestrator.transports import (
    ANSWERED_BY_KEY,
    AgentCallError,
    AgentRejectedInput,
    CallResult,
    InputRequired,
    Transport,
    call_result,
)
from protocol import telemetry
from protocol.a2a import new_id
from protocol.logs import log_context
from registry.errors import RegistryUnavailable
from registry.models import AgentRecord

__all__ = ["Attempts", "InvalidOutput", "Outcome", "run_waiting", "until_reachable"]

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
    waiting: InputRequired | None = None  # status "waiting": the agent's task asks a question


class Outcome(NamedTuple):
    """How one attempt ended: ``value`` is the output, or the error; ``retry`` False when another attempt would
    repeat the caller's own mistake."""

    ok: bool
    value: Any
    retry: bool = True
    attempt_id: str | None = None


class Attempts:
    """Makes and records the attempts of a run's tasks on agents (the executor decides which and when)."""

    def __init__(
        self, router: Router, transport: Transport, energy: EnergyModel, stats: StatsSink | None = None
    ) -> None:
        self.router = router
        self.transport = transport
        self.energy = energy
        self.stats = stats
        self._validators: dict[int, Any] = {}

    async def attempt(self, state: RunState, spec: TaskSpec, number: int, cand: Candidate, arguments: Any) -> Outcome:
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
            outcome = (await self._try(state, spec, number, cand, arguments, attempt_id))._replace(
                attempt_id=attempt_id
            )
            if span.is_recording() and not outcome.ok:
                span.set_status(telemetry.StatusCode.ERROR, str(outcome.value)[:500])
            return outcome

    async def _try(
        self, state: RunState, spec: TaskSpec, number: int, cand: Candidate, arguments: Any, attempt_id: str
    ) -> Outcome:
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
            if ended.waiting is not None:
                ended = await self._wait_answer(state, spec, agent, cand.skill, attempt_id, ended)
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
            return Outcome(True, ended.output)
        return Outcome(False, ended.error, retry=counted)

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
        except InputRequired as exc:  # the wait for a person runs outside the deadline (see ``_wait_answer``)
            return _Ended(status="waiting", waiting=exc)
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

    async def adopt(self, state: RunState, spec: TaskSpec, attempt: dict[str, Any]) -> tuple[bool, Any] | None:
        """Finish the attempt a previous owner left running: take the agent's task for it (its outcome) if the
        agent has one; None (the attempt marked interrupted) when there is nothing to adopt."""
        attempt_id, agent_id = attempt["id"], attempt["agent_id"]
        adopt = getattr(self.transport, "adopt", None)
        try:
            agent = await until_reachable(lambda: anyio.to_thread.run_sync(self.router.registry.get, agent_id))
        except Exception:  # deregistered meanwhile: nothing to ask
            agent = None
        started = time.perf_counter()
        ended = _Ended()
        if agent is not None and adopt is not None:
            state.emit("attempt.adopting", spec.id, attempt_id=attempt_id, agent_id=agent_id, number=attempt["number"])
            ended = await self._ended(spec, agent, attempt["skill"], attempt_id, lambda: adopt(agent, attempt_id))
            if ended.waiting is not None:
                ended = await self._wait_answer(state, spec, agent, attempt["skill"], attempt_id, ended)
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

    async def _wait_answer(
        self, state: RunState, spec: TaskSpec, agent: AgentRecord, skill: str, attempt_id: str, ended: _Ended
    ) -> _Ended:
        """While the agent's task asks a question: the task (and the run) wait, the question is an event; once
        the agent's task moves on (answered, timed out, cancelled), the answer is an event and the attempt goes
        on under its deadline."""
        wait_moved = getattr(self.transport, "wait_moved", None)
        tid = spec.id
        recorded = {attempt_id}  # the attempt's own message (its id is the attempt id), then each answer
        while ended.waiting is not None:
            asked = ended.waiting
            if wait_moved is None:
                return _Ended(error=f"the agent asks for input, which this transport cannot wait for: {asked.text}")
            question = asked.question
            state.waiting[tid] = WaitingTask(agent, asked.task_id, question.schema_ if question else None)
            state.writer.put("update_task", {"status": "waiting"}, state.run_id, tid)
            state.emit(
                "task.waiting",
                tid,
                attempt_id=attempt_id,
                agent_id=agent.id,
                agent=agent.name,
                agent_task_id=asked.task_id,
                question=question.question if question else asked.text,
                schema=question.schema_ if question else None,
                error=question.error if question else None,
                timeout_s=question.timeout_s if question else None,
            )
            run_waiting(state)
            try:
                task = await wait_moved(agent, asked.task_id, asked.status_at, state.waiting[tid].wake)
                last = (task.history or [None])[-1]
                if last is not None and last.role.value == "ROLE_USER" and last.message_id not in recorded:
                    recorded.add(last.message_id)
                    args = next((p.data for p in last.parts if p.data is not None), last.text())
                    by = (last.metadata or {}).get(ANSWERED_BY_KEY) or "an A2A caller"
                    answered = {"input": args, "by": by, "message_id": last.message_id}
                    state.emit("task.answered", tid, attempt_id=attempt_id, **answered)
            except AgentCallError as exc:
                return _Ended(error=f"{type(exc).__name__} while waiting for input: {exc}")
            finally:
                state.waiting.pop(tid, None)
                state.writer.put("update_task", {"status": "running"}, state.run_id, tid)
                run_waiting(state)

            async def settled(task: Any = task) -> CallResult:
                return call_result(task)

            ended = await self._ended(spec, agent, skill, attempt_id, settled)
        return ended

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


def run_waiting(state: RunState) -> None:
    """The run's status follows its tasks: ``waiting`` while any waits for input (or approval), else ``running``."""
    status = "waiting" if state.waiting or state.approvals else "running"
    if state.status in ("running", "waiting") and state.status != status:
        state.status = status
        state.writer.put("update_run", {"status": status, "updated_at": now()}, state.run_id)
        state.emit(f"run.{status}")


async def until_reachable(call: Callable[[], Awaitable[_T]]) -> _T:
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
