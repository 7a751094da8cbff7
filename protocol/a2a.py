"""A2A 1.0 data model (JSON binding): Agent Card, Message/Part, Task, stream events.

Field names are camelCase on the wire and snake_case in Python. Unknown fields sent by peers are
ignored on input, so newer clients keep working; exactly what is modelled here is sent back.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "PROTOCOL_VERSION",
    "VERSION_HEADER",
    "AGENT_CARD_PATH",
    "WireModel",
    "AgentProvider",
    "AgentCapabilities",
    "AgentExtension",
    "AgentInterface",
    "AgentSkill",
    "AgentCard",
    "Role",
    "Part",
    "Message",
    "TaskState",
    "TERMINAL_STATES",
    "TaskStatus",
    "Artifact",
    "Task",
    "TaskStatusUpdateEvent",
    "TaskArtifactUpdateEvent",
    "StreamResponse",
    "SendMessageConfiguration",
    "SendMessageRequest",
    "SendMessageResponse",
    "GetTaskRequest",
    "ListTasksRequest",
    "ListTasksResponse",
    "CancelTaskRequest",
    "SubscribeToTaskRequest",
    "InputRequest",
    "INPUT_REQUEST_KIND",
    "input_request_of",
    "new_id",
    "now_iso",
]

PROTOCOL_VERSION = "1.0"
VERSION_HEADER = "A2A-Version"
AGENT_CARD_PATH = "/.well-known/agent-card.json"


def new_id() -> str:
    """A fresh random identifier (UUID4, as text)."""
    return str(uuid.uuid4())


def now_iso() -> str:
    """The current UTC time as an ISO 8601 string with millisecond precision and a Z suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WireModel(BaseModel):
    """Base of every wire type: camelCase aliases, unknown fields ignored, None fields omitted on dump."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict as sent on the wire (aliases, no None fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class AgentProvider(WireModel):
    organization: str
    url: str


class AgentExtension(WireModel):
    uri: str
    description: str | None = None
    required: bool = False
    params: dict[str, Any] | None = None


class AgentCapabilities(WireModel):
    streaming: bool = False
    push_notifications: bool = False
    extended_agent_card: bool = False
    extensions: list[AgentExtension] = Field(default_factory=list)


class AgentInterface(WireModel):
    url: str
    protocol_binding: str = "JSONRPC"
    protocol_version: str = PROTOCOL_VERSION
    tenant: str | None = None


class AgentSkill(WireModel):
    id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(max_length=10_000)
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    input_modes: list[str] = Field(default_factory=list)
    output_modes: list[str] = Field(default_factory=list)


class AgentCard(WireModel):
    """Self-description an agent serves at ``/.well-known/agent-card.json``."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(max_length=10_000)
    version: str = Field(min_length=1, max_length=100)
    supported_interfaces: list[AgentInterface] = Field(min_length=1)
    provider: AgentProvider | None = None
    documentation_url: str | None = None
    icon_url: str | None = None
    capabilities: AgentCapabilities = Field(default_factory=AgentCapabilities)
    security_schemes: dict[str, Any] = Field(default_factory=dict)
    security_requirements: list[dict[str, Any]] = Field(default_factory=list)
    default_input_modes: list[str] = Field(default_factory=lambda: ["application/json", "text/plain"])
    default_output_modes: list[str] = Field(default_factory=lambda: ["application/json", "text/plain"])
    skills: list[AgentSkill] = Field(default_factory=list)

    @property
    def url(self) -> str:
        """URL of the first (preferred) interface."""
        return self.supported_interfaces[0].url


class Role(StrEnum):
    UNSPECIFIED = "ROLE_UNSPECIFIED"
    USER = "ROLE_USER"
    AGENT = "ROLE_AGENT"


class Part(WireModel):
    """One piece of content: exactly one of text, data (any JSON), url, raw (base64 bytes)."""

    text: str | None = None
    data: Any = None
    url: str | None = None
    raw: str | None = None
    media_type: str | None = None
    filename: str | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one_content(self) -> Self:
        count = (self.text is not None) + (self.data is not None) + (self.url is not None) + (self.raw is not None)
        if count != 1:
            present = [k for k in ("text", "data", "url", "raw") if getattr(self, k) is not None]
            raise ValueError(f"a Part carries exactly one of text, data, url, raw; got {present or 'none'}")
        return self

    @classmethod
    def from_text(cls, text: str) -> Part:
        return cls(text=text, media_type="text/plain")

    @classmethod
    def from_data(cls, data: Any) -> Part:
        return cls(data=data, media_type="application/json")

    @classmethod
    def from_bytes(cls, content: bytes, media_type: str = "application/octet-stream") -> Part:
        return cls(raw=base64.b64encode(content).decode("ascii"), media_type=media_type)


class Message(WireModel):
    """One turn of communication between a client (ROLE_USER) and an agent (ROLE_AGENT)."""

    message_id: str = Field(default_factory=new_id, min_length=1, max_length=200)
    role: Role
    parts: list[Part] = Field(min_length=1)
    context_id: str | None = None
    task_id: str | None = None
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None
    reference_task_ids: list[str] | None = None

    @classmethod
    def user(cls, *parts: Part, **fields: Any) -> Message:
        return cls(role=Role.USER, parts=list(parts), **fields)

    @classmethod
    def agent(cls, *parts: Part, **fields: Any) -> Message:
        return cls(role=Role.AGENT, parts=list(parts), **fields)

    def text(self) -> str:
        """All text parts joined by newlines."""
        return "\n".join(p.text for p in self.parts if p.text is not None)


