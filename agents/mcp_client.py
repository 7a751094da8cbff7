"""Use any MCP server's tools from Python: connect by URL (streamable HTTP) or by a stdio command.

Enter and leave the client in the same task (``async with McpToolClient.http(url) as tools: ...``): the
underlying MCP session runs in a task group owned by that block.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from protocol import telemetry
from protocol.egress import EgressPolicy, guarded_mcp_client

__all__ = ["McpToolClient", "McpToolError", "ToolInfo"]

_MAX_PAGES = 100


@dataclass(frozen=True)
class ToolInfo:
    """One tool as its server lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None


class McpToolError(RuntimeError):
    """A tool call failed: the server refused it (``code`` set: a protocol error) or the tool reported an error."""

    def __init__(self, tool: str, reason: str, *, code: int | None = None, data: Any = None) -> None:
        kind = f"MCP error {code}" if code is not None else "tool error"
        super().__init__(f"{tool}: {kind}: {reason}")
        self.tool = tool
        self.reason = reason
        self.code = code
        self.data = data


@dataclass
class McpToolClient:
    """An MCP client reduced to what other packages need: list tools, call one, get a dict back."""

    server: str | StdioServerParameters
    timeout_s: float = 60.0
    egress: EgressPolicy | None = None
    last_meta: dict[str, Any] = field(default_factory=dict, init=False)
    _client: Client | None = field(default=None, init=False, repr=False)
    _http: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.timeout_s <= 3600:
            raise ValueError(f"timeout_s must be in (0, 3600] seconds, got {self.timeout_s}")

    @classmethod
    def http(cls, url: str, *, timeout_s: float = 60.0, egress: EgressPolicy | None = None) -> McpToolClient:
        """A client for the streamable-HTTP MCP endpoint at ``url`` (e.g. ``http://host:8000/mcp``).

        With ``egress``, the host is resolved and checked against that policy before any connection
        (``protocol.egress``): use it whenever the URL came from the network.
        """
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"MCP URL must start with http:// or https://, got {url!r}")
        return cls(url, timeout_s=timeout_s, egress=egress)

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout_s: float = 60.0,
    ) -> McpToolClient:
        """A client that spawns ``command args...`` and speaks MCP over its stdin/stdout."""
        params = StdioServerParameters(command=command, args=list(args), env=dict(env) if env else None, cwd=cwd)
        return cls(params, timeout_s=timeout_s)

    @classmethod
    def agent_stdio(cls, target: str, **options: Any) -> McpToolClient:
        """A client for ``python -m agents.mcp module:attr`` run with this interpreter."""
        return cls.stdio(sys.executable, ["-m", "agents.mcp", target], **options)

    async def __aenter__(self) -> McpToolClient:
        if self._client is not None:
            raise RuntimeError("McpToolClient is already open; use one 'async with' block at a time")
        # No cancel scope around the enter: the session's task groups outlive it. The handshake requests
        # are bounded by read_timeout_seconds instead.
        server: Any = self.server
        if self.egress is not None and isinstance(server, str):
            self._http = guarded_mcp_client(self.egress, timeout_s=self.timeout_s)
            server = streamable_http_client(server, http_client=self._http)
        client = Client(server, read_timeout_seconds=self.timeout_s)
        try:
            await client.__aenter__()
        except BaseException:
            await self._close_http()
            raise
        self._client = client
        return self

    async def _close_http(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, self._client = self._client, None
        try:
            if client is not None:
                await client.__aexit__(exc_type, exc, tb)
        finally:
            await self._close_http()

    @property
    def client(self) -> Client:
        """The official MCP ``Client`` underneath (open only inside the ``async with`` block)."""
        if self._client is None:
            raise RuntimeError("McpToolClient is not open; use 'async with McpToolClient.http(url) as c:'")
        return self._client

    async def list_tools(self) -> list[ToolInfo]:
        """Every tool the server offers, across all pages."""
        tools: list[ToolInfo] = []
        cursor: str | None = None
        with anyio.fail_after(self.timeout_s):
            for _ in range(_MAX_PAGES):
                page = await self.client.list_tools(cursor=cursor)
                tools.extend(
                    ToolInfo(t.name, t.description or "", dict(t.input_schema), t.output_schema) for t in page.tools
                )
                cursor = page.next_cursor
                if cursor is None:
                    return tools
        raise RuntimeError(f"the server listed more than {_MAX_PAGES} pages of tools; refusing to go on")

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call tool ``name``; return its structured result (or ``{"text": ...}`` for a text-only tool).

        Raises ``McpToolError`` when the server refuses the call or the tool reports an error; the result's
        ``_meta`` (e.g. ``scaleout/usage``) is kept in ``last_meta``.
        """
        try:
            with anyio.fail_after(self.timeout_s):
                with telemetry.span(f"{telemetry.SPAN_MCP} {name}", kind=telemetry.SpanKind.CLIENT):
                    meta: Any = telemetry.trace_meta()  # W3C traceparent in _meta: the server continues this trace
                    result = await self.client.call_tool(name, dict(arguments or {}), meta=meta)
        except MCPError as exc:
            raise McpToolError(name, exc.message, code=exc.code, data=exc.data) from None
        self.last_meta = dict(result.meta or {})
        text = "\n".join(getattr(block, "text", "") for block in result.content).strip()
        if result.is_error:
            raise McpToolError(name, text or "the tool reported an error without a message")
        if isinstance(result.structured_content, dict):
            return dict(result.structured_content)
        if result.structured_content is not None:
            return {"result": result.structured_content}
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return {"text": text}
        return parsed if isinstance(parsed, dict) else {"result": parsed}
