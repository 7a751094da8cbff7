"""Test support as public API: serve an ASGI app on loopback, and a guard that forbids non-loopback network."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from protocol.serving import Server, ServerLimits, TlsFiles, server_config

__all__ = ["free_port", "serve_in_thread", "no_network", "NetworkBlocked"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(
    app: Any,
    port: int | None = None,
    *,
    startup_timeout: float = 20.0,
    limits: ServerLimits | None = None,
    tls: TlsFiles | None = None,
) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 in a daemon thread, as the ``serve`` commands do; yields its base URL
    (``https://`` with ``tls``)."""
    port = port or free_port()
    server = Server(server_config(app, "127.0.0.1", port, limits, tls=tls, lifespan="on"), limits)
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start within {startup_timeout} s")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class NetworkBlocked(RuntimeError):
    """Raised by ``no_network`` when code tries to reach a host other than loopback."""


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@contextmanager
def no_network() -> Iterator[None]:
    """Forbid connections to anything but loopback while the block runs (tests stay offline and honest)."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOOPBACK:
            raise NetworkBlocked(f"network access to {address!r} is blocked in this test")
        return original(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.connect = original  # type: ignore[method-assign,assignment]