class TaskState(StrEnum):
    UNSPECIFIED = "TASK_STATE_UNSPECIFIED"
    SUBMITTED = "TASK_STATE_SUBMITTED"
    WORKING = "TASK_STATE_WORKING"
    COMPLETED = "TASK_STATE_COMPLETED"
    FAILED = "TASK_STATE_FAILED"
    CANCELED = "TASK_STATE_CANCELED"
    INPUT_REQUIRED = "TASK_STATE_INPUT_REQUIRED"
    REJECTED = "TASK_STATE_REJECTED"
    AUTH_REQUIRED = "TASK_STATE_AUTH_REQUIRED"


TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.REJECTED})


class TaskStatus(WireModel):
    state: TaskState
    message: Message | None = None
    timestamp: str = Field(default_factory=now_iso)


class Artifact(WireModel):
    artifact_id: str = Field(default_factory=new_id)
    name: str | None = None
    description: str | None = None
    parts: list[Part] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None


class Task(WireModel):
    """The unit of work an agent runs for a message; its status moves to one terminal state."""

    id: str
    context_id: str
    status: TaskStatus
    artifacts: list[Artifact] | None = None
    history: list[Message] | None = None
    metadata: dict[str, Any] | None = None


INPUT_REQUEST_KIND = "scaleout.input-request"
"""``Part.metadata["kind"]`` of the data part that carries an ``InputRequest`` in an input-required status."""


class InputRequest(WireModel):
    """What a task waiting for input (``TASK_STATE_INPUT_REQUIRED``) asks: the question and the answer's schema.

    Sent as a data part of the status message (metadata ``kind`` = ``INPUT_REQUEST_KIND``); the answer is the
    next message on the same task, its first data part a JSON object valid against ``schema``. ``error`` says why
    the previous answer was refused; ``timeout_s`` how long the task waits before it fails.
    """

    question: str = Field(min_length=1, max_length=4000)
    schema_: dict[str, Any] = Field(alias="schema")
    error: str | None = Field(default=None, max_length=4000)
    timeout_s: float | None = None

    def part(self) -> Part:
        """This request as the data part of a status message."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return Part(data=data, media_type="application/json", metadata={"kind": INPUT_REQUEST_KIND})


def input_request_of(task: Task) -> InputRequest | None:
    """The question of a task waiting for input, read from its status message (None when it asks nothing)."""
    message = task.status.message
    if task.status.state != TaskState.INPUT_REQUIRED or message is None:
        return None
    for part in message.parts:
        if (part.metadata or {}).get("kind") == INPUT_REQUEST_KIND and isinstance(part.data, dict):
            return InputRequest.model_validate(part.data)
    return None


class TaskStatusUpdateEvent(WireModel):
    task_id: str
    context_id: str
    status: TaskStatus
    metadata: dict[str, Any] | None = None


class TaskArtifactUpdateEvent(WireModel):
    task_id: str
    context_id: str
    artifact: Artifact
    append: bool = False
    last_chunk: bool = False
    metadata: dict[str, Any] | None = None


class StreamResponse(WireModel):
    """One event of a stream: exactly one of task, message, status_update, artifact_update."""

    task: Task | None = None
    message: Message | None = None
    status_update: TaskStatusUpdateEvent | None = None
    artifact_update: TaskArtifactUpdateEvent | None = None


class SendMessageConfiguration(WireModel):
    accepted_output_modes: list[str] | None = None
    history_length: int | None = Field(default=None, ge=0)
    return_immediately: bool = False
    task_push_notification_config: dict[str, Any] | None = None


class SendMessageRequest(WireModel):
    message: Message
    configuration: SendMessageConfiguration | None = None
    metadata: dict[str, Any] | None = None
    tenant: str | None = None


class SendMessageResponse(WireModel):
    """Result of SendMessage: a task, or (for a direct reply) a message."""

    task: Task | None = None
    message: Message | None = None


class GetTaskRequest(WireModel):
    id: str = Field(min_length=1, max_length=200)
    history_length: int | None = Field(default=None, ge=0)
    tenant: str | None = None


class ListTasksRequest(WireModel):
    context_id: str | None = None
    status: TaskState | None = None
    page_size: int | None = Field(default=None, ge=1, le=100)
    page_token: str | None = None
    history_length: int | None = Field(default=None, ge=0)
    status_timestamp_after: str | None = None
    include_artifacts: bool = False
    tenant: str | None = None


class ListTasksResponse(WireModel):
    tasks: list[Task]
    next_page_token: str = ""
    page_size: int
    total_size: int


class CancelTaskRequest(WireModel):
    id: str = Field(min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None
    tenant: str | None = None


class SubscribeToTaskRequest(WireModel):
    id: str = Field(min_length=1, max_length=200)
    tenant: str | None = None
