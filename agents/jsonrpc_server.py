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

from pydantic import ValidationError
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive

from agents.a2a_handlers import (
    LEGACY_VERSION,
    PUSH_METHODS,
    SUPPORTED_VERSIONS,
    A2AHandlers,
    check_version,
    major_minor,
)
from agents.tasks import TaskRuntime
from protocol import telemetry
from protocol.a2a import (
    PROTOCOL_VERSION,
    VERSION_HEADER,
    StreamResponse,
)
from protocol.access import request_principal
from protocol.auth import Principal
from protocol.boundary import NO_BODY, BoundaryRejection, request_json
from protocol.jsonrpc import (
    A2AError,
    ContentTypeNotSupportedError,
    InternalError,
    InvalidRequestError,
    JSONRPCErrorResponse,
    JSONRPCRequest,
    MethodNotFoundError,
    ParseError,
)

__all__ = [
    "JsonRpcEndpoint",
    "MAX_BODY_BYTES",
    "SUPPORTED_VERSIONS",
    "LEGACY_VERSION",
    "major_minor",
    "render_jsonrpc_error",
]

MAX_BODY_BYTES = 1_000_000  # the default body cap of an agent server's boundary


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


async def _until_disconnect(receive: Receive) -> None:
    """Return once the client has closed the connection (the body was read already: the next message says so)."""
    while (await receive())["type"] != "http.disconnect":
        pass


Unary = Callable[[dict[str, Any] | None, Principal], Awaitable[Any]]
Streaming = Callable[[dict[str, Any] | None, Principal], AsyncIterator[StreamResponse]]


class JsonRpcEndpoint:
    """Starlette endpoint serving one agent's A2A operations (``A2AHandlers``) over JSON-RPC 2.0 (behind ``Boundary``).

    ``extended_card``: the JSON-ready card ``GetExtendedAgentCard`` returns to authenticated callers (None: the
    method answers "not configured", as it does for every caller of a server without keys). ``handlers``: share
    the operations with another binding (``agents.rest_server``) instead of making them from ``runtime``.
    """

    def __init__(
        self,
        runtime: TaskRuntime,
        *,
        extended_card: dict[str, Any] | None = None,
        handlers: A2AHandlers | None = None,
    ) -> None:
        self.handlers = handlers or A2AHandlers(runtime, extended_card=extended_card)
        self.runtime = self.handlers.runtime
        h = self.handlers
        self._unary: dict[str, Unary] = {  # SendMessage is dispatched on its own: it watches the connection
            "GetTask": h.get_task,
            "ListTasks": h.list_tasks,
            "CancelTask": h.cancel_task,
            "GetExtendedAgentCard": h.get_extended_card,
            **{method: h.push_config for method in PUSH_METHODS},
        }
        self._streaming: dict[str, Streaming] = {
            "SendStreamingMessage": h.send_streaming,
            "SubscribeToTask": h.subscribe,
        }
        self._methods = {*self._unary, *self._streaming, "SendMessage"}  # span names: known only

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
            check_version(request.headers)
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
        if rpc.method == "SendMessage":
            disconnected = lambda: _until_disconnect(request.receive)  # noqa: E731
            result = await self.handlers.send_message(rpc.params, principal, disconnected)
        else:
            handler = self._unary.get(rpc.method)
            if handler is None:
                raise MethodNotFoundError(f"method {rpc.method!r} not found")
            result = await handler(rpc.params, principal)
        return _json_response(
            {"jsonrpc": "2.0", "id": rpc.id, "result": result}, headers={VERSION_HEADER: PROTOCOL_VERSION}
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
