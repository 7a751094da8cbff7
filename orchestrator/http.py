"""The orchestrator's HTTP client: one keep-alive pool whose requests leave in one TCP segment.

httpx writes a request's head and body with separate socket writes; with TCP_NODELAY on loopback that is two
segments, two wake-ups of the server and one more system call per call. ``CoalescingTransport`` holds writes
until the request is complete (the first read) or 64 KiB are pending, then sends them with one write.

With an ``EgressPolicy``, ``protocol.egress`` sits in front of the coalescing backend: every host is resolved and
checked before a connection is made, and the connection goes to the address that was checked.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import httpx

from protocol.egress import EgressPolicy, guard_transport

__all__ = ["CoalescingTransport", "MAX_PENDING_BYTES", "http_client"]

MAX_PENDING_BYTES = 64 * 1024


class _CoalescingStream(httpcore.AsyncNetworkStream):
    """A network stream that gathers writes and sends them at the next read (or when 64 KiB are pending)."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._size = 0
        self._timeout: float | None = None

    async def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            await self._stream.write(data, timeout=self._timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 - httpcore API
        if not buffer:
            return
        self._pending.append(buffer)
        self._size += len(buffer)
        self._timeout = timeout
        if self._size >= MAX_PENDING_BYTES:
            await self._flush()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - httpcore API
        await self._flush()
        return await self._stream.read(max_bytes, timeout=timeout)

    async def aclose(self) -> None:
        self._pending.clear()
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore API
    ) -> httpcore.AsyncNetworkStream:
        await self._flush()
        return await self._stream.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _CoalescingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _CoalescingStream(await self._backend.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _CoalescingStream(await self._backend.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class CoalescingTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections send each request with one write (same options)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pool = getattr(self, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(pool, httpcore.AsyncConnectionPool) and isinstance(backend, httpcore.AsyncNetworkBackend):
            pool._network_backend = _CoalescingBackend(backend)  # otherwise: plain httpx behaviour


def http_client(
    *,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    max_connections: int = 256,
    egress: EgressPolicy | None = None,
    verify: ssl.SSLContext | bool = True,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """A shared ``httpx.AsyncClient`` with keep-alive (up to 64 idle connections) and coalesced request writes;
    with ``egress`` every connection is checked against that policy first; ``verify`` checks servers'
    certificates (a context trusting a CA file, or the system's store); ``auth`` signs every request.
    Redirects are never followed (so no credential follows one)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=64)
    transport = CoalescingTransport(limits=limits, verify=verify)
    if egress is not None:
        guard_transport(transport, egress)
    return httpx.AsyncClient(
        timeout=timeout_s, headers=headers, limits=limits, transport=transport, follow_redirects=False, auth=auth
    )
