"""Health sweep against real loopback agents: failures mark unhealthy after N, recovery, version updates."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from agents.examples import echo_agent
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from protocol.auth import AuthSettings, SigningKey
from registry import HealthStatus, Registration, Registry
from registry.discovery import register_url
from registry.health import HealthChecker


@pytest.mark.anyio
async def test_sweep_marks_unhealthy_then_recovers(registry: Registry, card) -> None:
    port = free_port()
    app = create_app(echo_agent("echo"), f"http://127.0.0.1:{port}")
    checker = HealthChecker(registry, failures_to_unhealthy=2, timeout=2)
    with anyio.fail_after(60):
        with serve_in_thread(app, port) as base:
            rec = await register_url(registry, base)
            local = registry.register_card(card("inproc"), transport="local")
            report = await checker.sweep()
            assert report.ok == [rec.id] and report.skipped == [local.id]
        # server gone: one failure keeps it healthy, the second marks it
        report = await checker.sweep()
        assert report.failed == [rec.id] and registry.get(rec.id).status is HealthStatus.HEALTHY
        report = await checker.sweep()
        assert report.unhealthy == [rec.id] and registry.get(rec.id).status is HealthStatus.UNHEALTHY
        assert registry.search(skill="echo") == [registry.get(local.id)]
        with serve_in_thread(app, port):
            await checker.sweep()
        assert registry.get(rec.id).status is HealthStatus.HEALTHY
        assert registry.get(rec.id).consecutive_failures == 0


@pytest.mark.anyio
async def test_sweep_updates_changed_card_and_checks_heartbeat_age(registry: Registry, card) -> None:
    port = free_port()
    agent = echo_agent("echo")
    with anyio.fail_after(60):
        with serve_in_thread(create_app(agent, f"http://127.0.0.1:{port}"), port) as base:
            rec = await register_url(registry, base)
        agent.version = "9.9.9"
        with serve_in_thread(create_app(agent, f"http://127.0.0.1:{port}"), port):
            report = await HealthChecker(registry).sweep()
        assert report.updated == [rec.id]
        assert [v.version for v in registry.history(rec.id)] == [rec.version, "9.9.9"]
        local = registry.register_card(card("inproc"), transport="local")
        strict = HealthChecker(registry, failures_to_unhealthy=1, stale_after=timedelta(0))
        report = await strict.sweep()
        assert local.id in report.unhealthy
        registry.heartbeat(local.id)
        assert registry.get(local.id).status is HealthStatus.HEALTHY


@pytest.mark.anyio
async def test_sweep_probes_mcp_servers_over_http(registry: Registry) -> None:
    from mcp.server.mcpserver import MCPServer

    from registry.discovery import register_mcp

    server = MCPServer("calc", version="0.3.0")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    checker = HealthChecker(registry, failures_to_unhealthy=1, timeout=10)
    with anyio.fail_after(60):
        with serve_in_thread(server.streamable_http_app()) as base:
            rec = await register_mcp(registry, f"{base}/mcp")
            report = await checker.sweep()
            assert report.ok == [rec.id], report.reasons  # ping is gone from MCP: the probe lists tools
        report = await checker.sweep()
    assert report.unhealthy == [rec.id] and "does not answer" in report.reasons[rec.id]


@pytest.mark.anyio
async def test_an_mcp_server_that_asks_for_a_token_is_up(registry: Registry, tmp_path: Path) -> None:
    """The registry holds no token for an authenticated MCP agent: its 401 still proves it answers."""
    key = SigningKey.generate()
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.jwk()]}))
    app = create_app(echo_agent("guarded"), auth=AuthSettings(jwks_file=tmp_path / "jwks.json"))
    checker = HealthChecker(registry, failures_to_unhealthy=1, timeout=10)
    with anyio.fail_after(60):
        with serve_in_thread(app) as base:
            card = echo_agent("guarded").card(f"{base}/")
            rec = registry.register(Registration(card=card, transport="mcp", url=f"mcp+{base}/mcp"))
            report = await checker.sweep()
            assert report.ok == [rec.id], report.reasons
        report = await checker.sweep()  # and once it is gone, it is down
    assert report.unhealthy == [rec.id] and "does not answer" in report.reasons[rec.id]
