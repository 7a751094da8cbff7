"""Per-client bounds on stateful MCP sessions, in front of the SDK's ``StreamableHTTPSessionManager``.

The SDK caps sessions for all clients together, so one client could fill the cap and lock everyone else out
until its sessions expire. ``SessionLimiter`` remembers which client (IP address) opened each session, when
each was last used and whether a request is in flight on it; a client over its cap first loses its least
recently used idle session, and gets 503 only when every one of its sessions is busy.

The SDK keeps its sessions in ``StreamableHTTPSessionManager._server_instances`` (private in mcp 2.x, which
pyproject pins below 3). Without that table, sessions are forgotten after the idle timeout and none is evicted.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Message, Receive, Scope, Send

__all__ = ["SessionLimiter", "SessionTable", "jsonrpc_error_body", "respond"]

SESSION_HEADER = b"mcp-session-id"
_INTERNAL_ERROR = -32603


def jsonrpc_error_body(code: int, message: str) -> bytes:
    """A JSON-RPC error response body with a null id."""
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}).encode()


async def respond(send: Send, status: int, body: bytes) -> None:
    """Send a complete JSON response."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(eq=False)
class _Session:
    client: str
    last_used: float
    in_flight: int = 0


class SessionTable:
    """Who opened each session, in least-recently-used order per client, and what is in flight."""

    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self.by_client: dict[str, OrderedDict[str, None]] = {}
        self.opening: dict[str, int] = {}  # requests without a session id, per client, until they answer

    def count(self, client: str) -> int:
        """Sessions of ``client`` plus its requests that may still open one."""
        return len(self.by_client.get(client, ())) + self.opening.get(client, 0)

    def add(self, session_id: str, client: str) -> None:
        """Record a session just opened by ``client`` (with its opening request in flight)."""
        self.sessions[session_id] = _Session(client, time.monotonic(), in_flight=1)
        self.by_client.setdefault(client, OrderedDict())[session_id] = None

    def touch(self, session_id: str, delta: int) -> None:
        """A request on the session starts (+1) or ends (-1): it is now the client's most recently used."""
        session = self.sessions.get(session_id)
        if session is not None:
            session.in_flight += delta
            session.last_used = time.monotonic()
            self.by_client[session.client].move_to_end(session_id)

    def done_opening(self, client: str) -> None:
        """A request without a session id has answered (with a session or not)."""
        left = self.opening.get(client, 0) - 1
        if left > 0:
            self.opening[client] = left
        else:
            self.opening.pop(client, None)

    def remove(self, session_id: str) -> None:
        """Forget a session."""
        session = self.sessions.pop(session_id, None)
        if session is not None:
            order = self.by_client[session.client]
            order.pop(session_id, None)
            if not order:
                del self.by_client[session.client]

    def least_recently_used_idle(self, client: str) -> str | None:
        """The client's least recently used session with no request in flight, if any."""
        return next((sid for sid in self.by_client.get(client, ()) if not self.sessions[sid].in_flight), None)

    def prune(self, alive: dict[str, Any] | None, idle_timeout_s: float | None) -> None:
        """Forget sessions the SDK has ended (or, without its table, those idle past the timeout)."""
        now = time.monotonic()
        for sid, session in list(self.sessions.items()):
            if alive is not None:
                gone = sid not in alive
            else:
                gone = idle_timeout_s is not None and not session.in_flight and now - session.last_used > idle_timeout_s
            if gone:
                self.remove(sid)


def _live_sessions(manager: StreamableHTTPSessionManager) -> dict[str, Any] | None:
    """The SDK's session table (``_server_instances``), or None where this SDK version has none."""
    instances = getattr(manager, "_server_instances", None)
    return instances if isinstance(instances, dict) else None


async def _end_session(live: dict[str, Any], session_id: str) -> None:
    """End a session the SDK holds: forgotten first (its id answers 404 from now on), then its transport closed."""
    transport = live.pop(session_id, None)
    if transport is not None and not transport.is_terminated:
        with anyio.CancelScope(shield=True):
            await transport.terminate()


