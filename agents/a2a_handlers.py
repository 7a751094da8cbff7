"""The A2A operations of one agent, independent of the protocol binding: JSON-RPC and HTTP+JSON both call these.

Each handler takes the operation's params as parsed JSON (validated here into the 1.0 request model, an
``InvalidParamsError`` naming the field otherwise) and the caller the boundary authenticated, and returns the
JSON-ready result or an async iterator of ``StreamResponse`` events. Errors are ``protocol.jsonrpc.A2AError``
subclasses; each binding renders them its own way (a JSON-RPC error object, or an HTTP status with a
``google.rpc.Status`` body).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agents.tasks import TaskRuntime
from protocol.a2a import (
    PROTOCOL_VERSION,
    VERSION_HEADER,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
)
from protocol.auth import Principal
from protocol.jsonrpc import (
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    PushNotificationNotSupportedError,
    VersionNotSupportedError,
)
from protocol.validation import describe_validation_error

__all__ = [
    "A2AHandlers",
    "LEGACY_VERSION",
    "PUSH_METHODS",
    "Params",
    "SUPPORTED_VERSIONS",
    "check_version",
    "major_minor",
    "parse_params",
]

SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})
LEGACY_VERSION = "0.3"
PUSH_METHODS = frozenset(
    {
        "CreateTaskPushNotificationConfig",
        "GetTaskPushNotificationConfig",
        "ListTaskPushNotificationConfigs",
        "DeleteTaskPushNotificationConfig",
    }
)
"""The push-notification operations: this agent answers each with ``PushNotificationNotSupportedError``."""

Params = Mapping[str, Any] | None
M = TypeVar("M", bound=BaseModel)
Disconnected = Callable[[], Awaitable[None]]


def major_minor(version: str) -> str:
    """``Major.Minor`` of a version string (patch numbers never count in negotiation): '1.0.2' -> '1.0'."""
    return ".".join(version.split(".")[:2])


def check_version(headers: Mapping[str, str]) -> None:
    """Refuse a request whose ``A2A-Version`` header (missing or empty: 0.3) is not one this agent speaks."""
    raw = headers.get(VERSION_HEADER) or ""  # a header only: never the query string
    version = raw.strip() or LEGACY_VERSION  # the spec: an empty or missing A2A-Version means 0.3
    if major_minor(version) not in SUPPORTED_VERSIONS:
        hint = f"send the header '{VERSION_HEADER}: {PROTOCOL_VERSION}' (0.3 methods such as message/send need none)"
        what = "no A2A-Version (read as 0.3)" if not raw.strip() else f"A2A-Version {version[:20]!r}"
        raise VersionNotSupportedError(
            f"{what} is not supported; this agent speaks {sorted(SUPPORTED_VERSIONS)}: {hint}",
            {"supportedVersions": ",".join(sorted(SUPPORTED_VERSIONS))},
        )


def parse_params(model: type[M], params: Params) -> M:
    """``params`` as ``model``; ``InvalidParamsError`` saying which field is wrong otherwise."""
    try:
        return model.model_validate(params or {})
    except ValidationError as exc:
        details = describe_validation_error(exc)
        raise InvalidParamsError(f"invalid params for {model.__name__.removesuffix('Request')}: {details}") from None


class A2AHandlers:
    """One agent's A2A operations over its ``TaskRuntime``, run as the calling ``Principal``.

    ``extended_card``: the JSON-ready card ``GetExtendedAgentCard`` returns to authenticated callers (None: the
    operation answers "not configured", as it does for every caller of a server without keys)."""

    def __init__(self, runtime: TaskRuntime, *, extended_card: dict[str, Any] | None = None) -> None:
        self.runtime = runtime
        self.extended_card = extended_card

    async def send_message(self, params: Params, principal: Principal, disconnected: Disconnected) -> Any:
        """A SendMessageResponse, dumped without a copy; a blocking call whose client disconnects
        (``disconnected`` returns) stops waiting, and its task is cancelled unless someone comes back for it."""
        request = parse_params(SendMessageRequest, params)
        return await self.runtime.send_wire(request, principal, disconnected=disconnected)

    async def send_streaming(self, params: Params, principal: Principal) -> AsyncIterator[StreamResponse]:
        """SendStreamingMessage: the task, then its updates until it ends or waits for input."""
        request = parse_params(SendMessageRequest, params)
        async for event in self.runtime.stream(request, principal):
            yield event

    async def subscribe(self, params: Params, principal: Principal) -> AsyncIterator[StreamResponse]:
        """SubscribeToTask: the task as it is now, then its updates (an error for a task that has ended)."""
        request = parse_params(SubscribeToTaskRequest, params)
        async for event in self.runtime.subscribe(request.id, principal):
            yield event

    async def get_task(self, params: Params, principal: Principal) -> Any:
        """GetTask: the task (its last ``historyLength`` messages)."""
        request = parse_params(GetTaskRequest, params)
        return self.runtime.get(request.id, request.history_length, principal).wire()

    async def list_tasks(self, params: Params, principal: Principal) -> Any:
        """ListTasks: one page of the caller's tasks."""
        request = parse_params(ListTasksRequest, params)
        return self.runtime.list(request, principal).wire()

    async def cancel_task(self, params: Params, principal: Principal) -> Any:
        """CancelTask: the task, cancelled."""
        request = parse_params(CancelTaskRequest, params)
        return (await self.runtime.cancel(request.id, principal)).wire()

    async def get_extended_card(self, params: Params, principal: Principal) -> Any:
        """GetExtendedAgentCard: the card with the skills' schemas, for authenticated callers of a keyed server."""
        if self.extended_card is None or not principal.authenticated:
            raise ExtendedAgentCardNotConfiguredError(
                "this agent has no extended agent card (it is served to authenticated callers when the server "
                "has keys: scaleout agent serve --jwks FILE)"
            )
        return self.extended_card

    async def push_config(self, params: Params, principal: Principal) -> Any:
        """Any push-notification operation: this agent does not send push notifications."""
        raise PushNotificationNotSupportedError("this agent does not support push notifications")
