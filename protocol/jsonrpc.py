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


def _error(name: str, code: int, reason: str, http_status: int, doc: str) -> type[A2AError]:
    cls = type(
        name, (A2AError,), {"code": code, "reason": reason, "http_status": http_status, "__doc__": doc}
    )
    return cls


ParseError = _error("ParseError", -32700, "PARSE_ERROR", 400, "The body is not valid JSON.")
InvalidRequestError = _error(
    "InvalidRequestError", -32600, "INVALID_REQUEST", 400, "Not a JSON-RPC 2.0 request."
)
MethodNotFoundError = _error("MethodNotFoundError", -32601, "METHOD_NOT_FOUND", 404, "No such method.")
InvalidParamsError = _error("InvalidParamsError", -32602, "INVALID_PARAMS", 400, "Params fail validation.")
InternalError = _error("InternalError", -32603, "INTERNAL_ERROR", 500, "The server failed unexpectedly.")
TaskNotFoundError = _error("TaskNotFoundError", -32001, "TASK_NOT_FOUND", 404, "No task with that id.")
TaskNotCancelableError = _error(
    "TaskNotCancelableError", -32002, "TASK_NOT_CANCELABLE", 400, "The task is already in a terminal state."
)
PushNotificationNotSupportedError = _error(
    "PushNotificationNotSupportedError",
    -32003,
    "PUSH_NOTIFICATION_NOT_SUPPORTED",
    400,
    "This agent does not send push notifications.",
)
UnsupportedOperationError = _error(
    "UnsupportedOperationError", -32004, "UNSUPPORTED_OPERATION", 400, "The operation is not supported."
)
ContentTypeNotSupportedError = _error(
    "ContentTypeNotSupportedError",
    -32005,
    "CONTENT_TYPE_NOT_SUPPORTED",
    415,
    "A media type is not supported.",
)
InvalidAgentResponseError = _error(
    "InvalidAgentResponseError", -32006, "INVALID_AGENT_RESPONSE", 500, "The agent produced an invalid reply."
)
ExtendedAgentCardNotConfiguredError = _error(
    "ExtendedAgentCardNotConfiguredError",
    -32007,
    "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
    400,
    "No extended agent card is configured.",
)
ExtensionSupportRequiredError = _error(
    "ExtensionSupportRequiredError",
    -32008,
    "EXTENSION_SUPPORT_REQUIRED",
    400,
    "A required extension is missing.",
)
VersionNotSupportedError = _error(
    "VersionNotSupportedError", -32009, "VERSION_NOT_SUPPORTED", 400, "The A2A-Version is not supported."
)

_BY_CODE: dict[int, type[A2AError]] = {
    cls.code: cls
    for cls in (
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
}


def error_from_wire(error: JSONRPCError) -> A2AError:
    """The typed exception for a JSON-RPC error object received from a peer."""
    cls = _BY_CODE.get(error.code, A2AError)
    exc = cls(error.message)
    if cls is A2AError:
        exc.code = error.code
    return exc
