"""HTTP API and its async client over a real loopback server, on both databases."""

from __future__ import annotations

import anyio
import pytest

from agents.examples import echo_agent
from agents.serve import create_app as agent_app
from agents.testing import free_port, serve_in_thread
from registry import (
    AgentNotFound,
    CardFetchError,
    CostHints,
    HealthStatus,
    InvalidQuery,
    InvalidRequest,
    ModelInfo,
    NameConflict,
    Registry,
    RegistryUnavailable,
)
from registry.api import create_app
from registry.client import RegistryClient


@pytest.mark.anyio
async def test_client_round_trip(registry: Registry, card) -> None:
    port = free_port()
    with (
        serve_in_thread(create_app(registry)) as api,
        serve_in_thread(agent_app(echo_agent("echo"), f"http://127.0.0.1:{port}"), port) as agent_base,
    ):
        async with RegistryClient(api) as client:
            with anyio.fail_after(60):
                by_url = await client.register_url(agent_base, cost=CostHints(per_call=0.1))
                assert by_url.name == "echo" and by_url.cost.per_call == 0.1
                model = ModelInfo(name="gemma3-270m", parameters=270_000_000)
                rec = await client.register_card(
                    card("reader", skills=[("parse_invoice", ["finance"])]),
                    model=model,
                    skill_schemas={"parse_invoice": ({"type": "object"}, {"type": "object"})},
                    agent_id="reader-1",
                )
                assert rec.id == "reader-1" and rec.model == model
                assert rec.skills[0].input_schema == {"type": "object"}
                assert {r.name for r in await client.list()} == {"echo", "reader"}
                assert (await client.get("reader")).id == "reader-1"
                assert [r.id for r in await client.search(tags=["finance"])] == ["reader-1"]
                assert [r.id for r in await client.search(text="invoice")] == ["reader-1"]
                assert [r.id for r in await client.search(skill="echo", max_cost=1)] == [by_url.id]
                await client.record_call("reader-1", success=True, latency_s=0.25, tokens=7)
                with pytest.raises(InvalidRequest, match="latency_s"):
                    await client.record_call("reader-1", success=True, latency_s=-1)
                stats = (await client.get("reader-1")).stats
                assert (stats.calls, stats.tokens, stats.latency_p50_ms) == (1, 7, 250.0)
                await client.set_status("reader-1", HealthStatus.DRAINING)
                assert await client.search(tags=["finance"]) == []
                assert len(await client.search(tags=["finance"], status=None)) == 1
                await client.heartbeat("reader-1")
                await client.register_card(
                    card("reader", version="2", skills=[("parse_invoice", [])]), agent_id="reader-1"
                )
                assert [v.version for v in await client.history("reader-1")] == ["1.0.0", "2"]
                with pytest.raises(NameConflict, match="already registered"):
                    await client.register_card(card("reader"), agent_id="other")
                with pytest.raises(CardFetchError):
                    await client.register_url(f"http://127.0.0.1:{free_port()}/", fetch_timeout_s=2)
                with pytest.raises(InvalidQuery):
                    await client.search(limit=5000)
                await client.deregister("reader-1")
                with pytest.raises(AgentNotFound):
                    await client.get("reader-1")
                assert [r.name for r in await client.list()] == ["echo"]


@pytest.mark.anyio
async def test_bad_requests_and_unreachable_server(db_url: str) -> None:
    import httpx

    with serve_in_thread(create_app(db_url)) as api, anyio.fail_after(30):
        async with httpx.AsyncClient() as http:
            resp = await http.post(f"{api}/agents", json={"card": {"name": ""}})
            assert resp.status_code == 422 and resp.json()["error"]["type"] == "InvalidRequest"
            assert "\n" not in resp.json()["error"]["message"]
            resp = await http.post(f"{api}/agents/register-mcp", json={"url": "stdio:rm -rf /"})
            assert resp.status_code == 422  # commands are never run on behalf of HTTP callers
            resp = await http.get(f"{api}/search", params={"q": '"foo" OR * NEAR(', "status": "any"})
            assert resp.status_code == 200 and resp.json() == []
            resp = await http.get(f"{api}/search", params={"status": "sleepy"})
            assert resp.status_code == 422
            assert (await http.get(f"{api}/healthz")).json() == {"ok": True, "agents": 0}
    async with RegistryClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(RegistryUnavailable, match="is `scaleout registry serve` running"):
            await client.list()
