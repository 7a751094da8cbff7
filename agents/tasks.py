"""A2A task lifecycle for one agent: create, run, stream, list, cancel and subscribe, in memory.

Which skill a message is for: ``message.metadata["skill"]`` names it; without it the agent's default
(first declared) skill runs. The skill input is the first data part (a JSON object), else the text parts.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from agents.agent import Agent, SkillContext
from agents.errors import AgentError, SkillInputError, SkillNotFound
from protocol.a2a import (
    TERMINAL_STATES,
    Artifact,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    new_id,
)
from protocol.jsonrpc import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

__all__ = ["TaskRuntime", "SKILL_METADATA_KEY", "USAGE_METADATA_KEY"]

SKILL_METADATA_KEY = "skill"
USAGE_METADATA_KEY = "usage"
_SUPPORTED_OUTPUT = {"application/json", "text/plain", "*/*"}


@dataclass
class _Running:
    task: Task
    skill_id: str
    arguments: Any
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    subscribers: list[MemoryObjectSendStream[StreamResponse]] = field(default_factory=list)


class TaskRuntime:
    """Runs an agent's tasks. Use inside ``async with runtime.running():`` (the server's lifespan does)."""

    def __init__(self, agent: Agent, *, max_tasks: int = 10_000, task_timeout_s: float | None = 600.0) -> None:
        self.agent = agent
        self.max_tasks = max_tasks
        self.task_timeout_s = task_timeout_s
        self._tasks: OrderedDict[str, _Running] = OrderedDict()
        self._tg: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TaskRuntime]:
        """Open the task group that background and streamed tasks run in; cancel them all on exit."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    # -- the A2A methods -------------------------------------------------------------------------------

    async def send(self, request: SendMessageRequest) -> Task:
        """SendMessage: run the task to a terminal state (or return at once with ``returnImmediately``)."""
        run = self._start(request)
        if request.configuration and request.configuration.return_immediately:
            return self._view(run.task, self._history_length(request))
        await run.done.wait()
        return self._view(run.task, self._history_length(request))

    async def stream(self, request: SendMessageRequest) -> AsyncIterator[StreamResponse]:
        """SendStreamingMessage: the task, then status and artifact updates until a terminal state."""
        run = self._prepare(request)
        receive = self._subscribe(run)
        yield StreamResponse(task=self._view(run.task, None))
        self._launch(run)
        async with receive:
            async for event in receive:
                yield event

    def get(self, task_id: str, history_length: int | None = None) -> Task:
        return self._view(self._find(task_id).task, history_length)

    def list(self, request: ListTasksRequest) -> ListTasksResponse:
        tasks = [r.task for r in reversed(self._tasks.values())]
        if request.context_id:
            tasks = [t for t in tasks if t.context_id == request.context_id]
        if request.status and request.status != TaskState.UNSPECIFIED:
            tasks = [t for t in tasks if t.status.state == request.status]
        if request.status_timestamp_after:
            tasks = [t for t in tasks if t.status.timestamp > request.status_timestamp_after]
        tasks.sort(key=lambda t: t.status.timestamp, reverse=True)
        size = request.page_size or 50
        offset = _decode_token(request.page_token)
        page = tasks[offset : offset + size]
        next_token = _encode_token(offset + size) if offset + size < len(tasks) else ""
        views = [self._view(t, request.history_length, artifacts=request.include_artifacts) for t in page]
        return ListTasksResponse(tasks=views, next_page_token=next_token, page_size=size, total_size=len(tasks))

    async def cancel(self, task_id: str) -> Task:
        run = self._find(task_id)
        if run.task.status.state in TERMINAL_STATES:
            raise TaskNotCancelableError(f"task {task_id} is already {run.task.status.state.value}")
        run.scope.cancel()
        self._set_state(run, TaskState.CANCELED, "canceled by request")
        return self._view(run.task, None)

    async def subscribe(self, task_id: str) -> AsyncIterator[StreamResponse]:
        """SubscribeToTask: the current task, then its updates until a terminal state."""
        run = self._find(task_id)
        if run.task.status.state in TERMINAL_STATES:
            raise UnsupportedOperationError(
                f"task {task_id} is already {run.task.status.state.value}; use GetTask to read it"
            )
        receive = self._subscribe(run)
        yield StreamResponse(task=self._view(run.task, None))
        async with receive:
            async for event in receive:
                yield event

    # -- internals -------------------------------------------------------------------------------------

    def _find(self, task_id: str) -> _Running:
        run = self._tasks.get(task_id)
        if run is None:
            raise TaskNotFoundError(f"no task with id {task_id!r} on agent {self.agent.name!r}")
        return run

    def _history_length(self, request: SendMessageRequest) -> int | None:
        return request.configuration.history_length if request.configuration else None

    def _prepare(self, request: SendMessageRequest) -> _Running:
        message = request.message
        config = request.configuration
        if config and config.accepted_output_modes and not (set(config.accepted_output_modes) & _SUPPORTED_OUTPUT):
            raise ContentTypeNotSupportedError(
                f"this agent answers in application/json or text/plain, not {config.accepted_output_modes}"
            )
        if config and config.task_push_notification_config:
            from protocol.jsonrpc import PushNotificationNotSupportedError

            raise PushNotificationNotSupportedError("this agent does not send push notifications")
        if message.task_id:
            previous = self._find(message.task_id)
            if previous.task.status.state in TERMINAL_STATES:
                raise UnsupportedOperationError(
                    f"task {message.task_id} is {previous.task.status.state.value}; "
                    "send a new message without taskId to start a new task"
                )
            raise UnsupportedOperationError("this agent does not take follow-up messages on a running task")
        skill_id = (message.metadata or {}).get(SKILL_METADATA_KEY)
        if skill_id is not None and not isinstance(skill_id, str):
            raise InvalidParamsError('message.metadata["skill"] must be a string skill id')
        try:
            skill = self.agent.get_skill(skill_id)
        except SkillNotFound as exc:
            raise InvalidParamsError(str(exc)) from None
        arguments = _arguments(message)
        try:
            skill.parse_input(arguments)
        except SkillInputError as exc:
            raise InvalidParamsError(str(exc)) from None
        task_id, context_id = new_id(), message.context_id or new_id()
        stored = message.model_copy(update={"task_id": task_id, "context_id": context_id})
        task = Task(
            id=task_id,
            context_id=context_id,
            status=TaskStatus(state=TaskState.SUBMITTED),
            history=[stored],
            metadata={SKILL_METADATA_KEY: skill.id},
        )
        run = _Running(task=task, skill_id=skill.id, arguments=arguments)
        self._tasks[task_id] = run
        self._evict()
        return run

    def _start(self, request: SendMessageRequest) -> _Running:
        run = self._prepare(request)
        self._launch(run)
        return run

    def _launch(self, run: _Running) -> None:
        if self._tg is None:
            raise RuntimeError("TaskRuntime is not running; use 'async with runtime.running():'")
        self._tg.start_soon(self._execute, run)

    async def _execute(self, run: _Running) -> None:
        task = run.task
        deadline = anyio.current_time() + self.task_timeout_s if self.task_timeout_s else None
        ctx = SkillContext(self.agent.brain, task_id=task.id, context_id=task.context_id, deadline=deadline)
        try:
            with run.scope:
                self._set_state(run, TaskState.WORKING)
                try:
                    result, usage = await self.agent.call(run.skill_id, run.arguments, ctx=ctx)
                except AgentError as exc:
                    self._finish_usage(run, ctx)
                    self._set_state(run, TaskState.FAILED, f"{type(exc).__name__}: {exc}")
                    return
                except Exception as exc:  # a bug in the skill must not take the server down
                    self._finish_usage(run, ctx)
                    self._set_state(run, TaskState.FAILED, f"skill raised {type(exc).__name__}: {exc}")
                    return
                artifact = Artifact(
                    name=f"{run.skill_id}-result",
                    parts=[Part.from_data(result.model_dump(mode="json"))],
                    metadata={USAGE_METADATA_KEY: usage.model_dump(mode="json")},
                )
                task.artifacts = [artifact]
                self._finish_usage(run, ctx)
                self._publish(run, StreamResponse(artifact_update=TaskArtifactUpdateEvent(
                    task_id=task.id, context_id=task.context_id, artifact=artifact, last_chunk=True)))
                self._set_state(run, TaskState.COMPLETED)
        finally:
            if task.status.state not in TERMINAL_STATES:
                self._set_state(run, TaskState.CANCELED, "the agent shut down")
            run.done.set()
            for stream in run.subscribers:
                stream.close()
            run.subscribers.clear()

    def _finish_usage(self, run: _Running, ctx: SkillContext) -> None:
        meta = dict(run.task.metadata or {})
        meta[USAGE_METADATA_KEY] = ctx.usage.model_dump(mode="json")
        run.task.metadata = meta

    def _set_state(self, run: _Running, state: TaskState, reason: str | None = None) -> None:
        task = run.task
        if task.status.state in TERMINAL_STATES:
            return
        message = None
        if reason:
            message = Message.agent(Part.from_text(reason), task_id=task.id, context_id=task.context_id)
        task.status = TaskStatus(state=state, message=message)
        self._publish(run, StreamResponse(status_update=TaskStatusUpdateEvent(
            task_id=task.id, context_id=task.context_id, status=task.status, metadata=task.metadata)))
        if state in TERMINAL_STATES:
            run.done.set()
            for stream in run.subscribers:
                stream.close()
            run.subscribers.clear()

    def _subscribe(self, run: _Running) -> Any:
        send, receive = anyio.create_memory_object_stream[StreamResponse](max_buffer_size=256)
        run.subscribers.append(send)
        return receive

    def _publish(self, run: _Running, event: StreamResponse) -> None:
        for stream in list(run.subscribers):
            try:
                stream.send_nowait(event)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                stream.close()  # a subscriber that cannot keep up (or left) is dropped, never waited on
                run.subscribers.remove(stream)

    def _view(self, task: Task, history_length: int | None, *, artifacts: bool = True) -> Task:
        history = task.history or []
        if history_length is not None:
            history = history[len(history) - history_length :] if history_length else []
        update: dict[str, Any] = {"history": history or None}
        if not artifacts:
            update["artifacts"] = None
        return task.model_copy(update=update, deep=True)

    def _evict(self) -> None:
        while len(self._tasks) > self.max_tasks:
            for task_id, run in self._tasks.items():
                if run.task.status.state in TERMINAL_STATES:
                    del self._tasks[task_id]
                    break
            else:
                return


def _arguments(message: Message) -> Any:
    for part in message.parts:
        if part.data is not None:
            return part.data
    text = message.text()
    if text:
        return text
    if any(p.url is not None or p.raw is not None for p in message.parts):
        raise ContentTypeNotSupportedError("skills take a data part (JSON) or text parts, not files or URLs")
    raise InvalidParamsError("the message has no data or text part to use as skill input")


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(token.encode()).decode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidParamsError(f"pageToken {token[:40]!r} is not one this server issued") from None
