"""One task held by a ``TaskRuntime``: its state machine and the fan-out of its events to streams.

An executor (the default runs the agent's skill) moves a task with ``working``, ``add_artifact``,
``complete``, ``fail``, ``reject``, ``require_input`` or answers with a plain message via ``respond``.
Streams end when the task reaches a terminal state, or an interrupted state (input/auth required)
entered after they opened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel

from protocol.a2a import (
    TERMINAL_STATES,
    Artifact,
    Message,
    Part,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

__all__ = ["TaskHandle", "Executor", "INTERRUPTED_STATES", "SETTLED_STATES", "STREAM_BUFFER"]

INTERRUPTED_STATES = frozenset({TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})
SETTLED_STATES = TERMINAL_STATES | INTERRUPTED_STATES
STREAM_BUFFER = 256

Executor = Callable[["TaskHandle"], Awaitable[None]]


@dataclass(eq=False)
class _Subscriber:
    send: MemoryObjectSendStream[StreamResponse]
    needs_first: bool  # a SendStreamingMessage stream: its first event must be the Task (or the Message)


class TaskHandle:
    """The live view of one task: what executors drive and what streams listen to."""

    def __init__(self, task: Task, message: Message, skill_id: str, *, owner: str = "local") -> None:
        self._task: Task | None = task
        self.owner = owner  # the principal's owner (tenant or subject) that created the task; never sent
        self.origin_id = message.message_id  # the messageId that created the task (a repeat gets this task)
        self._frozen: bytes | None = None  # a finished task's JSON (see ``snapshot`` and ``freeze``)
        self._index = (task.context_id, task.status.state, task.status.timestamp)  # valid once frozen
        self.message: Message | None = message  # the message the current turn answers
        self.skill_id = skill_id
        self.reply: Message | None = None  # set when the agent answered with a message, not a task
        self.parsed_input: BaseModel | None = None  # the turn's skill input, validated on arrival (default executor)
        self.output_modes: tuple[str, ...] = ("application/json",)  # how the turn's result goes out (output_parts)
        self.turn = 0
        self.retained_bytes = 0  # what the runtime counts this finished task as (its JSON size)
        self.scope = anyio.CancelScope()
        self.settled = anyio.Event()
        self._subscribers: list[_Subscriber] = []
        self._answered: anyio.Event | None = None  # set while a running skill waits for input (``expect_input``)
        self._answer: Message | None = None

    @property
    def task(self) -> Task:
        """The task; once frozen, a fresh copy read back from its JSON (nothing changes a finished task)."""
        if self._task is not None:
            return self._task
        assert self._frozen is not None
        return Task.model_validate_json(self._frozen)

    @property
    def state(self) -> TaskState:
        return self._task.status.state if self._task is not None else self._index[1]

    @property
    def context_id(self) -> str:
        return self._task.context_id if self._task is not None else self._index[0]

    @property
    def timestamp(self) -> str:
        """When the task's status last changed (ISO 8601)."""
        return self._task.status.timestamp if self._task is not None else self._index[2]

    def snapshot(self) -> int:
        """Serialise a finished task to JSON once (``freeze`` reuses it); returns its size in bytes (0 if live)."""
        task = self._task
        if task is None:
            return len(self._frozen or b"")
        if task.status.state not in TERMINAL_STATES:
            return 0
        if self._frozen is None:
            self._frozen = Task.__pydantic_serializer__.to_json(task)
        return len(self._frozen)

    def freeze(self) -> None:
        """Keep a finished task as JSON bytes and drop its object tree.

        A runtime retains thousands of finished tasks; as pydantic objects they made every full garbage
        collection walk them (about a third of a SendMessage's server time). Bytes are not tracked by the GC.
        """
        task = self._task
        if task is None or task.status.state not in TERMINAL_STATES or self._subscribers:
            return
        self.snapshot()
        self._index = (task.context_id, task.status.state, task.status.timestamp)
        self._task = None
        self.message = None
        self.parsed_input = None

    # -- executor API ----------------------------------------------------------------------------------

    def working(self, text: str | None = None) -> None:
        """Mark the task as being worked on (optionally with a progress note)."""
        self._set_status(TaskState.WORKING, text)

    def add_artifact(self, artifact: Artifact, *, append: bool = False, last_chunk: bool = True) -> None:
        """Attach an artifact (or, with ``append``, add parts to the artifact with the same id)."""
        self._check_open("add an artifact")
        self._announce()
        artifacts = list(self.task.artifacts or [])
        existing = next((i for i, a in enumerate(artifacts) if a.artifact_id == artifact.artifact_id), None)
        if append and existing is not None:
            merged = artifacts[existing].model_copy(update={"parts": artifacts[existing].parts + artifact.parts})
            artifacts[existing] = merged
        elif existing is not None:
            artifacts[existing] = artifact
        else:
            artifacts.append(artifact)
        self.task.artifacts = artifacts
        if self._subscribers:  # events are built only for someone listening
            self._publish(
                StreamResponse(
                    artifact_update=TaskArtifactUpdateEvent(
                        task_id=self.task.id,
                        context_id=self.task.context_id,
                        artifact=artifact,
                        append=append,
                        last_chunk=last_chunk,
                    )
                )
            )

    def complete(self, message: Message | str | None = None) -> None:
        """Finish the task successfully (optionally with a final agent message)."""
        self._set_status(TaskState.COMPLETED, message)

    def fail(self, reason: str) -> None:
        """Finish the task as failed; ``reason`` says what went wrong and how to fix it."""
        self._set_status(TaskState.FAILED, reason)

    def reject(self, reason: str) -> None:
        """Refuse the task (the agent will not do it)."""
        self._set_status(TaskState.REJECTED, reason)

    def cancel(self, reason: str = "canceled by request") -> None:
        """Stop the running turn, if any, and mark the task canceled."""
        self.scope.cancel()
        self._set_status(TaskState.CANCELED, reason)

    def require_input(self, message: Message | str) -> None:
        """Pause the task until the client sends a follow-up message with this task's id."""
        self._set_status(TaskState.INPUT_REQUIRED, message)

    def expect_input(self, expecting: bool = True) -> None:
        """The running turn waits for the next message (``next_input``) instead of ending; False: no longer."""
        self._answered = anyio.Event() if expecting else None
        self._answer = None

    @property
    def asking(self) -> bool:
        """Whether a running skill waits for the caller's next message on this task."""
        return self._answered is not None and self._answer is None and self.state in INTERRUPTED_STATES

    @property
    def answer_pending(self) -> bool:
        """Whether ``resume`` handed over an answer the waiting skill has not taken yet."""
        return self._answer is not None

    async def next_input(self) -> Message:
        """Wait for the message ``resume`` delivers (``expect_input`` first, then put the task in input-required)."""
        answered = self._answered
        if answered is None:
            raise RuntimeError("call expect_input() before waiting for input")
        await answered.wait()
        message, self._answer, self._answered = self._answer, None, None
        assert message is not None
        return message

    def resume(self, message: Message) -> None:
        """Hand a follow-up ``message`` to the skill waiting in ``next_input``; its turn goes on (nothing restarts)."""
        if not self.asking or self._answered is None:
            raise RuntimeError(f"task {self.task.id} is not waiting for input from a running skill")
        self.turn += 1
        self.message = message
        self.settled = anyio.Event()
        self.task.history = [*(self.task.history or []), message]
        self.task.status = TaskStatus(state=TaskState.SUBMITTED)  # quietly, until the skill marks it working
        self._answer = message
        self._answered.set()

    def respond(self, message: Message | str) -> None:
        """Answer with a message instead of a task (first turn only; the task is then forgotten)."""
        if self.turn != 1 or self.state != TaskState.SUBMITTED:
            raise RuntimeError("respond() is only for a fresh task; use complete(message) on a later turn")
        self.reply = self._agent_message(message)
        for sub in self._subscribers:
            if sub.needs_first:
                _send(sub, StreamResponse(message=self.reply))
        self._close_streams()
        self.settled.set()

    def set_usage(self, usage: dict[str, Any]) -> None:
        """Record what the task cost in ``Task.metadata["usage"]``."""
        if self._task is not None:
            self._frozen = None  # the task changed: a snapshot taken before is stale
        self.task.metadata = {**(self.task.metadata or {}), "usage": usage}

    # -- runtime API -----------------------------------------------------------------------------------

    def begin_turn(self, message: Message) -> None:
        """Start a turn for ``message`` (the first, or a follow-up to an interrupted task)."""
        self.turn += 1
        self.message = message
        if self.turn > 1:  # a follow-up: the task is live again, quietly, until the executor moves it
            self.scope = anyio.CancelScope()  # the first turn uses the fresh ones made with the handle
            self.settled = anyio.Event()
            self.task.history = [*(self.task.history or []), message]
            self.task.status = TaskStatus(state=TaskState.SUBMITTED)

    def end_turn(self) -> None:
        """Called when the executor returns (or is cancelled): make sure the task does not hang."""
        if self.reply is None and self.state not in SETTLED_STATES:
            self.fail("the agent's executor returned without finishing the task")
        self.settled.set()

    def subscribe(self, *, first: bool = False) -> MemoryObjectReceiveStream[StreamResponse]:
        """A stream of this task's next events; ``first`` makes the Task (or Message) its first event."""
        send, receive = anyio.create_memory_object_stream[StreamResponse](max_buffer_size=STREAM_BUFFER)
        self._subscribers.append(_Subscriber(send, needs_first=first))
        return receive

    def view(self, history_length: int | None = None, *, artifacts: bool = True) -> Task:
        """A copy of the task for a reply: the last ``history_length`` messages, artifacts optional.

        The copy shares nothing mutable with the stored task (a dump and re-validation, cheaper than deepcopy).
        """
        return Task.model_validate(self._dump(history_length, artifacts=artifacts, mode="python"))

    def wire(self, history_length: int | None = None, *, artifacts: bool = True) -> dict[str, Any]:
        """``view(...).wire()`` without building the copy: the JSON-ready task as sent in a reply."""
        return self._dump(history_length, artifacts=artifacts, mode="json", by_alias=True, exclude_none=True)

    def _dump(self, history_length: int | None, *, artifacts: bool, **options: Any) -> dict[str, Any]:
        task = self.task
        history = task.history or []
        if history_length is not None:
            history = history[len(history) - history_length :] if history_length else []
        exclude = {"history"} if artifacts else {"history", "artifacts"}
        body = task.model_dump(exclude=exclude, **options)
        if history:
            body["history"] = [m.model_dump(**options) for m in history]
        elif not options.get("exclude_none"):
            body["history"] = None
        if not artifacts and not options.get("exclude_none"):
            body["artifacts"] = None
        return body

    # -- internals -------------------------------------------------------------------------------------

    def _agent_message(self, message: Message | str) -> Message:
        if isinstance(message, str):
            message = Message.agent(Part.from_text(message))
        return message.model_copy(update={"task_id": self.task.id, "context_id": self.task.context_id})

    def _check_open(self, what: str) -> None:
        if self.state in TERMINAL_STATES:
            raise RuntimeError(f"cannot {what}: task {self.task.id} is already {self.state.value}")

    def _set_status(self, state: TaskState, message: Message | str | None) -> None:
        if self.state in TERMINAL_STATES:
            return  # a late update (e.g. after a cancel) never overrides a terminal state
        self._announce()
        status_message = None if message is None else self._agent_message(message)
        self.task.status = TaskStatus(state=state, message=status_message)
        if self._subscribers:
            self._publish(
                StreamResponse(
                    status_update=TaskStatusUpdateEvent(
                        task_id=self.task.id,
                        context_id=self.task.context_id,
                        status=self.task.status,
                        metadata=self.task.metadata,
                    )
                )
            )
        if state in SETTLED_STATES:
            self._close_streams()
            self.settled.set()

    def _announce(self) -> None:
        pending = [s for s in self._subscribers if s.needs_first]
        if not pending:
            return
        snapshot = StreamResponse(task=self.view())
        for sub in pending:
            sub.needs_first = False
            _send(sub, snapshot)

    def _publish(self, event: StreamResponse) -> None:
        for sub in list(self._subscribers):
            if not _send(sub, event):
                self._subscribers.remove(sub)

    def _close_streams(self) -> None:
        for sub in self._subscribers:
            sub.send.close()
        self._subscribers.clear()


def _send(sub: _Subscriber, event: StreamResponse) -> bool:
    """Deliver without waiting; a subscriber that cannot keep up (or left) is closed and dropped."""
    try:
        sub.send.send_nowait(event)
        return True
    except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
        sub.send.close()
        return False
