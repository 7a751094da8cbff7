"""The wire under ``HttpAgentClient``: one ``Binding`` per A2A protocol binding, picked from the agent's card.

A binding turns one A2A operation into HTTP and back. Its interface (``Binding``) is small:

- ``call(method, params)``: a unary operation, named by its A2A 1.0 method (``"SendMessage"``, ``"GetTask"``,
  ``"ListTasks"``, ``"CancelTask"``, ``"GetExtendedAgentCard"``) with its 1.0 request model; returns the 1.0
  result as JSON-ready data (a dict), which the client validates. Errors raise ``protocol.jsonrpc.A2AError``
  subclasses (``AgentAccessError`` for HTTP 401/403).
- ``stream(method, params)``: a streaming operation (``"SendStreamingMessage"``, ``"SubscribeToTask"``); yields
  ``StreamResponse`` events.

A binding is made by a ``BindingFactory``: ``factory(http, url, headers)`` with the shared httpx client, the
interface URL and the headers every call carries (the bearer token, ``A2A-Version``). Factories are registered by
``(protocolBinding, protocolVersion major.minor)`` in ``BINDINGS`` (``register_binding``); ``pick_interface``
chooses the first of a card's ``supportedInterfaces`` that has one, so the agent's order of preference holds.
Here: ``JsonRpcBinding`` (``"JSONRPC"``, 1.0) and ``HttpJsonBinding`` (``"HTTP+JSON"``, 1.0, the REST binding).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from protocol import telemetry
from protocol.a2a import (
    PROTOCOL_VERSION,
    AgentCard,
    AgentInterface,
    StreamResponse,
)
from protocol.jsonrpc import (
    ERROR_INFO_TYPE,
    A2AError,
    InvalidAgentResponseError,
    JSONRPCError,
    UnsupportedOperationError,
    error_class_of_reason,
    error_from_wire,
)

__all__ = [
    "BINDINGS",
    "Binding",
    "BindingFactory",
    "HTTP_JSON",
    "HttpJsonBinding",
    "JSONRPC",
    "JsonRpcBinding",
    "binding_key",
    "pick_interface",
    "refused",
    "rest_error",
    "register_binding",
]

JSONRPC = "JSONRPC"
HTTP_JSON = "HTTP+JSON"
_MAX_INTERFACES = 32  # a card comes from the network: bounded
_MAX_ERROR_BYTES = 65_536  # of an error body read for its message


class Binding(Protocol):
    """One A2A protocol binding on one interface URL: unary ``call`` and streaming ``stream`` (module docstring)."""

    url: str  # the interface URL the calls go to

    async def call(self, method: str, params: BaseModel) -> Any:
        """Run the unary 1.0 ``method`` with ``params``; its JSON-ready 1.0 result."""
        ...

    def stream(self, method: str, params: BaseModel) -> AsyncIterator[StreamResponse]:
        """Run the streaming 1.0 ``method`` with ``params``; its events."""
        ...


BindingFactory = Callable[[httpx.AsyncClient, str, dict[str, str]], Binding]
"""Makes a binding: ``factory(http, url, headers)`` (the shared httpx client, the interface URL, the headers
every call carries)."""


def binding_key(protocol_binding: str, protocol_version: str) -> tuple[str, str]:
    """The ``BINDINGS`` key of an interface: its binding name in upper case and its version's major.minor."""
    return protocol_binding.strip().upper(), ".".join(protocol_version.strip().split(".")[:2])


