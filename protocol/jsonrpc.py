"""JSON-RPC 2.0 envelopes and the A2A error codes (-32700..-32603 and -32001..-32009).

Errors carry a ``google.rpc.ErrorInfo`` detail in ``data`` so clients can branch on a stable reason string.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "JSONRPCRequest",
    "JSONRPCError",
    "JSONRPCErrorResponse",
    "JSONRPCSuccessResponse",
    "A2AError",
    "ParseError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "InvalidParamsError",
    "InternalError",
    "TaskNotFoundError",
    "TaskNotCancelableError",
    "PushNotificationNotSupportedError",
    "UnsupportedOperationError",
    "ContentTypeNotSupportedError",
    "InvalidAgentResponseError",
    "ExtendedAgentCardNotConfiguredError",
    "ExtensionSupportRequiredError",
    "VersionNotSupportedError",
    "error_from_wire",
    "error_class_of_reason",
    "A2A_ERRORS",
    "ERROR_INFO_TYPE",
    "ERROR_DOMAIN",
]

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
ERROR_DOMAIN = "a2a-protocol.org"

RequestId = str | int | None


class JSONRPCRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jsonrpc: Literal["2.0"]
    method: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] | None = None
    id: RequestId = None


class JSONRPCError(BaseModel):
    code: int
    message: str
    data: Any = None


class JSONRPCErrorResponse(BaseModel):
    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId = None
    error: JSONRPCError


class JSONRPCSuccessResponse(BaseModel):
    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId = None
    result: Any


class A2AError(Exception):
    """An error with a JSON-RPC code and an A2A reason; raised by servers and by clients on error replies."""

    code: int = -32603
    reason: str = "INTERNAL_ERROR"
    http_status: int = 500

    def __init__(self, message: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata or {}

    def to_jsonrpc(self) -> JSONRPCError:
        info = {
            "@type": ERROR_INFO_TYPE,
            "reason": self.reason,
            "domain": ERROR_DOMAIN,
            "metadata": {k: str(v) for k, v in self.metadata.items()},
        }
        return JSONRPCError(code=self.code, message=self.message, data=[info])


class ParseError(A2AError):
    """The body is not valid JSON."""

    code = -32700
    reason = "PARSE_ERROR"
    http_status = 400


class InvalidRequestError(A2AError):
    """Not a JSON-RPC 2.0 request."""

    code = -32600
    reason = "INVALID_REQUEST"
    http_status = 400


class MethodNotFoundError(A2AError):
    """No such method."""

    code = -32601
    reason = "METHOD_NOT_FOUND"
    http_status = 404


class InvalidParamsError(A2AError):
    """Params fail validation."""

    code = -32602
    reason = "INVALID_PARAMS"
    http_status = 400


class InternalError(A2AError):
    """The server failed unexpectedly."""

    code = -32603
    reason = "INTERNAL_ERROR"
    http_status = 500


class TaskNotFoundError(A2AError):
    """No task with that id."""

    code = -32001
    reason = "TASK_NOT_FOUND"
    http_status = 404


class TaskNotCancelableError(A2AError):
    """The task is already in a terminal state."""

    code = -32002
    reason = "TASK_NOT_CANCELABLE"
    http_status = 400


class PushNotificationNotSupportedError(A2AError):
    """This agent does not send push notifications."""

    code = -32003
    reason = "PUSH_NOTIFICATION_NOT_SUPPORTED"
    http_status = 400


class UnsupportedOperationError(A2AError):
    """The operation is not supported."""

    code = -32004
    reason = "UNSUPPORTED_OPERATION"
    http_status = 400


class ContentTypeNotSupportedError(A2AError):
    """A media type is not supported."""

    code = -32005
    reason = "CONTENT_TYPE_NOT_SUPPORTED"
    http_status = 415


class InvalidAgentResponseError(A2AError):
    """The agent produced an invalid reply."""

    code = -32006
    reason = "INVALID_AGENT_RESPONSE"
    http_status = 500


class ExtendedAgentCardNotConfiguredError(A2AError):
    """No extended agent card is configured."""

    code = -32007
    reason = "EXTENDED_AGENT_CARD_NOT_CONFIGURED"
    http_status = 400


class ExtensionSupportRequiredError(A2AError):
    """A required extension is missing."""

    code = -32008
    reason = "EXTENSION_SUPPORT_REQUIRED"
    http_status = 400


class VersionNotSupportedError(A2AError):
    """The A2A-Version is not supported."""

    code = -32009
    reason = "VERSION_NOT_SUPPORTED"
    http_status = 400


A2A_ERRORS: tuple[type[A2AError], ...] = (
    ParseError,
    InvalidRequestError,
    MethodNotFoundError,
    InvalidParamsError,
    InternalError,
    TaskNotFoundError,
    TaskNotCancelableError,
    PushNotificationNotSupportedError,
    UnsupportedOperationError,
    ContentTypeNotSupportedError,
    InvalidAgentResponseError,
    ExtendedAgentCardNotConfiguredError,
    ExtensionSupportRequiredError,
    VersionNotSupportedError,
)
"""Every A2A error class, by which a wire error (a JSON-RPC code, a google.rpc reason) finds its type."""

_BY_CODE: dict[int, type[A2AError]] = {cls.code: cls for cls in A2A_ERRORS}
_BY_REASON: dict[str, type[A2AError]] = {cls.reason: cls for cls in A2A_ERRORS}


def error_class_of_reason(reason: str) -> type[A2AError] | None:
    """The A2A error class a ``google.rpc.ErrorInfo`` reason names (None: not an A2A reason)."""
    return _BY_REASON.get(reason)


def error_from_wire(error: JSONRPCError) -> A2AError:
    """The typed exception for a JSON-RPC error object received from a peer."""
    cls = _BY_CODE.get(error.code, A2AError)
    exc = cls(error.message)
    if cls is A2AError:
        exc.code = error.code
    return exc
