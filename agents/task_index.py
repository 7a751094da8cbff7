"""Idempotent SendMessage: which task each caller's new-task message created, and how a repeat is answered.

A new-task message (no ``taskId``) that names its ``contextId`` and whose ``messageId`` the same owner
(``Principal.owner``) already sent in that context, with the same content (role, parts, metadata, extensions,
referenced tasks), is the same request: it gets the task that message created, and the skill does not run again
(the orchestrator sends ``messageId = contextId = attempt id``, so a resend after a failover is answered with the
first send's task). A message without a ``contextId`` always starts a new task: clients that reuse message ids
for new work (the A2A TCK does, within a session) are not answered with an old task. Another owner's equal
``messageId``, or one reused for other content, is a new request too. Entries live exactly as long as their task
does in the runtime's store.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from agents.task_handle import TaskHandle
from protocol.a2a import Message, StreamResponse

__all__ = ["MessageIndex", "follow_repeat"]


class MessageIndex:
    """``(owner, messageId) -> task`` for the tasks a runtime holds; the runtime drops an entry with its task."""

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], TaskHandle] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def find(self, owner: str, message: Message) -> TaskHandle | None:
        """The task that ``owner`` created with this same message, if the runtime still holds it."""
        handle = self._tasks.get((owner, message.message_id))
        if handle is None or not _same_request(handle, message):
            return None
        return handle

    def add(self, handle: TaskHandle) -> None:
        """Remember the task ``handle`` as the answer to the message that created it."""
        self._tasks[(handle.owner, handle.origin_id)] = handle

    def drop(self, handle: TaskHandle) -> None:
        """Forget ``handle`` (evicted, or answered with a message and gone); a newer entry under its key stays."""
        key = (handle.owner, handle.origin_id)
        if self._tasks.get(key) is handle:
            del self._tasks[key]


_IDENTITY = {"message_id", "task_id", "context_id"}


def _same_request(handle: TaskHandle, message: Message) -> bool:
    """Whether ``message`` repeats the one that created ``handle``'s task (read back only on a repeat)."""
    if message.context_id is None or message.context_id != handle.context_id:
        return False
    history = handle.task.history
    if not history:
        return False
    first = history[0]
    return first.model_dump(mode="json", exclude=_IDENTITY) == message.model_dump(mode="json", exclude=_IDENTITY)


async def follow_repeat(handle: TaskHandle) -> AsyncGenerator[StreamResponse, None]:
    """A repeated SendStreamingMessage: the existing task's current view, then its updates until it settles
    (just the view when it already has); a task that answered with a message repeats that message."""
    if handle.reply is not None:
        yield StreamResponse(message=handle.reply)
        return
    if handle.settled.is_set():
        yield StreamResponse(task=handle.view())
        return
    receive = handle.subscribe()  # opened before the view is taken: no update can fall between the two
    async with receive:
        yield StreamResponse(task=handle.view())
        async for event in receive:
            yield event
