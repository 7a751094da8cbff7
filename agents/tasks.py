"""A2A task lifecycle for one agent: create, run, stream, list, cancel, subscribe and continue, in memory.

Which skill a message is for: ``message.metadata["skill"]`` names it; without it the agent's default
(first declared) skill runs. The skill input is the first data part (a JSON object), else the text parts.
Every finished skill run carries its usage in ``Task.metadata["usage"]`` and in the artifact's metadata.

Tenancy: every method takes the caller's ``Principal`` (``LOCAL_PRINCIPAL``, which sees everything, when
omitted). A task belongs to the owner (tenant, else subject) of the principal that created it; GetTask,
ListTasks, CancelTask, SubscribeToTask and follow-up messages see only the caller's own tasks unless it holds
``admin``. Anyone else's task id answers TaskNotFound, word for word as an unknown id does.
A new-task message the same owner already sent (same messageId and content) gets its task back (``task_index``).
"""

from __future__ import annotations

import base64
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel

from agents.agent import Agent, Skill, SkillContext
from agents.errors import AgentError, SkillInputError, SkillNotFound
from agents.output_parts import accepted_output_modes, output_parts
from agents.task_ask import DEFAULT_INPUT_TIMEOUT_S, InputUnavailable, ask_input, check_input_timeout
from agents.task_handle import INTERRUPTED_STATES, Executor, TaskHandle
from agents.task_index import MessageIndex, follow_repeat
from agents.task_input import check_media, message_arguments
from agents.task_waiters import DISCONNECT_GRACE_S, Disconnected, Waiters
from agents.usage import Usage
from protocol import telemetry
from protocol.a2a import (
    TERMINAL_STATES,
    Artifact,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
    TaskStatus,
    new_id,
)
from protocol.auth import ADMIN, LOCAL_PRINCIPAL, Principal
from protocol.jsonrpc import (
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from protocol.logs import log_context

__all__ = ["TaskRuntime", "TaskHandle", "Executor", "SKILL_METADATA_KEY", "USAGE_METADATA_KEY", "usage_wire"]

FREEZE_AFTER = 64  # finished tasks kept as objects before being frozen to JSON (recent ones are read most)
MAX_RETAINED_BYTES = 64 * 1024 * 1024  # finished tasks kept, by the size of their JSON
SKILL_METADATA_KEY = "skill"
USAGE_METADATA_KEY = "usage"
_log = logging.getLogger(__name__)


def usage_wire(usage: Usage) -> dict[str, Any]:
    """``Usage`` as carried in task and artifact metadata (camelCase, like every A2A field)."""
    return usage.model_dump(mode="json", by_alias=True)


class TaskRuntime:
    """Runs an agent's tasks. Use inside ``async with runtime.running():`` (the server's lifespan does).

    ``executor`` replaces the default (run the message's skill) for agents that drive tasks themselves;
    ``input_modes`` then says which part media types such an agent accepts (default: its skills' modes).
    Finished tasks are kept up to ``max_tasks`` and ``max_retained_bytes`` of JSON, oldest dropped first.
    A turn whose waiting callers all went away is cancelled after ``disconnect_grace_s`` (None: never; see
    ``agents.task_waiters``). A skill that asks (``ctx.ask``) waits up to ``input_timeout_s`` for the answer,
    which is the next message on its task (see ``agents.task_ask``).
    """

    def __init__(
        self,
        agent: Agent,
        *,
        executor: Executor | None = None,
        input_modes: Sequence[str] | None = None,
        max_tasks: int = 10_000,
        max_retained_bytes: int = MAX_RETAINED_BYTES,
        task_timeout_s: float | None = 600.0,
        disconnect_grace_s: float | None = DISCONNECT_GRACE_S,
        input_timeout_s: float = DEFAULT_INPUT_TIMEOUT_S,
    ) -> None:
        check_input_timeout(input_timeout_s)
        self.input_timeout_s = input_timeout_s
        if disconnect_grace_s is not None and disconnect_grace_s < 0:
            raise ValueError("disconnect_grace_s must be >= 0 seconds, or None to never cancel on disconnect")
        self.agent = agent
        self.executor: Executor = executor or self.run_skill
        self._validates_arguments = executor is None
        # The default executor settles its task only as it returns, so a blocking SendMessage can run the turn
        # in the request's own task; a custom executor may settle and go on working, so it always gets its own.
        self._runs_inline = executor is None
        self._inline: set[TaskHandle] = set()  # turns running in their requests' tasks, canceled on shutdown
        self.input_modes = list(input_modes) if input_modes is not None else None
        self.max_tasks = max_tasks
        self.max_retained_bytes = max_retained_bytes
        self._retained_bytes = 0  # the JSON size of the finished tasks kept
        self.task_timeout_s = task_timeout_s
        self._tasks: OrderedDict[str, TaskHandle] = OrderedDict()
        self._origins = MessageIndex()  # (owner, messageId) -> the task that message created
        self._waiters = Waiters(disconnect_grace_s)
        self._modes: dict[str, tuple[Skill, list[str]]] = {}
        self._tg: TaskGroup | None = None
        self._finished: deque[TaskHandle] = deque()  # recently finished, frozen once FREEZE_AFTER newer ones finish

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TaskRuntime]:
        """Open the task group that tasks run in; cancel them all on exit."""
        async with anyio.create_task_group() as tg:
            self._tg = self._waiters.task_group = tg
            try:
                yield self
            finally:
                self._tg = self._waiters.task_group = None
                for handle in list(self._inline):
                    handle.cancel("the agent shut down")
                tg.cancel_scope.cancel()

    @property
    def disconnect_grace_s(self) -> float | None:
        """How long a turn whose waiting callers all went away keeps running for one to come back (None: ever)."""
        return self._waiters.grace_s

    @disconnect_grace_s.setter
    def disconnect_grace_s(self, value: float | None) -> None:
        self._waiters.grace_s = value

    # -- the A2A methods -------------------------------------------------------------------------------

    async def send(
        self,
        request: SendMessageRequest,
        principal: Principal | None = None,
        *,
        disconnected: Disconnected | None = None,
    ) -> Task | Message:
        """SendMessage: wait for a terminal or interrupted state (or return at once with ``returnImmediately``).

        ``disconnected`` returns when the caller has gone: the wait ends, and the turn is cancelled unless someone
        comes back for it within ``disconnect_grace_s``.
        """
        handle, history_length = await self._send(request, principal or LOCAL_PRINCIPAL, disconnected)
        return handle.reply if handle.reply is not None else handle.view(history_length)

    async def send_wire(
        self,
        request: SendMessageRequest,
        principal: Principal | None = None,
        *,
        disconnected: Disconnected | None = None,
    ) -> dict[str, Any]:
        """SendMessage answered as the JSON-ready ``SendMessageResponse`` (what the JSON-RPC binding sends)."""
        handle, history_length = await self._send(request, principal or LOCAL_PRINCIPAL, disconnected)
        if handle.reply is not None:
            return {"message": handle.reply.wire()}
        return {"task": handle.wire(history_length)}

    async def _send(
        self, request: SendMessageRequest, principal: Principal, disconnected: Disconnected | None
    ) -> tuple[TaskHandle, int | None]:
        config = request.configuration
        history_length = config.history_length if config else None
        blocking = not (config and config.return_immediately)
        if self._tg is None:
            raise RuntimeError("TaskRuntime is not running; use 'async with runtime.running():'")
        handle, repeat = self._prepare(request, principal)
        if repeat:  # the same request again: answer as the first call does, without running anything
            if blocking:
                await self._waiters.attend(handle, handle.settled.wait, disconnected)
            else:
                self._waiters.seen(handle)
            return handle, history_length
        self._waiters.start_turn(handle, attended=blocking)
        if handle.answer_pending:  # an answer: the skill that asked goes on with it, in its own turn
            if blocking:
                await self._waiters.attend(handle, handle.settled.wait, disconnected)
            return handle, history_length
        if blocking and self._inline_ok(handle):  # the turn runs here, and goes on if the caller goes
            await self._waiters.attend(handle, partial(self._run_turn, handle, inline=True), disconnected, runs=True)
            return handle, history_length
        self._launch(handle)
        if blocking:
            await self._waiters.attend(handle, handle.settled.wait, disconnected)
        return handle, history_length

    async def stream(
        self, request: SendMessageRequest, principal: Principal | None = None
    ) -> AsyncIterator[StreamResponse]:
        """SendStreamingMessage: the task (or a message), then its updates until terminal or interrupted."""
        handle, repeat = self._prepare(request, principal or LOCAL_PRINCIPAL)
        if repeat:
            with self._waiters.attached(handle):
                async with aclosing(follow_repeat(handle)) as events:
                    async for event in events:
                        yield event
            return
        self._waiters.start_turn(handle, attended=True)
        with self._waiters.attached(handle):
            receive = handle.subscribe(first=True)
            if not handle.answer_pending:
                self._launch(handle)
            async with receive:
                async for event in receive:
                    yield event

    def get(self, task_id: str, history_length: int | None = None, principal: Principal | None = None) -> Task:
        """GetTask: the task with its last ``history_length`` messages (all when None)."""
        handle = self._find(task_id, principal)
        self._waiters.seen(handle)
        return handle.view(history_length)

    def list(self, request: ListTasksRequest, principal: Principal | None = None) -> ListTasksResponse:
        """ListTasks: the caller's tasks (every task for admin), newest status first, filtered by context,
        state and status time, paged."""
        handles = list(self._tasks.values())
        if principal is not None and not principal.has(ADMIN):
            handles = [h for h in handles if h.owner == principal.owner]
        if request.context_id:
            handles = [h for h in handles if h.context_id == request.context_id]
            for handle in handles:
                self._waiters.seen(handle)
        if request.status and request.status != TaskState.UNSPECIFIED:
            handles = [h for h in handles if h.state == request.status]
        if request.status_timestamp_after:
            handles = [h for h in handles if h.timestamp > request.status_timestamp_after]
        handles.sort(key=lambda h: h.timestamp, reverse=True)
        size = request.page_size or 50
        offset = _decode_token(request.page_token)
        page = handles[offset : offset + size]
        next_token = _encode_token(offset + size) if offset + size < len(handles) else ""
        views = [h.view(request.history_length, artifacts=request.include_artifacts) for h in page]
        return ListTasksResponse(tasks=views, next_page_token=next_token, page_size=size, total_size=len(handles))

    async def cancel(self, task_id: str, principal: Principal | None = None) -> Task:
        """CancelTask: stop a live task; a task already in a terminal state cannot be canceled."""
        handle = self._find(task_id, principal)
        if handle.state in TERMINAL_STATES:
            raise TaskNotCancelableError(f"task {task_id} is already {handle.state.value} and cannot be canceled")
        handle.cancel()
        self._count_finished(handle)  # a task canceled between turns has no turn left to count it
        return handle.view()

    async def subscribe(self, task_id: str, principal: Principal | None = None) -> AsyncIterator[StreamResponse]:
        """SubscribeToTask: the current task, then its updates until a terminal state."""
        handle = self._find(task_id, principal)
        if handle.state in TERMINAL_STATES:
            raise UnsupportedOperationError(f"task {task_id} is already {handle.state.value}; use GetTask to read it")
        with self._waiters.attached(handle):
            receive = handle.subscribe()
            yield StreamResponse(task=handle.view())
            async with receive:
                async for event in receive:
                    yield event

    # -- the default executor: run the skill -----------------------------------------------------------

    async def run_skill(self, handle: TaskHandle) -> None:
        """Run the message's skill; the result becomes an artifact (data and/or text, as the caller accepts) carrying
        the usage."""
        deadline = anyio.current_time() + self.task_timeout_s if self.task_timeout_s else None
        task = handle.task
        ctx = SkillContext(
            self.agent.brain,
            task_id=task.id,
            context_id=task.context_id,
            deadline=deadline,
            asker=partial(self._ask, handle),
        )
        handle.working()
        arguments, handle.parsed_input = handle.parsed_input, None  # validated when the message came in
        started = time.perf_counter()
        with log_context(task_id=task.id), telemetry.span(telemetry.SPAN_SKILL) as span:
            if span.is_recording():
                span.set_attributes({"scaleout.agent.name": self.agent.name, "scaleout.skill": handle.skill_id})
            try:
                if arguments is None and handle.message is not None:
                    arguments = message_arguments(handle.message)
                result, usage = await self.agent.call(handle.skill_id, arguments, ctx=ctx)
            except SkillInputError as exc:  # the skill itself found its input unusable: refused, not failed
                _log.info("skill %r refused its input: %s", handle.skill_id, exc)
                telemetry.record_skill(self.agent.name, handle.skill_id, "rejected", time.perf_counter() - started)
                handle.set_usage(usage_wire(ctx.usage))
                handle.reject(f"{type(exc).__name__}: {exc}")
                return
            except Exception as exc:  # a bug in the skill must not take the server down
                _log.error("skill %r of agent %r failed", handle.skill_id, self.agent.name, exc_info=True)
                telemetry.failed(span, exc)
                telemetry.record_skill(self.agent.name, handle.skill_id, "failed", time.perf_counter() - started)
                handle.set_usage(usage_wire(ctx.usage))
                reason = f"{type(exc).__name__}: {exc}"
                handle.fail(reason if isinstance(exc, AgentError) else f"skill {handle.skill_id!r} raised {reason}")
                return
        telemetry.record_skill(self.agent.name, handle.skill_id, "completed", time.perf_counter() - started)
        spent = usage_wire(usage)
        handle.set_usage(spent)
        handle.add_artifact(
            Artifact(
                name=f"{handle.skill_id}-result",
                parts=output_parts(result.model_dump(mode="json"), handle.output_modes),
                metadata={USAGE_METADATA_KEY: dict(spent)},
            )
        )
        handle.complete()

    async def _ask(
        self, handle: TaskHandle, question: str, answer_type: type[BaseModel], timeout_s: float | None
    ) -> BaseModel:
        """``SkillContext.ask`` in a task: wait in input-required for the next message (see ``agents.task_ask``)."""
        if handle in self._inline:  # its blocking caller would wait for the answer it has to give
            raise InputUnavailable(
                f"skill {handle.skill_id!r} asked for input but was not declared to ask; "
                "register it with @agent.skill(asks=True)"
            )
        return await ask_input(handle, question, answer_type, timeout_s or self.input_timeout_s)

    # -- internals -------------------------------------------------------------------------------------

    def _inline_ok(self, handle: TaskHandle) -> bool:
        """Whether a blocking call may run ``handle``'s turn in its own task (not for a skill that may ask)."""
        if not self._runs_inline:
            return False
        skill = self.agent.skills.get(handle.skill_id)
        return skill is None or not skill.asks

    def _find(self, task_id: str, principal: Principal | None = None) -> TaskHandle:
        """The task ``task_id`` if ``principal`` may see it; anyone else's task is not found, like an unknown id."""
        handle = self._tasks.get(task_id)
        if handle is None or not _may_see(principal, handle):
            raise TaskNotFoundError(f"no task with id {task_id!r} on agent {self.agent.name!r}")
        return handle

    def _prepare(self, request: SendMessageRequest, principal: Principal) -> tuple[TaskHandle, bool]:
        """The task a message is for, and whether it repeats a messageId this owner already started a task with."""
        message, config = request.message, request.configuration
        output_modes = accepted_output_modes(config.accepted_output_modes if config else None)
        if config and config.task_push_notification_config:
            raise PushNotificationNotSupportedError("this agent does not send push notifications; poll or stream")
        if message.task_id:
            handle = self._continue(message, principal)
            handle.output_modes = output_modes
            return handle, False
        repeated = self._origins.find(principal.owner, message)
        if repeated is not None:
            return repeated, True
        skill, parsed = self._skill(message, None)
        task_id, context_id = new_id(), message.context_id or new_id()
        stored = message.model_copy(update={"task_id": task_id, "context_id": context_id})
        task = Task(
            id=task_id,
            context_id=context_id,
            status=TaskStatus(state=TaskState.SUBMITTED),
            history=[stored],
            metadata={SKILL_METADATA_KEY: skill.id},
        )
        handle = TaskHandle(task, stored, skill.id, owner=principal.owner)
        handle.begin_turn(stored)
        handle.parsed_input = parsed
        handle.output_modes = output_modes
        self._tasks[task_id] = handle
        self._origins.add(handle)
        self._evict()
        return handle, False

    def _continue(self, message: Message, principal: Principal) -> TaskHandle:
        """A follow-up message on an existing task (the caller's own): allowed only while it waits for input."""
        handle = self._find(message.task_id or "", principal)
        task = handle.task
        if message.context_id and message.context_id != task.context_id:
            raise InvalidParamsError(
                f"contextId {message.context_id!r} does not match task {task.id}'s context {task.context_id!r}; "
                "omit contextId or send the task's own"
            )
        if handle.state in TERMINAL_STATES:
            raise UnsupportedOperationError(
                f"task {task.id} is {handle.state.value}; send a new message without taskId to start a new task"
            )
        if handle.state not in INTERRUPTED_STATES:
            raise UnsupportedOperationError(
                f"task {task.id} is {handle.state.value}, not waiting for input; wait for it or SubscribeToTask"
            )
        if handle.asking:  # the answer to a running skill's question: that skill validates it
            handle.resume(message.model_copy(update={"context_id": task.context_id}))
            return handle
        skill, parsed = self._skill(message, handle.skill_id)
        handle.skill_id = skill.id
        handle.begin_turn(message.model_copy(update={"context_id": task.context_id}))
        handle.parsed_input = parsed
        return handle

    def _skill(self, message: Message, fallback: str | None) -> tuple[Skill, BaseModel | None]:
        """The skill a message asks for and, for the default executor, its validated input."""
        skill_id = (message.metadata or {}).get(SKILL_METADATA_KEY, fallback)
        if skill_id is not None and not isinstance(skill_id, str):
            raise InvalidParamsError('message.metadata["skill"] must be a string skill id')
        try:
            skill = self.agent.get_skill(skill_id)
        except SkillNotFound as exc:
            raise InvalidParamsError(str(exc)) from None
        check_media(message, self.input_modes if self.input_modes is not None else self._skill_modes(skill))
        if not self._validates_arguments:
            return skill, None
        try:
            return skill, skill.parse_input(message_arguments(message))
        except SkillInputError as exc:
            raise InvalidParamsError(str(exc)) from None

    def _skill_modes(self, skill: Skill) -> Sequence[str]:
        cached = self._modes.get(skill.id)
        if cached is None or cached[0] is not skill:  # a skill replaced on the agent gets its own entry
            cached = self._modes[skill.id] = (skill, skill.card().input_modes)
        return cached[1]

    def _launch(self, handle: TaskHandle) -> None:
        if self._tg is None:
            raise RuntimeError("TaskRuntime is not running; use 'async with runtime.running():'")
        self._tg.start_soon(self._run_turn, handle)

    async def _run_turn(self, handle: TaskHandle, *, inline: bool = False) -> None:
        """One turn of the executor under the handle's cancel scope, which also carries the task's time limit.

        ``inline``: run in the caller's (a blocking SendMessage's) task; if that caller is cancelled (its client
        went away, or it timed out), the turn stops and the task ends CANCELED.
        """
        scope = handle.scope
        if self.task_timeout_s is not None:
            scope.deadline = anyio.current_time() + self.task_timeout_s
        if inline:
            self._inline.add(handle)
        try:
            with scope:
                await self.executor(handle)
            if scope.cancelled_caught:  # a CancelTask has already made the task terminal: then this is a no-op
                handle.fail(f"the task ran past its {self.task_timeout_s} s time limit")
        except anyio.get_cancelled_exc_class():
            handle.cancel("the request waiting for the task was cancelled" if inline else "the agent shut down")
            raise
        except Exception as exc:  # an executor bug fails its task, never the server
            handle.fail(f"the agent failed: {type(exc).__name__}: {exc}")
        finally:
            if inline:
                self._inline.discard(handle)
            handle.end_turn()
            if handle.reply is not None:
                self._tasks.pop(handle.task.id, None)  # a direct message reply leaves no task behind
                self._origins.drop(handle)
            else:
                self._count_finished(handle)
                self._finished.append(handle)
                if len(self._finished) > FREEZE_AFTER:
                    self._finished.popleft().freeze()  # a no-op unless the task is finished

    def _count_finished(self, handle: TaskHandle) -> None:
        """Count a finished task's JSON size once (0 while it is live); drop the oldest if over the budget."""
        if not handle.retained_bytes:
            handle.retained_bytes = handle.snapshot()
            self._retained_bytes += handle.retained_bytes
            if self._retained_bytes > self.max_retained_bytes:
                self._evict()

    def _evict(self) -> None:
        """Drop the oldest finished tasks while over ``max_tasks`` or ``max_retained_bytes``; live ones stay."""
        count, size, victims = len(self._tasks), self._retained_bytes, []
        for task_id, handle in self._tasks.items():
            if count <= self.max_tasks and size <= self.max_retained_bytes:
                break
            if handle.state in TERMINAL_STATES:
                victims.append(task_id)
                count, size = count - 1, size - handle.retained_bytes
        for task_id in victims:
            self._origins.drop(self._tasks.pop(task_id))
        self._retained_bytes = size


def _may_see(principal: Principal | None, handle: TaskHandle) -> bool:
    return principal is None or handle.owner == principal.owner or principal.has(ADMIN)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(token.encode()).decode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidParamsError(f"pageToken {token[:40]!r} is not one this server issued") from None
