"""The A2A 1.0 HTTP+JSON (REST) binding for one agent: the spec's routes over the same ``A2AHandlers`` as JSON-RPC.

``POST /message:send`` and ``/message:stream``, ``GET /tasks`` and ``/tasks/{id}``, ``POST /tasks/{id}:cancel`` and
``/tasks/{id}:subscribe``, the push-notification config routes (answered "not supported") and
``GET /extendedAgentCard``, each under the agent's prefix. Bodies are the 1.0 JSON (camelCase); GET parameters
come as camelCase query parameters. Errors are an HTTP status with a ``google.rpc.Status`` body whose ``details``
hold a ``google.rpc.ErrorInfo`` (reason, domain ``a2a-protocol.org``), mapped as the spec's section 5.4 says;
streams are Server-Sent Events whose ``data`` is a StreamResponse, and an error after the first event is an
``event: error`` with the same error body. The routes sit behind the agent server's ``Boundary``
(``RestBoundary``: the same checks, errors in this format).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope

from agents.a2a_handlers import A2AHandlers, Params, check_version
from protocol import telemetry
from protocol.a2a import PROTOCOL_VERSION, VERSION_HEADER, StreamResponse
from protocol.access import request_principal
from protocol.auth import Principal
from protocol.boundary import NO_BODY, Boundary, BoundaryRejection, request_json
from protocol.jsonrpc import (
    A2AError,
    ContentTypeNotSupportedError,
    ExtendedAgentCardNotConfiguredError,
    ExtensionSupportRequiredError,
    InternalError,
    InvalidAgentResponseError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    ParseError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
    VersionNotSupportedError,
)

__all__ = [
    "REST_ROUTES",
    "RestBoundary",
    "RestEndpoint",
    "is_rest_path",
    "render_a2a_rest_error",
    "rest_error_body",
    "rest_status",
]

REST_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/message:send"),
    ("POST", "/message:stream"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("POST", "/tasks/{id}:cancel"),
    ("POST", "/tasks/{id}:subscribe"),
    ("GET POST", "/tasks/{id}/pushNotificationConfigs"),
    ("GET DELETE", "/tasks/{id}/pushNotificationConfigs/{config_id}"),
    ("GET", "/extendedAgentCard"),
)
"""(methods, path) of every route of the binding, relative to the agent's prefix (for the access rules)."""

_REST_PREFIXES = ("/message:", "/tasks", "/extendedAgentCard")

# A2A error -> (HTTP status, google.rpc status name): the spec's section 5.4 (the a2a-sdk maps them the same way)
_STATUS: dict[type[A2AError], tuple[int, str]] = {
    TaskNotFoundError: (404, "NOT_FOUND"),
    TaskNotCancelableError: (400, "FAILED_PRECONDITION"),
    PushNotificationNotSupportedError: (400, "FAILED_PRECONDITION"),
    UnsupportedOperationError: (400, "FAILED_PRECONDITION"),
    ContentTypeNotSupportedError: (400, "INVALID_ARGUMENT"),
    InvalidAgentResponseError: (500, "INTERNAL"),
    ExtendedAgentCardNotConfiguredError: (400, "FAILED_PRECONDITION"),
    ExtensionSupportRequiredError: (400, "FAILED_PRECONDITION"),
    VersionNotSupportedError: (400, "FAILED_PRECONDITION"),
    InvalidParamsError: (400, "INVALID_ARGUMENT"),
    InvalidRequestError: (400, "INVALID_ARGUMENT"),
    ParseError: (400, "INVALID_ARGUMENT"),
    MethodNotFoundError: (404, "NOT_FOUND"),
    InternalError: (500, "INTERNAL"),
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    421: "INVALID_ARGUMENT",
    500: "INTERNAL",
}
_BOUNDARY_REASONS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "METHOD_NOT_FOUND"}


def is_rest_path(path: str) -> bool:
    """Whether ``path`` (relative to an agent's prefix) is one of this binding's routes."""
    return path.startswith(_REST_PREFIXES)


def rest_status(error: A2AError) -> tuple[int, str]:
    """The HTTP status and ``google.rpc`` status name of ``error`` (section 5.4 of the spec)."""
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    status = error.http_status if 400 <= error.http_status <= 599 else 500
    return status, _STATUS_NAMES.get(status, "UNKNOWN")


def rest_error_body(status: int, status_name: str, message: str, reason: str, metadata: dict[str, Any]) -> bytes:
    """A ``google.rpc.Status`` error body (AIP-193) with one ``google.rpc.ErrorInfo`` detail."""
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "a2a-protocol.org",
        "metadata": {k: str(v) for k, v in metadata.items()},
    }
    error = {"code": status, "status": status_name, "message": message, "details": [info]}
    return to_json({"error": error})


def _a2a_error_body(error: A2AError) -> tuple[int, bytes]:
    status, name = rest_status(error)
    return status, rest_error_body(status, name, error.message, error.reason, error.metadata)


def render_a2a_rest_error(rejection: BoundaryRejection) -> bytes:
    """A boundary rejection as this binding's error body (the HTTP status stays the rejection's)."""
    reason = _BOUNDARY_REASONS.get(rejection.status, "INVALID_REQUEST")
    if rejection.status == 415:
        reason = "CONTENT_TYPE_NOT_SUPPORTED"
    elif rejection.kind == "InvalidJSON":
        reason = "PARSE_ERROR"
    name = _STATUS_NAMES.get(rejection.status, "INVALID_ARGUMENT")
    return rest_error_body(rejection.status, name, rejection.message, reason, {"boundary": rejection.kind})


