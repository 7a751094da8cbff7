"""The A2A JSON-RPC binding over HTTP for one agent: validate, dispatch, encode (JSON or SSE).

The body arrives already checked and parsed by ``protocol.boundary.Boundary`` (host, origin, JSON content type,
size, depth, UTF-8, and the caller's bearer token and scope); ``render_jsonrpc_error`` is the boundary's renderer
for JSON-RPC surfaces (A2A and MCP). Every method runs as the caller the boundary authenticated
(``protocol.access.request_principal``), which decides which tasks it sees.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive

from agents.tasks import TaskRuntime
from protocol import telemetry
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
from protocol.access import request_principal
from protocol.auth import Principal
from protocol.boundary import NO_BODY, BoundaryRejection, request_json
from protocol.jsonrpc import (
    A2AError,
    ContentTypeNotSupportedError,
    ExtendedAgentCardNotConfiguredError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    JSONRPCErrorResponse,
    JSONRPCRequest,
    MethodNotFoundError,
    ParseError,
    PushNotificationNotSupportedError,
    VersionNotSupportedError,
)
from protocol.validation import describe_validation_error

__all__ = [
    "JsonRpcEndpoint",
    "MAX_BODY_BYTES",
    "SUPPORTED_VERSIONS",
    "LEGACY_VERSION",
    "major_minor",
    "render_jsonrpc_error",
]

MAX_BODY_BYTES = 1_000_000  # the default body cap of an agent server's boundary
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})
LEGACY_VERSION = "0.3"


def major_minor(version: str) -> str:
    """``Major.Minor`` of a version string (patch numbers never count in negotiation): '1.0.2' -> '1.0'."""
    return ".".join(version.split(".")[:2])


_PUSH_METHODS = {
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
}


def _json_response(content: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Like Starlette's JSONResponse (compact UTF-8 JSON), encoded by pydantic-core: a few times faster."""
    return Response(to_json(content, inf_nan_mode="null"), status, headers, media_type="application/json")


def _error_response(error: A2AError, request_id: Any = None, status: int = 200) -> Response:
    body = JSONRPCErrorResponse(id=request_id, error=error.to_jsonrpc())
    return _json_response(body.model_dump(mode="json"), status=status)


_AUTH_REASONS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}


def render_jsonrpc_error(rejection: BoundaryRejection) -> bytes:
    """A boundary rejection as a JSON-RPC error body with a null id (the HTTP status stays the rejection's).

    -32005 for the content type, -32700 for bad JSON or UTF-8, -32600 for the rest (host, origin, size, depth, time,
    and 401/403 for a missing or bad token or a missing scope, with the reason UNAUTHENTICATED or PERMISSION_DENIED).
    """
    error: A2AError
    if rejection.status == 415:
        error = ContentTypeNotSupportedError(rejection.message, {"boundary": rejection.kind})
    elif rejection.kind == "InvalidJSON":
        error = ParseError(rejection.message, {"boundary": rejection.kind})
    else:
        error = InvalidRequestError(rejection.message, {"boundary": rejection.kind})
        if rejection.status in _AUTH_REASONS:
            error.reason = _AUTH_REASONS[rejection.status]
    return to_json(JSONRPCErrorResponse(id=None, error=error.to_jsonrpc()).model_dump(mode="json"))


def _params(model: type[BaseModel], params: dict[str, Any] | None) -> Any:
    try:
        return model.model_validate(params or {})
    except ValidationError as exc:
        details = describe_validation_error(exc)
        raise InvalidParamsError(f"invalid params for {model.__name__.removesuffix('Request')}: {details}") from None


async def _until_disconnect(receive: Receive) -> None:
    """Return once the client has closed the connection (the body was read already: the next message says so)."""
    while (await receive())["type"] != "http.disconnect":
        pass


Unary = Callable[[dict[str, Any] | None, Principal], Awaitable[Any]]
Streaming = Callable[[dict[str, Any] | None, Principal], AsyncIterator[StreamResponse]]


