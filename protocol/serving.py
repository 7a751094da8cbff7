"""How every scaleout HTTP server runs: uvicorn with bounded connections and a request-head deadline.

uvicorn closes idle keep-alive connections but has no deadline for a request head or body that arrives byte by
byte, so a thousand half-sent requests would hold a server's connections forever. ``Server`` checks its connections
once a second and closes those that have waited longer than ``ServerLimits.header_timeout_s`` for a complete
request head, or longer than ``ServerLimits.body_timeout_s`` for the rest of a request body. The check costs a
request nothing (no timer per request). ``check_port`` refuses a port another process holds with one line
(``PortInUse``), before a command prints anything else.
"""

from __future__ import annotations

import errno
import socket
import time
import weakref
from typing import Any

import uvicorn
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ServerLimits", "TlsFiles", "Server", "PortInUse", "check_port", "server_config", "serve"]


class PortInUse(OSError):
    """The port a server should listen on is taken (or not allowed); the message names it and what to do."""


def check_port(host: str, port: int) -> None:
    """Raise ``PortInUse`` when ``host:port`` is taken or needs privileges (bound as uvicorn binds: SO_REUSEADDR)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return  # a host name that does not resolve: the server's own bind reports it
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is already in use: stop the process holding it "
                    f"(e.g. 'ss -ltnp | grep :{port}') or choose another with --port"
                ) from None
            if exc.errno == errno.EACCES:
                raise PortInUse(f"port {port} on {host} needs privileges: choose one above 1023 with --port") from None
            # anything else (an address this host does not have) is left to the server's own checks and bind


class ServerLimits(BaseModel):
    """Connection limits of one server process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header_timeout_s: float = Field(default=10.0, gt=0, le=600, description="deadline for a complete request head")
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600, description="deadline for the rest of a request body")
    keep_alive_s: int = Field(default=5, ge=1, le=600, description="idle time before a keep-alive connection closes")
    max_connections: int = Field(default=2_000, ge=1, description="connections + requests past which new ones get 503")
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, description="largest request head accepted")


class TlsFiles(BaseModel):
    """A server's certificate chain and private key (PEM files): the ``serve`` commands' --tls-cert/--tls-key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert: str
    key: str


class Server(uvicorn.Server):
    """``uvicorn.Server`` that closes connections whose request head does not arrive in time."""

    def __init__(self, config: uvicorn.Config, limits: ServerLimits | None = None) -> None:
        super().__init__(config)
        self.limits = limits or ServerLimits()
        # connection -> (the request cycle it was last seen waiting in or after, since when)
        self._waiting_since: weakref.WeakKeyDictionary[Any, tuple[Any, float]] = weakref.WeakKeyDictionary()

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:  # once a second
            self.close_stalled(time.monotonic())
        return await super().on_tick(counter)

    def close_stalled(self, now: float) -> int:
        """Close the connections stalled past a deadline (request head, or request body); returns how many."""
        closed = 0
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            if cycle is None or cycle.response_complete:
                deadline = self.limits.header_timeout_s  # waiting for the next request head
            elif getattr(cycle, "more_body", False):
                deadline = self.limits.body_timeout_s  # a request whose body is still arriving
            else:
                self._waiting_since.pop(connection, None)  # a request is being served: its app bounds it
                continue
            seen = self._waiting_since.get(connection)
            if seen is None or seen[0] is not cycle:  # the connection moved on since: the wait starts now
                seen = self._waiting_since[connection] = (cycle, now)
            transport = getattr(connection, "transport", None)
            if now - seen[1] >= deadline and transport is not None and not transport.is_closing():
                transport.close()
                closed += 1
        return closed


def server_config(
    app: Any, host: str, port: int, limits: ServerLimits | None = None, *, tls: TlsFiles | None = None, **options: Any
) -> uvicorn.Config:
    """A uvicorn config with ``limits`` (and TLS) applied; extra ``options`` go to ``uvicorn.Config``."""
    limits = limits or ServerLimits()
    options.setdefault("log_level", "warning")
    if tls is not None:
        options.update(ssl_certfile=tls.cert, ssl_keyfile=tls.key)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_keep_alive=limits.keep_alive_s,
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        server_header=False,
        **options,
    )


def serve(
    app: Any, host: str, port: int, limits: ServerLimits | None = None, *, tls: TlsFiles | None = None, **options: Any
) -> None:
    """Serve ``app`` on ``host:port`` (HTTPS with ``tls``) until interrupted (blocking); ``PortInUse`` when the
    port is taken."""
    check_port(host, port)
    Server(server_config(app, host, port, limits, tls=tls, **options), limits).run()
