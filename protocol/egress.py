"""Outbound connections to addresses that came from the network: resolved, checked, then connected by address.

Every fetch of a URL a caller supplied (card discovery, MCP discovery, the health sweep, calls to registered
agents) goes through a ``GuardedBackend``: it resolves the host once, refuses link-local, unspecified and multicast
addresses always, loopback unless the policy allows it, and every other non-global address (private ranges)
unless a configured CIDR covers it; then it connects to the address it checked, so a DNS answer that changes
between check and connect (rebinding) cannot slip through. A refusal is a connect error naming the address and
the setting that would allow it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork

from protocol.hosts import loopback_host

__all__ = ["EgressPolicy", "EgressRefused", "GuardedBackend", "guard_transport", "guarded_client", "guarded_mcp_client"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRefused(Exception):
    """A connection this policy does not allow (the message names the address and how to allow it)."""


class EgressPolicy(BaseModel):
    """Which addresses outbound fetches may reach. ``for_bind`` follows the server's own bind address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: tuple[IPvAnyNetwork, ...] = Field(default=(), description="extra ranges allowed (private networks)")
    allow_loopback: bool = Field(default=True, description="127.0.0.0/8 and ::1 allowed")

    @classmethod
    def for_bind(cls, host: str, allow: Iterable[str] = ()) -> EgressPolicy:
        """A server's policy: loopback allowed only when the server itself is bound to loopback."""
        return cls(
            allow=tuple(ipaddress.ip_network(c, strict=False) for c in allow), allow_loopback=loopback_host(host)
        )

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why ``address`` may not be reached, or None when it may."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_link_local or ip.is_unspecified or ip.is_multicast:
            return f"{ip} is link-local, unspecified or multicast, which is never fetched"
        if ip.is_loopback:
            if self.allow_loopback or self._covered(ip):
                return None
            return f"{ip} is loopback; allow it with --allow-fetch 127.0.0.0/8 (or bind the server to loopback)"
        if not ip.is_global and not self._covered(ip):
            return f"{ip} is a private or reserved address; allow its range with --allow-fetch CIDR"
        return None

    def _covered(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow)

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host:port``; raises EgressRefused when any address is refused."""
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise EgressRefused(f"cannot resolve {host!r}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                raise EgressRefused(f"refused to connect to {host}:{port}: {reason}")
        if not addresses:
            raise EgressRefused(f"{host!r} resolves to no address")
        return addresses[0]


class GuardedBackend:
    """An httpcore (or httpcore2) network backend that checks every address before ``inner`` connects to it."""

    def __init__(self, policy: EgressPolicy, inner: Any, connect_error: type[Exception]) -> None:
        self.policy = policy
        self.inner = inner
        self._connect_error = connect_error

    async def connect_tcp(self, host: str, port: int, **options: Any) -> Any:
        try:
            address = await self.policy.resolve(host, port)
        except EgressRefused as exc:
            raise self._connect_error(f"egress refused: {exc}") from None
        return await self.inner.connect_tcp(address, port, **options)

    async def connect_unix_socket(self, path: str, **options: Any) -> Any:
        raise self._connect_error("egress refused: unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guard_transport(transport: Any, policy: EgressPolicy, inner: Any = None) -> Any:
    """Put ``policy`` in front of an httpx (or httpx2) transport's connections; returns the transport.

    ``inner`` replaces the real network backend (tests pass one that records connection attempts).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if pool is None or backend is None:
        raise TypeError(f"cannot guard {type(transport).__name__}: it has no connection pool with a network backend")
    connect_error = _connect_error_for(type(pool).__module__)
    pool._network_backend = GuardedBackend(policy, inner if inner is not None else backend, connect_error)
    return transport


def _connect_error_for(module: str) -> type[Exception]:
    if module.startswith("httpcore2"):
        import httpcore2  # type: ignore[import-not-found]

        return httpcore2.ConnectError  # type: ignore[no-any-return]
    import httpcore

    return httpcore.ConnectError


def guarded_client(
    policy: EgressPolicy, *, timeout_s: float = 10.0, inner: Any = None, **options: Any
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that never follows redirects and connects only where ``policy`` allows."""
    transport = guard_transport(httpx.AsyncHTTPTransport(), policy, inner)
    return httpx.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=False, **options)


def guarded_mcp_client(policy: EgressPolicy, *, timeout_s: float = 20.0, inner: Any = None) -> Any:
    """The same guard for the MCP SDK's HTTP client (``httpx2``): pass it to ``streamable_http_client``."""
    import httpx2  # type: ignore[import-not-found]

    transport = guard_transport(httpx2.AsyncHTTPTransport(), policy, inner)
    return httpx2.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=False)
