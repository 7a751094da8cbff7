"""Outbound fetches: refused addresses never see a connection attempt (a recording backend proves it)."""

from __future__ import annotations

from typing import Any

import httpcore
import httpx
import pytest

from protocol.egress import EgressPolicy, guarded_client, guarded_mcp_client

pytestmark = pytest.mark.anyio


class RecordingBackend:
    """Records every connection attempt and makes none."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, **_: Any) -> Any:
        self.attempts.append((host, port))
        raise httpcore.ConnectError("recording backend: no real connection in tests")

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - not reached
        pass


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata: link-local
        "http://[fe80::1]/",
        "http://0.0.0.0:8000/",
        "http://224.0.0.1/",
        "http://10.1.2.3/",
        "http://192.168.1.1/",
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
        "http://[fd00::1]/",
    ],
)
async def test_refused_addresses_are_never_connected(url: str) -> None:
    recorder = RecordingBackend()
    async with guarded_client(EgressPolicy(), inner=recorder) as client:
        with pytest.raises(httpx.ConnectError, match="egress refused"):
            await client.get(url)
    assert recorder.attempts == []


async def test_loopback_refused_unless_allowed() -> None:
    recorder = RecordingBackend()
    async with guarded_client(EgressPolicy(allow_loopback=False), inner=recorder) as client:
        with pytest.raises(httpx.ConnectError, match="loopback"):
            await client.get("http://localhost:9/")
    assert recorder.attempts == []


async def test_allowed_range_connects_to_the_checked_address() -> None:
    recorder = RecordingBackend()
    policy = EgressPolicy.for_bind("0.0.0.0", ["10.0.0.0/8"])
    assert not policy.allow_loopback
    async with guarded_client(policy, inner=recorder) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://10.1.2.3:8080/")
    assert recorder.attempts == [("10.1.2.3", 8080)]
    assert policy.refusal("169.254.1.1") is not None  # link-local stays refused whatever is allowed


async def test_mcp_client_is_guarded_too() -> None:
    import httpx2  # type: ignore[import-not-found]

    recorder = RecordingBackend()
    async with guarded_mcp_client(EgressPolicy(), inner=recorder) as client:  # httpcore2 errors map the same way
        with pytest.raises(httpx2.ConnectError, match="egress refused"):
            await client.get("http://169.254.169.254/mcp")
    assert recorder.attempts == []
