"""A2A 0.3 wire shapes that differ from 1.0, and pure conversions between them and the 1.0 models.

One internal model (``protocol.a2a``, A2A 1.0); 0.3 exists only at the edges: a server adapter converts a 0.3
request into the 1.0 one and the 1.0 result back, a client binding the other way round. What differs in 0.3:
method names (``message/send`` ...), a ``kind`` on parts (``text``/``data``/``file``), messages, tasks and stream
events, lower-case state and role names, a status update's ``final`` flag, ``blocking`` instead of
``returnImmediately``, data parts that hold only JSON objects, and the card's ``url``/``preferredTransport``/
``protocolVersion`` instead of ``supportedInterfaces``. This module: the shapes of parts, messages, tasks and
events; ``protocol.a2a_v03_rpc``: methods, params and results; ``protocol.a2a_v03_card``: cards.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from protocol.a2a import (
    TERMINAL_STATES,
    Artifact,
    Message,
    Part,
    Role,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    WireModel,
)

__all__ = [
    "V03_VERSION",
    "V03_PROTOCOL_VERSION",
    "WRAPPED_DATA_KEY",
    "FileV03",
    "PartV03",
    "MessageV03",
    "TaskStatusV03",
    "ArtifactV03",
    "TaskV03",
    "is_v03_version",
    "state_to_v03",
    "state_from_v03",
    "part_to_v03",
    "part_from_v03",
    "message_to_v03",
    "message_from_v03",
    "task_to_v03",
    "task_from_v03",
    "event_to_v03",
    "event_from_v03",
    "kind_of_v03",
]

V03_VERSION = "0.3"
"""``Major.Minor`` of A2A 0.3: the ``A2A-Version`` a 0.3 peer sends (or none: an empty header means 0.3)."""
V03_PROTOCOL_VERSION = "0.3.0"
"""The ``protocolVersion`` a 0.3 card declares."""


WRAPPED_DATA_KEY = "scaleout.wrappedData"
"""Part metadata key (True) of a 0.3 data part that wraps a 1.0 non-object value as ``{"value": ...}``."""
_FOREIGN_WRAPPED_KEYS = (WRAPPED_DATA_KEY, "data_part_compat")  # the a2a-sdk marks its wrapped values so

_STATES_TO_V03 = {
    TaskState.UNSPECIFIED: "unknown",
    TaskState.SUBMITTED: "submitted",
    TaskState.WORKING: "working",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
    TaskState.CANCELED: "canceled",
    TaskState.INPUT_REQUIRED: "input-required",
    TaskState.REJECTED: "rejected",
    TaskState.AUTH_REQUIRED: "auth-required",
}
_STATES_FROM_V03 = {v03: v10 for v10, v03 in _STATES_TO_V03.items()}
_STREAM_ENDS = TERMINAL_STATES | {TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED}


def is_v03_version(header: str | None) -> bool:
    """Whether an ``A2A-Version`` header value means 0.3: missing, empty, or 0.3.x (patch numbers never count)."""
    value = (header or "").strip()
    return not value or ".".join(value.split(".")[:2]) == V03_VERSION


def state_to_v03(state: TaskState) -> str:
    """The 0.3 name of a task state: ``TASK_STATE_INPUT_REQUIRED`` -> ``input-required``."""
    return _STATES_TO_V03[state]


def state_from_v03(state: str) -> TaskState:
    """The 1.0 task state of a 0.3 state name (an unknown name reads as ``TASK_STATE_UNSPECIFIED``)."""
    return _STATES_FROM_V03.get(state, TaskState.UNSPECIFIED)


class FileV03(WireModel):
    """The file of a 0.3 file part: inline base64 ``bytes`` or a ``uri``, with an optional name and type."""

    name: str | None = None
    mime_type: str | None = None
    bytes: str | None = None
    uri: str | None = None


class PartV03(WireModel):
    """A 0.3 part: ``kind`` says which one of text, data (a JSON object), file it carries."""

    kind: Literal["text", "data", "file"]
    text: str | None = None
    data: dict[str, Any] | None = None
    file: FileV03 | None = None
    metadata: dict[str, Any] | None = None


class MessageV03(WireModel):
    """A 0.3 message: ``kind`` "message", roles ``user``/``agent``."""

    kind: Literal["message"] = "message"
    message_id: str = Field(min_length=1, max_length=200)
    role: Literal["user", "agent"]
    parts: list[PartV03] = Field(min_length=1)
    context_id: str | None = None
    task_id: str | None = None
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None
    reference_task_ids: list[str] | None = None


class TaskStatusV03(WireModel):
    """A 0.3 task status: a lower-case state name."""

    state: str
    message: MessageV03 | None = None
    timestamp: str | None = None


class ArtifactV03(WireModel):
    """A 0.3 artifact (the same fields as 1.0, with 0.3 parts)."""

    artifact_id: str
    name: str | None = None
    description: str | None = None
    parts: list[PartV03] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None


class TaskV03(WireModel):
    """A 0.3 task: ``kind`` "task"."""

    kind: Literal["task"] = "task"
    id: str
    context_id: str
    status: TaskStatusV03
    artifacts: list[ArtifactV03] | None = None
    history: list[MessageV03] | None = None
    metadata: dict[str, Any] | None = None


def part_to_v03(part: Part) -> PartV03:
    """A 1.0 part as a 0.3 part; a data value that is not a JSON object travels as ``{"value": ...}``, marked."""
    metadata = part.metadata
    if part.text is not None:
        return PartV03(kind="text", text=part.text, metadata=metadata)
    if part.data is not None:
        if isinstance(part.data, dict):
            return PartV03(kind="data", data=part.data, metadata=metadata)
        return PartV03(kind="data", data={"value": part.data}, metadata={**(metadata or {}), WRAPPED_DATA_KEY: True})
    file = FileV03(name=part.filename, mime_type=part.media_type, bytes=part.raw, uri=part.url)
    return PartV03(kind="file", file=file, metadata=metadata)


def part_from_v03(part: PartV03) -> Part:
    """A 0.3 part as a 1.0 part (text/plain, application/json, or the file's own type)."""
    metadata = part.metadata
    if part.kind == "text":
        return Part(text=part.text or "", media_type="text/plain", metadata=metadata)
    if part.kind == "data":
        data: Any = part.data if part.data is not None else {}
        if metadata and any(metadata.get(k) for k in _FOREIGN_WRAPPED_KEYS) and set(data) == {"value"}:
            data = data["value"]
            metadata = {k: v for k, v in metadata.items() if k not in _FOREIGN_WRAPPED_KEYS} or None
        return Part(data=data, media_type="application/json", metadata=metadata)
    file = part.file or FileV03()
    if (file.bytes is None) == (file.uri is None):
        raise ValueError("a 0.3 file part carries exactly one of file.bytes, file.uri")
    return Part(raw=file.bytes, url=file.uri, media_type=file.mime_type, filename=file.name, metadata=metadata)


def message_to_v03(message: Message) -> MessageV03:
    """A 1.0 message as a 0.3 message."""
    return MessageV03(
        message_id=message.message_id,
        role="agent" if message.role == Role.AGENT else "user",
        parts=[part_to_v03(p) for p in message.parts],
        context_id=message.context_id,
        task_id=message.task_id,
        metadata=message.metadata,
        extensions=message.extensions,
        reference_task_ids=message.reference_task_ids,
    )


def message_from_v03(message: MessageV03) -> Message:
    """A 0.3 message as a 1.0 message."""
    return Message(
        message_id=message.message_id,
        role=Role.AGENT if message.role == "agent" else Role.USER,
        parts=[part_from_v03(p) for p in message.parts],
        context_id=message.context_id,
        task_id=message.task_id,
        metadata=message.metadata,
        extensions=message.extensions,
        reference_task_ids=message.reference_task_ids,
    )


def _status_to_v03(status: TaskStatus) -> TaskStatusV03:
    message = message_to_v03(status.message) if status.message is not None else None
    return TaskStatusV03(state=state_to_v03(status.state), message=message, timestamp=status.timestamp)


def _status_from_v03(status: TaskStatusV03) -> TaskStatus:
    message = message_from_v03(status.message) if status.message is not None else None
    fields = {"timestamp": status.timestamp} if status.timestamp else {}
    return TaskStatus(state=state_from_v03(status.state), message=message, **fields)


def _artifact_to_v03(artifact: Artifact) -> ArtifactV03:
    parts = [part_to_v03(p) for p in artifact.parts]
    return ArtifactV03.model_validate({**artifact.model_dump(exclude={"parts"}), "parts": parts})


def _artifact_from_v03(artifact: ArtifactV03) -> Artifact:
    parts = [part_from_v03(p) for p in artifact.parts]
    return Artifact.model_validate({**artifact.model_dump(exclude={"parts"}), "parts": parts})


def task_to_v03(task: Task) -> TaskV03:
    """A 1.0 task as a 0.3 task."""
    return TaskV03(
        id=task.id,
        context_id=task.context_id,
        status=_status_to_v03(task.status),
        artifacts=[_artifact_to_v03(a) for a in task.artifacts] if task.artifacts is not None else None,
        history=[message_to_v03(m) for m in task.history] if task.history is not None else None,
        metadata=task.metadata,
    )


def task_from_v03(task: TaskV03) -> Task:
    """A 0.3 task as a 1.0 task."""
    return Task(
        id=task.id,
        context_id=task.context_id,
        status=_status_from_v03(task.status),
        artifacts=[_artifact_from_v03(a) for a in task.artifacts] if task.artifacts is not None else None,
        history=[message_from_v03(m) for m in task.history] if task.history is not None else None,
        metadata=task.metadata,
    )


def event_to_v03(event: StreamResponse) -> dict[str, Any]:
    """One 1.0 stream event as the 0.3 event (with its ``kind``); a status update is ``final`` when the stream
    ends with it (a terminal state, or a task that waits for input or authorization)."""
    if event.task is not None:
        return task_to_v03(event.task).wire()
    if event.message is not None:
        return message_to_v03(event.message).wire()
    if event.status_update is not None:
        update = event.status_update
        return {
            "kind": "status-update",
            "taskId": update.task_id,
            "contextId": update.context_id,
            "status": _status_to_v03(update.status).wire(),
            "final": update.status.state in _STREAM_ENDS,
            **({"metadata": update.metadata} if update.metadata is not None else {}),
        }
    if event.artifact_update is not None:
        change = event.artifact_update
        return {
            "kind": "artifact-update",
            "taskId": change.task_id,
            "contextId": change.context_id,
            "artifact": _artifact_to_v03(change.artifact).wire(),
            "append": change.append,
            "lastChunk": change.last_chunk,
            **({"metadata": change.metadata} if change.metadata is not None else {}),
        }
    raise ValueError("a stream event carries one of task, message, statusUpdate, artifactUpdate; got none")


def kind_of_v03(value: dict[str, Any]) -> str:
    """The ``kind`` of a 0.3 result (task, message, status-update, artifact-update); guessed from its fields
    when a peer leaves it out."""
    kind = value.get("kind")
    if isinstance(kind, str):
        return kind
    if "messageId" in value:
        return "message"
    if "artifact" in value:
        return "artifact-update"
    if "taskId" in value and "status" in value:
        return "status-update"
    return "task"


def event_from_v03(value: Any) -> StreamResponse:
    """One 0.3 stream event (a task, message, status update or artifact update) as the 1.0 ``StreamResponse``."""
    if not isinstance(value, dict):
        raise ValueError("a 0.3 stream event is a JSON object")
    kind = kind_of_v03(value)
    if kind == "task":
        return StreamResponse(task=task_from_v03(TaskV03.model_validate(value)))
    if kind == "message":
        return StreamResponse(message=message_from_v03(MessageV03.model_validate(value)))
    if kind == "status-update":
        status = _status_from_v03(TaskStatusV03.model_validate(value.get("status")))
        update = TaskStatusUpdateEvent(
            task_id=value.get("taskId", ""), context_id=value.get("contextId", ""), status=status,
            metadata=value.get("metadata"),
        )  # fmt: skip
        return StreamResponse(status_update=update)
    if kind == "artifact-update":
        artifact = _artifact_from_v03(ArtifactV03.model_validate(value.get("artifact")))
        change = TaskArtifactUpdateEvent(
            task_id=value.get("taskId", ""), context_id=value.get("contextId", ""), artifact=artifact,
            append=bool(value.get("append")), last_chunk=bool(value.get("lastChunk")), metadata=value.get("metadata"),
        )  # fmt: skip
        return StreamResponse(artifact_update=change)
    raise ValueError(f"unknown 0.3 stream event kind {kind[:40]!r}")