def refused(status: int, body: bytes) -> None:
    """Raise ``AgentAccessError`` for an HTTP 401/403 with the reason the agent gave (JSON-RPC or REST error body)."""
    from agents.client import AgentAccessError  # the client module imports this one

    try:
        message = str(json.loads(body[:_MAX_ERROR_BYTES])["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = "the agent refused the caller's credentials" if status == 401 else "the caller lacks a scope"
    raise AgentAccessError(status, message[:500])


def _jsonrpc_result(body: Any) -> Any:
    if not isinstance(body, dict):
        raise InvalidAgentResponseError("the agent's reply is not a JSON-RPC object")
    if "error" in body:
        raise error_from_wire(JSONRPCError.model_validate(body["error"]))
    if "result" not in body:
        raise InvalidAgentResponseError("the agent's JSON-RPC reply has neither result nor error")
    return body["result"]


def _dump(params: BaseModel) -> dict[str, Any]:
    return params.model_dump(mode="json", by_alias=True, exclude_none=True)


class JsonRpcBinding:
    """A2A 1.0 over JSON-RPC 2.0: every call a POST of ``{"jsonrpc", "id", "method", "params"}`` to ``url``;
    streams as SSE whose ``data`` lines are JSON-RPC responses."""

    protocol_binding: ClassVar[str] = JSONRPC

    def __init__(self, http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self._http = http
        self.url = url if url.endswith("/") else url + "/"
        self._endpoint = httpx.URL(self.url)  # parsed once: httpx re-parses a str URL on every request
        self._headers = headers
        self._ids = 0

    def _envelope(self, method: str, params: BaseModel) -> dict[str, Any]:
        self._ids += 1
        return {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": _dump(params)}

    async def call(self, method: str, params: BaseModel) -> Any:
        """POST one JSON-RPC request; its ``result`` (an ``error`` raises the matching ``A2AError``)."""
        with telemetry.span(f"{telemetry.SPAN_A2A} {method}", kind=telemetry.SpanKind.CLIENT) as span:
            if span.is_recording():
                span.set_attributes({"rpc.system": "jsonrpc", "rpc.method": method, "url.full": self.url})
            headers = telemetry.trace_headers(self._headers)  # W3C traceparent: the agent continues this trace
            response = await self._http.post(self._endpoint, json=self._envelope(method, params), headers=headers)
            if response.status_code in (401, 403):
                refused(response.status_code, response.content)
            return _jsonrpc_result(response.json())

    async def stream(self, method: str, params: BaseModel) -> AsyncIterator[StreamResponse]:
        """POST one JSON-RPC request asking for SSE; each event's ``result`` as a ``StreamResponse``."""
        headers = telemetry.trace_headers({**self._headers, "Accept": "text/event-stream"})
        body = self._envelope(method, params)
        async with self._http.stream("POST", self._endpoint, json=body, headers=headers) as r:
            if r.status_code in (401, 403):
                refused(r.status_code, await r.aread())
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                _jsonrpc_result(json.loads(await r.aread()))
                raise InvalidAgentResponseError(f"{method} answered without an event stream")
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    yield StreamResponse.model_validate(_jsonrpc_result(json.loads(line[5:])))


def rest_error(status: int, body: Any) -> A2AError:
    """The ``A2AError`` a REST error answer stands for: by the ``google.rpc.ErrorInfo`` reason in its
    ``details``, else an ``A2AError`` naming the HTTP status."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return InvalidAgentResponseError(f"the agent answered HTTP {status} without a google.rpc error body")
    message = str(error.get("message") or f"HTTP {status}")[:2000]
    details = error.get("details")
    for detail in details[:16] if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("@type") == ERROR_INFO_TYPE:
            cls = error_class_of_reason(str(detail.get("reason")))
            if cls is not None:
                metadata = detail.get("metadata")
                return cls(message, metadata if isinstance(metadata, dict) else None)
            break
    exc = A2AError(message, {"httpStatus": status})
    exc.http_status = status
    return exc


def _rest_body(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content[:_MAX_ERROR_BYTES]) if response.content else None
    except ValueError:
        return None


class HttpJsonBinding:
    """A2A 1.0 over HTTP+JSON (the REST binding): ``POST {url}/message:send``, ``GET {url}/tasks/{id}`` ...;
    errors are ``google.rpc.Status`` bodies with an HTTP status; streams are SSE of ``StreamResponse`` JSON."""

    protocol_binding: ClassVar[str] = HTTP_JSON

    def __init__(self, http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self._http = http
        self.url = url
        self._base = url.rstrip("/")
        self._headers = headers

    def _request(self, method: str, params: BaseModel) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
        """(verb, URL, JSON body or None, query) of ``method`` (the spec's section 5.3 table)."""
        data = _dump(params)
        data.pop("tenant", None)
        task = quote(str(data.pop("id", "")), safe="")
        match method:
            case "SendMessage":
                return "POST", "/message:send", data, {}
            case "SendStreamingMessage":
                return "POST", "/message:stream", data, {}
            case "GetTask":
                return "GET", f"/tasks/{task}", None, data
            case "ListTasks":
                return "GET", "/tasks", None, data
            case "CancelTask":
                return "POST", f"/tasks/{task}:cancel", data, {}
            case "SubscribeToTask":
                return "POST", f"/tasks/{task}:subscribe", None, {}
            case "GetExtendedAgentCard":
                return "GET", "/extendedAgentCard", None, {}
        raise UnsupportedOperationError(f"the HTTP+JSON binding of this client has no operation {method!r}")

    async def call(self, method: str, params: BaseModel) -> Any:
        """One REST request; its JSON body (an error status raises the matching ``A2AError``)."""
        verb, path, body, query = self._request(method, params)
        url = self._base + path
        with telemetry.span(f"{telemetry.SPAN_A2A} {method}", kind=telemetry.SpanKind.CLIENT) as span:
            if span.is_recording():
                span.set_attributes({"rpc.system": "http+json", "rpc.method": method, "url.full": url})
            headers = telemetry.trace_headers(self._headers)
            response = await self._http.request(verb, url, json=body, params=_query(query), headers=headers)
            if response.status_code in (401, 403):
                refused(response.status_code, response.content)
            if response.status_code >= 400:
                raise rest_error(response.status_code, _rest_body(response))
            try:
                return response.json()
            except ValueError:
                raise InvalidAgentResponseError(f"{method} answered with a body that is not JSON") from None

    async def stream(self, method: str, params: BaseModel) -> AsyncIterator[StreamResponse]:
        """One REST request answered with SSE; each ``data`` as a ``StreamResponse`` (``event: error`` raises)."""
        verb, path, body, _ = self._request(method, params)
        headers = telemetry.trace_headers({**self._headers, "Accept": "text/event-stream"})
        async with self._http.stream(verb, self._base + path, json=body, headers=headers) as r:
            if r.status_code in (401, 403):
                refused(r.status_code, await r.aread())
            if r.status_code >= 400:
                content = await r.aread()
                raise rest_error(r.status_code, _rest_body(httpx.Response(r.status_code, content=content)))
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                raise InvalidAgentResponseError(f"{method} answered without an event stream")
            event = "message"
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = json.loads(line[5:])
                    if event == "error" or (isinstance(data, dict) and "error" in data):
                        raise rest_error(500, data)
                    yield StreamResponse.model_validate(data)
                elif not line:
                    event = "message"


def _query(data: dict[str, Any]) -> dict[str, str]:
    """Query parameters as the spec writes them: camelCase names, booleans in lower case, numbers as decimals."""
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in data.items() if v is not None}


BINDINGS: dict[tuple[str, str], BindingFactory] = {
    binding_key(JSONRPC, PROTOCOL_VERSION): JsonRpcBinding,
    binding_key(HTTP_JSON, PROTOCOL_VERSION): HttpJsonBinding,
}
"""The bindings this client speaks, by ``binding_key(protocolBinding, protocolVersion)``."""


def register_binding(protocol_binding: str, protocol_version: str, factory: BindingFactory) -> None:
    """Make ``factory`` the binding for interfaces declaring ``protocol_binding`` at ``protocol_version``."""
    BINDINGS[binding_key(protocol_binding, protocol_version)] = factory


def pick_interface(card: AgentCard, binding: str | None = None) -> AgentInterface | None:
    """The first of ``card``'s interfaces this client has a binding for (only ``binding`` ones, if named)."""
    for interface in card.supported_interfaces[:_MAX_INTERFACES]:
        key = binding_key(interface.protocol_binding, interface.protocol_version)
        if key in BINDINGS and (binding is None or key[0] == binding.strip().upper()):
            return interface
    return None
