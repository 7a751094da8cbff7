"""A2A 0.3 compatibility of an agent's JSON-RPC endpoint: a thin adapter in front of the 1.0 one.

A request whose ``A2A-Version`` is missing, empty or 0.3.x and whose method is a 0.3 method (``message/send``,
``message/stream``, ``tasks/get``, ``tasks/cancel``, ``tasks/resubscribe``, the push-notification methods,
``agent/getAuthenticatedExtendedCard``) is converted to the 1.0 call (``protocol.a2a_v03_rpc``), answered by the same
1.0 endpoint (same runtime, same caller, behind the same boundary), and its result or event stream converted
back. Every other request goes to the 1.0 endpoint unchanged (a 1.0 method without a 1.0 header still answers
``-32009``). The served card declares the 0.3 interface beside the 1.0 one (``served_card``).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from protocol.a2a import PROTOCOL_VERSION, VERSION_HEADER, AgentCard
from protocol.a2a_v03 import V03_VERSION, is_v03_version
from protocol.a2a_v03_card import card_to_v03, with_v03_interface
from protocol.a2a_v03_rpc import V03_METHODS, request_from_v03, result_to_v03
from protocol.boundary import JSON_SCOPE_KEY, request_json
from protocol.jsonrpc import A2AError, InternalError, JSONRPCErrorResponse, JSONRPCRequest, MethodNotFoundError

__all__ = ["V03_CARD_ENV", "V03Endpoint", "served_card", "v03_compatible"]

Handler = Callable[[Request], Awaitable[Response]]

V03_CARD_ENV = "SCALEOUT_A2A_V03_CARD"
"""Set to 1 to serve the card's 0.3 view (the 1.0 card plus ``url``/``preferredTransport``/``protocolVersion``)
at the well-known path, for 0.3 clients that read only those; off by default, because strict 1.0 card schemas
(the A2A TCK 1.0) refuse fields they do not know."""

_V10_METHODS = frozenset({*V03_METHODS.values(), "ListTasks"})
_VERSION_KEY = VERSION_HEADER.lower().encode("latin-1")
_MAX_SSE_FRAME = 16 * 1024 * 1024  # one event of our own 1.0 stream; bounds the buffer if it ever lacks a separator


def served_card(card: AgentCard, *, legacy_fields: bool | None = None) -> dict[str, Any]:
    """The card as an agent server serves it: ``card`` declaring the 0.3 JSON-RPC interface at its 1.0 URL; with
    ``legacy_fields`` (default: ``$SCALEOUT_A2A_V03_CARD`` is 1) also the 0.3 card fields beside the 1.0 ones."""
    wire = with_v03_interface(card).wire()
    if legacy_fields is None:
        legacy_fields = os.environ.get(V03_CARD_ENV, "").strip() in ("1", "true", "yes")
    return card_to_v03(wire) if legacy_fields else wire


def _rpc_id(payload: Any) -> Any:
    raw = payload.get("id") if isinstance(payload, dict) else None
    return raw if isinstance(raw, str | int) and not isinstance(raw, bool) else None


def _v03_method(request: Request, payload: Any) -> str | None:
    """The method of a 0.3 call (a valid JSON-RPC request without a 1.0 ``A2A-Version``, whose method is not a
    1.0 one), or None: then the 1.0 endpoint answers (an invalid request -32600, a 1.0 method -32009)."""
    if not isinstance(payload, dict) or not is_v03_version(request.headers.get(VERSION_HEADER)):
        return None
    try:
        method = JSONRPCRequest.model_validate(payload).method
    except ValidationError:
        return None
    return None if method in _V10_METHODS else method


def _headers_as_v10(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k.lower() != _VERSION_KEY]
    return [*kept, (_VERSION_KEY, PROTOCOL_VERSION.encode())]


def _reply_headers(response: Response) -> dict[str, str]:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", _VERSION_KEY.decode())}
    headers[VERSION_HEADER] = V03_VERSION
    return headers


def _error(error: A2AError, rpc_id: Any) -> Response:
    body = JSONRPCErrorResponse(id=rpc_id, error=error.to_jsonrpc()).model_dump(mode="json")
    return Response(to_json(body), 200, {VERSION_HEADER: V03_VERSION}, media_type="application/json")


class V03Endpoint:
    """Wraps a 1.0 JSON-RPC handler (``JsonRpcEndpoint.handle``) so that it also answers 0.3 calls.

    ``convert_card``: how an extended card (``agent/getAuthenticatedExtendedCard``) is shown to a 0.3 caller
    (default ``card_to_v03``)."""

    def __init__(self, handle: Handler, *, convert_card: Callable[[dict[str, Any]], Any] = card_to_v03) -> None:
        self._handle = handle
        self._convert_card = convert_card

    async def handle(self, request: Request) -> Response:
        """Answer one request: a 0.3 call through the 1.0 handler, anything else by the 1.0 handler itself."""
        payload = request_json(request)
        method = _v03_method(request, payload)
        if method is None:
            return await self._handle(request)
        rpc_id = _rpc_id(payload)
        if method not in V03_METHODS:
            known = ", ".join(V03_METHODS)
            return _error(MethodNotFoundError(f"method {method[:100]!r} not found; A2A 0.3 methods: {known}"), rpc_id)
        try:
            v10_method, params = request_from_v03(method, payload.get("params"))
        except A2AError as exc:
            return _error(exc, rpc_id)
        scope = dict(request.scope)
        scope[JSON_SCOPE_KEY] = {**payload, "method": v10_method, "params": params}
        scope["headers"] = _headers_as_v10(request.scope["headers"])
        response = await self._handle(Request(scope, request.receive))
        if isinstance(response, StreamingResponse):
            stream = self._events(method, response.body_iterator)
            return StreamingResponse(stream, response.status_code, _reply_headers(response), "text/event-stream")
        return self._converted(method, rpc_id, response)

    def _result(self, method: str, result: Any) -> Any:
        if V03_METHODS[method] == "GetExtendedAgentCard":
            return self._convert_card(result)
        return result_to_v03(method, result)

    def _converted(self, method: str, rpc_id: Any, response: Response) -> Response:
        """The 1.0 handler's JSON-RPC reply with its result in 0.3 shape (errors pass unchanged: same codes)."""
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            return response
        if isinstance(body, dict) and "result" in body:
            try:
                body["result"] = self._result(method, body["result"])
            except ValueError as exc:
                return _error(InternalError(f"internal error: the 1.0 result does not convert to 0.3: {exc}"), rpc_id)
        return Response(to_json(body), response.status_code, _reply_headers(response), media_type="application/json")

    async def _events(self, method: str, frames: AsyncIterable[Any]) -> AsyncIterator[bytes]:
        """The 1.0 SSE frames as 0.3 frames: each ``data:`` result converted, errors passed through."""
        buffer = b""
        try:
            async for chunk in frames:
                buffer += chunk if isinstance(chunk, bytes) else str(chunk).encode()
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    yield self._frame(method, frame)
                if len(buffer) > _MAX_SSE_FRAME:
                    raise ValueError("an event of the 1.0 stream is larger than 16 MB")
            if buffer.strip():
                yield self._frame(method, buffer)
        finally:  # a client that goes away ends the 1.0 stream too (its subscription, its waiter)
            close = getattr(frames, "aclose", None)
            if close is not None:
                await close()

    def _frame(self, method: str, frame: bytes) -> bytes:
        lines = frame.decode().splitlines()
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if not data:
            return frame + b"\n\n"
        body = json.loads(data)
        if isinstance(body, dict) and "result" in body:
            body["result"] = result_to_v03(method, body["result"])
        return f"data: {json.dumps(body)}\n\n".encode()


def v03_compatible(handle: Handler) -> Handler:
    """``handle`` (a 1.0 JSON-RPC handler) answering 0.3 calls too; see ``V03Endpoint``."""
    return V03Endpoint(handle).handle