class _Flight:
    """One request's hold on the table: opening a session until its response starts, then in flight on its
    session until its response ends (or the handler returns, whichever comes first)."""

    def __init__(self, table: SessionTable, session_id: str | None, opening_client: str | None) -> None:
        self.table, self.session_id, self.opening = table, session_id, opening_client
        if session_id is not None:
            table.touch(session_id, +1)

    def observe(self, message: Message) -> None:
        if message["type"] == "http.response.start" and self.opening is not None:
            client, self.opening = self.opening, None
            self.table.done_opening(client)
            if message["status"] < 400:
                headers = message.get("headers", ())
                opened = next((v.decode("latin-1") for k, v in headers if k.lower() == SESSION_HEADER), None)
                if opened is not None:
                    self.table.add(opened, client)
                    self.session_id = opened
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.end()

    def end(self) -> None:
        if self.opening is not None:
            self.table.done_opening(self.opening)
            self.opening = None
        if self.session_id is not None:
            self.table.touch(self.session_id, -1)
            self.session_id = None


class SessionLimiter:
    """Serves requests through a session manager with at most ``per_client`` sessions per client address."""

    def __init__(self, per_client: int, idle_timeout_s: float | None) -> None:
        if per_client < 1:
            raise ValueError(f"MCP sessions per client must be at least 1, got {per_client}")
        if idle_timeout_s is not None and not 0 < idle_timeout_s < float("inf"):
            raise ValueError(f"the MCP session idle timeout must be a positive number of seconds, got {idle_timeout_s}")
        self.per_client = per_client
        self.idle_timeout_s = idle_timeout_s
        self.table = SessionTable()
        self._admission = anyio.Lock()

    def count(self, manager: StreamableHTTPSessionManager | None, client: str | None = None) -> int:
        """Open sessions (of one client when ``client`` is given); reads the table without changing it."""
        live = _live_sessions(manager) if manager is not None else None
        ids = list(self.table.sessions if client is None else self.table.by_client.get(client, ()))
        return sum(1 for sid in ids if live is None or sid in live)

    async def serve(self, manager: StreamableHTTPSessionManager, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request; one without a session id is first admitted under its client's cap."""
        session_id = next((v.decode("latin-1") for k, v in scope["headers"] if k == SESSION_HEADER), None)
        client = None
        if session_id is None:
            client = (scope.get("client") or ("unknown", 0))[0]
            if not await self._admit(manager, client, send):
                return
        flight = _Flight(self.table, session_id, client)

        async def watch(message: Message) -> None:
            flight.observe(message)  # before sending: a new session is known before its client can use it
            await send(message)

        try:
            await manager.handle_request(scope, receive, watch)
        finally:
            flight.end()

    async def _admit(self, manager: StreamableHTTPSessionManager, client: str, send: Send) -> bool:
        """Make room for one more session of ``client`` (ending its least recently used idle one), or answer 503."""
        table = self.table
        async with self._admission:
            live = _live_sessions(manager)
            table.prune(live, self.idle_timeout_s)
            if table.count(client) >= self.per_client:
                victim = table.least_recently_used_idle(client) if live is not None else None
                if live is None or victim is None:
                    await respond(send, 503, self._refusal(client))
                    return False
                table.remove(victim)
                await _end_session(live, victim)
            table.opening[client] = table.opening.get(client, 0) + 1
        return True

    def _refusal(self, client: str) -> bytes:
        idle = f"{self.idle_timeout_s:g} s" if self.idle_timeout_s else "never"
        return jsonrpc_error_body(
            _INTERNAL_ERROR,
            f"client {client} already has {self.per_client} MCP sessions open and none is idle; end one (DELETE "
            f"with its Mcp-Session-Id) or retry when one is idle (idle sessions expire after {idle})",
        )