class RestBoundary(Boundary):
    """The agent server's boundary for this binding's routes: the same policy, errors in this binding's format.

    A POST without a body (``:subscribe``, ``:cancel`` as the a2a-sdk sends them) needs no ``Content-Type``."""

    def _check_headers(self, scope: Scope, headers: dict[str, str]) -> None:
        if "content-type" not in headers and headers.get("content-length", "0") == "0":
            headers = {**headers, "content-type": "application/json"}
        super()._check_headers(scope, headers)


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        to_json(content, inf_nan_mode="null"), status, {VERSION_HEADER: PROTOCOL_VERSION}, "application/json"
    )


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _sse_frame(data: bytes, event: str | None = None) -> bytes:
    return (f"event: {event}\n" if event else "").encode() + b"data: " + data + b"\n\n"


Operation = Callable[[Request, Principal], Awaitable[Response]]


class RestEndpoint:
    """Starlette routes serving one agent's ``A2AHandlers`` over the HTTP+JSON binding (behind ``RestBoundary``)."""

    def __init__(self, handlers: A2AHandlers) -> None:
        self.handlers = handlers

    def routes(self) -> list[BaseRoute]:
        """The binding's routes, relative to the agent's prefix (``REST_ROUTES``)."""
        h = self.handlers
        push = self._endpoint("PushNotificationConfig", self._unary(h.push_config))
        return [
            Route("/message:send", self._endpoint("SendMessage", self._send), methods=["POST"]),
            Route("/message:stream", self._endpoint("SendStreamingMessage", self._stream_send), methods=["POST"]),
            Route("/tasks", self._endpoint("ListTasks", self._unary(h.list_tasks, query=True)), methods=["GET"]),
            Route("/tasks/{id}:cancel", self._endpoint("CancelTask", self._unary(h.cancel_task)), methods=["POST"]),
            Route("/tasks/{id}:subscribe", self._endpoint("SubscribeToTask", self._subscribe), methods=["POST"]),
            Route("/tasks/{id}", self._endpoint("GetTask", self._unary(h.get_task, query=True)), methods=["GET"]),
            Route("/tasks/{id}/pushNotificationConfigs", push, methods=["GET", "POST"]),
            Route("/tasks/{id}/pushNotificationConfigs/{config_id}", push, methods=["GET", "DELETE"]),
            Route("/extendedAgentCard", self._endpoint("GetExtendedAgentCard", self._unary(h.get_extended_card))),
        ]

    def _endpoint(self, name: str, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        """Version check, the caller, a server span, and every error as a google.rpc body."""

        async def endpoint(request: Request) -> Response:
            try:
                check_version(request.headers)
                principal = request_principal(request)
                parent = telemetry.extract_headers(request.headers)
                with telemetry.span(f"{telemetry.SPAN_A2A} {name}", kind=telemetry.SpanKind.SERVER, context=parent):
                    return await operation(request, principal)
            except A2AError as exc:
                status, body = _a2a_error_body(exc)
                return Response(body, status, {VERSION_HEADER: PROTOCOL_VERSION}, "application/json")
            except Exception as exc:  # never let one bad request take the server down
                status, body = _a2a_error_body(InternalError(f"internal error: {type(exc).__name__}"))
                return Response(body, status, media_type="application/json")

        return endpoint

    def _unary(self, handler: Callable[[Params, Principal], Awaitable[Any]], *, query: bool = False) -> Operation:
        async def operation(request: Request, principal: Principal) -> Response:
            return _json(await handler(_params(request, query=query), principal))

        return operation

    async def _send(self, request: Request, principal: Principal) -> Response:
        disconnected = lambda: _until_disconnect(request.receive)  # noqa: E731
        return _json(await self.handlers.send_message(_params(request), principal, disconnected))

    async def _stream_send(self, request: Request, principal: Principal) -> Response:
        return await _sse(self.handlers.send_streaming(_params(request), principal))

    async def _subscribe(self, request: Request, principal: Principal) -> Response:
        return await _sse(self.handlers.subscribe(_params(request), principal))


def _params(request: Request, *, query: bool = False) -> dict[str, Any]:
    """The operation's params: the JSON body (or, for GET, the query parameters) plus the path's ``id``."""
    params: dict[str, Any]
    if query:
        params = dict(request.query_params)
    else:
        body = request_json(request)
        if body is NO_BODY:
            body = {}
        if not isinstance(body, dict):
            raise InvalidRequestError("the body must be a JSON object (the operation's request, in camelCase)")
        params = dict(body)
    if "id" in request.path_params:
        params["id"] = request.path_params["id"]
    return params


async def _sse(events: AsyncIterator[StreamResponse]) -> Response:
    """The events as SSE; errors before the first event are an HTTP error, later ones an ``event: error``."""
    first = await anext(events)

    async def frames() -> AsyncIterator[bytes]:
        yield _sse_frame(to_json(first.wire()))
        try:
            async for event in events:
                yield _sse_frame(to_json(event.wire()))
        except A2AError as exc:
            yield _sse_frame(_a2a_error_body(exc)[1], "error")

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", VERSION_HEADER: PROTOCOL_VERSION},
    )
