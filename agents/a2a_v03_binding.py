"""The A2A 0.3 JSON-RPC binding of ``HttpAgentClient`` (``agents.client_bindings``: ``"JSONRPC"`` at 0.3).

The caller keeps the 1.0 model: each 1.0 call is converted to the 0.3 method and params, sent with
``A2A-Version: 0.3``, and the 0.3 result or event converted back (``protocol.a2a_v03_rpc``). 0.3 has no
``ListTasks``: it raises ``UnsupportedOperationError``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from agents.client_bindings import JSONRPC, refused
from protocol import telemetry
from protocol.a2a import VERSION_HEADER, StreamResponse
from protocol.a2a_v03 import V03_VERSION
from protocol.a2a_v03_rpc import request_to_v03, result_from_v03
from protocol.jsonrpc import InvalidAgentResponseError, JSONRPCError, UnsupportedOperationError, error_from_wire

__all__ = ["V03JsonRpcBinding"]


def _result(body: Any) -> Any:
    if not isinstance(body, dict):
        raise InvalidAgentResponseError("the A2A 0.3 agent's reply is not a JSON-RPC object")
    if "error" in body:
        raise error_from_wire(JSONRPCError.model_validate(body["error"]))
    if "result" not in body:
        raise InvalidAgentResponseError("the A2A 0.3 agent's JSON-RPC reply has neither result nor error")
    return body["result"]


class V03JsonRpcBinding:
    """A2A 0.3 over JSON-RPC: 1.0 calls in, 0.3 on the wire, 1.0 results out (JSON-ready, as a 1.0 agent's).

    ``headers`` go with every call (the bearer token); ``A2A-Version: 0.3`` replaces the version in them."""

    protocol_binding: ClassVar[str] = JSONRPC
    protocol_version: ClassVar[str] = V03_VERSION

    def __init__(self, http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> None:
        self._http = http
        self.url = url
        self._endpoint = httpx.URL(url)
        kept = {k: v for k, v in (headers or {}).items() if k.lower() != VERSION_HEADER.lower()}
        self._headers = {**kept, VERSION_HEADER: V03_VERSION}
        self._ids = 0

    def _envelope(self, method: str, params: BaseModel) -> dict[str, Any]:
        try:
            v03_method, v03_params = request_to_v03(method, params)
        except ValueError as exc:
            raise UnsupportedOperationError(f"the agent at {self.url} speaks A2A 0.3: {exc}") from None
        self._ids += 1
        return {"jsonrpc": "2.0", "id": self._ids, "method": v03_method, "params": v03_params}

    async def call(self, method: str, params: BaseModel) -> Any:
        """Call the 1.0 ``method`` as its 0.3 method; its result as the 1.0 result."""
        envelope = self._envelope(method, params)
        with telemetry.span(f"{telemetry.SPAN_A2A} {method}", kind=telemetry.SpanKind.CLIENT) as span:
            if span.is_recording():
                span.set_attributes({"rpc.system": "jsonrpc", "rpc.method": envelope["method"], "url.full": self.url})
            headers = telemetry.trace_headers(self._headers)
            response = await self._http.post(self._endpoint, json=envelope, headers=headers)
            if response.status_code in (401, 403):
                refused(response.status_code, response.content)
            try:
                return result_from_v03(method, _result(response.json()))
            except ValueError as exc:  # not JSON, or not the 0.3 shape it should be
                raise InvalidAgentResponseError(f"the A2A 0.3 agent's {envelope['method']} reply: {exc}") from None

    async def stream(self, method: str, params: BaseModel) -> AsyncIterator[StreamResponse]:
        """Call the streaming 1.0 ``method`` as its 0.3 method; each 0.3 event as a 1.0 event."""
        envelope = self._envelope(method, params)
        headers = telemetry.trace_headers({**self._headers, "Accept": "text/event-stream"})
        async with self._http.stream("POST", self._endpoint, json=envelope, headers=headers) as response:
            if response.status_code in (401, 403):
                refused(response.status_code, await response.aread())
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                _result(json.loads(await response.aread()))
                raise InvalidAgentResponseError(f"{envelope['method']} answered without an event stream")
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    yield StreamResponse.model_validate(result_from_v03(method, _result(json.loads(line[5:]))))