class JsonRpcEndpoint:
    """Starlette endpoint serving one agent's TaskRuntime over A2A JSON-RPC 2.0 (behind ``Boundary``).

    ``extended_card``: the JSON-ready card ``GetExtendedAgentCard`` returns to authenticated callers (None: the
    method answers "not configured", as it does for every caller of a server without keys).
    """

    def __init__(self, runtime: TaskRuntime, *, extended_card: dict[str, Any] | None = None) -> None:
        self.runtime = runtime
        self.extended_card = extended_card
        self._unary: dict[str, Unary] = {  # SendMessage is dispatched on its own: it watches the connection
            "GetTask": self._get_task,
            "ListTasks": self._list_tasks,
            "CancelTask": self._cancel_task,
            "GetExtendedAgentCard": self._extended_card,
        }
        self._streaming: dict[str, Streaming] = {
            "SendStreamingMessage": self._send_streaming,
            "SubscribeToTask": self._subscribe,
        }
        self._methods = {*self._unary, *self._streaming, *_PUSH_METHODS, "SendMessage"}  # span names: known only

    async def handle(self, request: Request) -> Response:
        """Answer one JSON-RPC request (the boundary has already parsed its body)."""
        payload = request_json(request)  # outside the try: an app not behind the boundary is a bug, loudly
        request_id: Any = None
        try:
            if payload is NO_BODY:
                raise ParseError("the body is empty; send a JSON-RPC 2.0 request object as application/json")
            if isinstance(payload, dict):
                raw_id = payload.get("id")
                request_id = raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
            try:
                rpc = JSONRPCRequest.model_validate(payload)
            except ValidationError:
                raise InvalidRequestError(
                    'not a JSON-RPC 2.0 request: send {"jsonrpc": "2.0", "method": ..., "params": {...}, "id": ...}'
                ) from None
            self._check_version(request)
            principal = request_principal(request)
            # the caller's W3C traceparent, if any: this request's span (and the skill's) joins the caller's trace
            parent = telemetry.extract_headers(request.headers)
            name = f"{telemetry.SPAN_A2A} {rpc.method if rpc.method in self._methods else 'unknown'}"
            with telemetry.span(name, kind=telemetry.SpanKind.SERVER, context=parent):
                return await self._dispatch(rpc, principal, request)
        except A2AError as exc:
            return _error_response(exc, request_id)
        except Exception as exc:  # never let one bad request take the server down
            return _error_response(InternalError(f"internal error: {type(exc).__name__}"), request_id)

    async def _dispatch(self, rpc: JSONRPCRequest, principal: Principal, request: Request) -> Response:
        """Run the method ``rpc`` names as ``principal``: a JSON-RPC response, or an SSE stream."""
        if rpc.method in self._streaming:
            stream = self._streaming[rpc.method](rpc.params, principal)
            first = await anext(stream)  # errors before the first event come back as plain JSON-RPC
            return StreamingResponse(
                self._sse(rpc.id, first, stream),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", VERSION_HEADER: PROTOCOL_VERSION},
            )
        if rpc.method in _PUSH_METHODS:
            raise PushNotificationNotSupportedError("this agent does not support push notifications")
        if rpc.method == "SendMessage":
            result = await self._send_message(rpc.params, principal, request)
        else:
            handler = self._unary.get(rpc.method)
            if handler is None:
                raise MethodNotFoundError(f"method {rpc.method!r} not found")
            result = await handler(rpc.params, principal)
        return _json_response(
            {"jsonrpc": "2.0", "id": rpc.id, "result": result}, headers={VERSION_HEADER: PROTOCOL_VERSION}
        )

    def _check_version(self, request: Request) -> None:
        raw = request.headers.get(VERSION_HEADER) or ""  # a header only: never the query string
        version = raw.strip() or LEGACY_VERSION  # the spec: an empty or missing A2A-Version means 0.3
        if major_minor(version) not in SUPPORTED_VERSIONS:
            hint = f"send the header '{VERSION_HEADER}: {PROTOCOL_VERSION}'"
            what = "no A2A-Version (read as 0.3)" if not raw.strip() else f"A2A-Version {version[:20]!r}"
            raise VersionNotSupportedError(
                f"{what} is not supported; this agent speaks {sorted(SUPPORTED_VERSIONS)}: {hint}",
                {"supportedVersions": ",".join(sorted(SUPPORTED_VERSIONS))},
            )

    async def _sse(
        self, rpc_id: Any, first: StreamResponse, rest: AsyncIterator[StreamResponse]
    ) -> AsyncIterator[bytes]:
        def frame(result: Any) -> bytes:
            return f"data: {json.dumps({'jsonrpc': '2.0', 'id': rpc_id, 'result': result})}\n\n".encode()

        yield frame(first.wire())
        try:
            async for event in rest:
                yield frame(event.wire())
        except A2AError as exc:
            error = JSONRPCErrorResponse(id=rpc_id, error=exc.to_jsonrpc()).model_dump(mode="json")
            yield f"data: {json.dumps(error)}\n\n".encode()

    async def _send_message(self, params: dict[str, Any] | None, principal: Principal, http: Request) -> Any:
        """A SendMessageResponse, dumped without a copy; a blocking call whose client disconnects stops waiting,
        and its task is cancelled unless someone comes back for it (``TaskRuntime.disconnect_grace_s``)."""
        request = _params(SendMessageRequest, params)
        return await self.runtime.send_wire(request, principal, disconnected=lambda: _until_disconnect(http.receive))

    async def _send_streaming(
        self, params: dict[str, Any] | None, principal: Principal
    ) -> AsyncIterator[StreamResponse]:
        request = _params(SendMessageRequest, params)
        async for event in self.runtime.stream(request, principal):
            yield event

    async def _subscribe(self, params: dict[str, Any] | None, principal: Principal) -> AsyncIterator[StreamResponse]:
        request = _params(SubscribeToTaskRequest, params)
        async for event in self.runtime.subscribe(request.id, principal):
            yield event

    async def _get_task(self, params: dict[str, Any] | None, principal: Principal) -> Any:
        request = _params(GetTaskRequest, params)
        return self.runtime.get(request.id, request.history_length, principal).wire()

    async def _list_tasks(self, params: dict[str, Any] | None, principal: Principal) -> Any:
        request = _params(ListTasksRequest, params)
        return self.runtime.list(request, principal).wire()

    async def _cancel_task(self, params: dict[str, Any] | None, principal: Principal) -> Any:
        request = _params(CancelTaskRequest, params)
        return (await self.runtime.cancel(request.id, principal)).wire()

    async def _extended_card(self, params: dict[str, Any] | None, principal: Principal) -> Any:
        if self.extended_card is None or not principal.authenticated:
            raise ExtendedAgentCardNotConfiguredError(
                "this agent has no extended agent card (it is served to authenticated callers when the server "
                "has keys: scaleout agent serve --jwks FILE)"
            )
        return self.extended_card
