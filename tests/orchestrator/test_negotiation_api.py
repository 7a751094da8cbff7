"""POST /negotiations over real HTTP on loopback, with negotiators served as real A2A agents: the run is recorded
(kind "negotiation"), its steps stream over SSE, bad specs are refused with 4xx, scopes are enforced, the CLI
lists and starts negotiations, and (PostgreSQL) a second replica sees the negotiation run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from agents.negotiators import Negotiator, Preferences, negotiator_agent
from agents.testing import serve_in_thread
from orchestrator.api import create_app
from orchestrator.cli import main
from orchestrator.client import OrchestratorClient, OrchestratorError
from orchestrator.negotiation import NegotiationRuns, alternating_offers, serve_parties
from orchestrator.service import Orchestrator
from protocol.auth import AuthSettings, SigningKey
from registry import Registry
from tests.orchestrator.conftest import Platform, worker

pytestmark = pytest.mark.anyio

ISSUES = [
    {"name": "price", "values": [80, 90, 100, 110, 120]},
    {"name": "day", "values": [1, 2, 3, 4, 5]},
]
BUYER = Preferences(weights={"price": 0.7, "day": 0.3}, increasing={"price": False, "day": False}, reservation=0.2)
SELLER = Preferences(weights={"price": 0.8, "day": 0.2}, reservation=0.2)


def alternating(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "protocol": "alternating",
        "item": "motor",
        "parties": [{"agent_id": "buyer", "role": "buyer"}, {"agent_id": "seller", "role": "seller"}],
        "issues": ISSUES,
        "max_rounds": 8,
    }
    spec.update(changes)
    return spec


def add_negotiators(p: Platform) -> dict[str, str]:
    """A buyer, a seller and a plain worker, served over HTTP and registered; their registry ids by name."""
    records = [
        p.add(negotiator_agent("buyer", Negotiator(BUYER, "linear"))),
        p.add(negotiator_agent("seller", Negotiator(SELLER, "conceder"))),
        p.add(worker("w1")),
    ]
    return {r.name: r.id for r in records}


@pytest.fixture
def http_platform(db_url: str) -> Iterator[Platform]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        registry = stack.enter_context(Registry(db_url))
        yield Platform("http", registry, db_url, stack)


async def test_a_negotiation_started_over_http_is_a_run_streamed_over_sse(http_platform: Platform) -> None:
    ids = add_negotiators(http_platform)
    spec = alternating(parties=[{"agent_id": ids["buyer"], "role": "buyer"}, {"agent_id": "seller", "role": "seller"}])
    with serve_in_thread(create_app(http_platform.orchestrator())) as base:
        async with OrchestratorClient(base) as client:
            with anyio.fail_after(60):
                run_id = await client.start_negotiation(spec)
                events = [e async for e in client.events(run_id)]
                record = await client.get_run(run_id)
                listed = await client.list_runs(kind="negotiation")
                graphs = await client.list_runs(kind="graph")
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["run.created", "run.started", "negotiation.started"]
    assert kinds[-2:] == ["negotiation.ended", "run.succeeded"] and "negotiation.offer" in kinds
    started = events[2]["data"]
    assert started["parties"] == [
        {"name": "buyer", "agent_id": ids["buyer"], "role": "buyer"},
        {"name": "seller", "agent_id": ids["seller"], "role": "seller"},
    ]
    assert started["max_rounds"] == 8 and started["issues"][0]["name"] == "price"
    offers = [e["data"] for e in events if e["kind"] == "negotiation.offer"]
    assert offers[0]["sender"] == "buyer" and offers[0]["utilities"] == {}  # private preferences stay private
    ended = events[-2]["data"]
    assert ended["outcome"] == "agreement" and ended["parties_order"] == ["buyer", "seller"]
    assert record["kind"] == "negotiation" and record["status"] == "succeeded" and record["output"] == ended
    assert record["spec"]["protocol"] == "alternating" and record["usage"]["attempts"] == len(offers) + 1
    assert [r["id"] for r in listed] == [run_id] and graphs == []


async def test_contract_net_and_auction_specs_run(http_platform: Platform) -> None:
    from agents.negotiators import Carrier, CarrierProfile, carrier_agent

    p = http_platform
    sellers = {
        n: p.add(negotiator_agent(n, Negotiator({"motor": SELLER}, "boulware"), items=["motor"])).id
        for n in ("s1", "s2")
    }
    carriers = [p.add(carrier_agent(n, Carrier(CarrierProfile(trucks=2, truck_capacity=100)))).id for n in "xy"]
    cnet = {
        "protocol": "contract_net",
        "item": "motor",
        "parties": [{"agent_id": i, "role": "bidder"} for i in sellers.values()],
        "issues": ISSUES,
        "deadline_s": 10,
        "contract_net": {"buyer": "factory", "quantity": 5, "due_day": 9, "preferences": BUYER.model_dump()},
    }
    auction = {
        "protocol": "auction",
        "item": "motor",
        "parties": [{"agent_id": i, "role": "bidder"} for i in carriers],
        "deadline_s": 10,
        "auction": {"origin": "s1", "destination": "factory", "quantity": 5, "earliest_day": 1, "latest_day": 9},
    }
    with serve_in_thread(create_app(p.orchestrator())) as base:
        async with OrchestratorClient(base) as client:
            with anyio.fail_after(60):
                records = [await client.wait(await client.start_negotiation(s)) for s in (cnet, auction)]
    for record in records:
        assert record["status"] == "succeeded", record["error"]
        assert record["output"]["outcome"] == "awarded"
    assert records[0]["output"]["parties_order"][0] == "factory"
    assert records[1]["output"]["agreement"]["quantity"] == 5.0


async def test_bad_negotiations_are_refused_with_the_reason(http_platform: Platform) -> None:
    add_negotiators(http_platform)
    cases = [
        (alternating(protocol="haggle"), 400, "InvalidRequest", "protocol"),
        (alternating(parties=[{"agent_id": "buyer", "role": "buyer"}]), 400, "InvalidRequest", "exactly two parties"),
        (alternating(issues=[{"name": "price", "values": [3, 2]}]), 400, "InvalidRequest", "strictly increasing"),
        (alternating(max_rounds=0), 400, "InvalidRequest", "max_rounds"),
        (alternating(surprise=1), 400, "InvalidRequest", "surprise"),
        (alternating(parties=[{"agent_id": "x" * 300, "role": "buyer"}] * 2), 400, "InvalidRequest", "agent_id"),
        (
            alternating(parties=[{"agent_id": "buyer", "role": "buyer"}, {"agent_id": "ghost", "role": "seller"}]),
            400,
            "InvalidParty",
            "no agent 'ghost' in the registry",
        ),
        (
            alternating(parties=[{"agent_id": "buyer", "role": "buyer"}, {"agent_id": "w1", "role": "seller"}]),
            400,
            "InvalidParty",
            "does not serve respond",
        ),
        (
            {"protocol": "auction", "item": "m", "parties": [{"agent_id": "buyer", "role": "bidder"}]},
            400,
            "",
            "auction",
        ),
    ]
    with serve_in_thread(create_app(http_platform.orchestrator())) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            with anyio.fail_after(60):
                for spec, status, kind, words in cases:
                    response = await http.post("/negotiations", json=spec)
                    error = response.json()["error"]
                    assert response.status_code == status, (spec, response.text)
                    assert kind in error["type"] and words in error["message"], (spec, error)
                not_json = await http.post(
                    "/negotiations", content=b"[1]", headers={"Content-Type": "application/json"}
                )
                as_text = await http.post("/negotiations", content=b"{}", headers={"Content-Type": "text/plain"})
                runs = (await http.get("/runs")).json()["runs"]
    assert not_json.status_code == 400 and as_text.status_code == 415
    assert runs == []  # nothing refused was stored


async def test_starting_a_negotiation_needs_runs_submit(http_platform: Platform, tmp_path: Path) -> None:
    add_negotiators(http_platform)
    key = SigningKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk()]}))

    def token(*scopes: str, sub: str = "alice") -> str:
        return key.token(sub, list(scopes), issuer="test", audience="orch", ttl_s=600)

    app = create_app(http_platform.orchestrator(), auth=AuthSettings(jwks_file=jwks, audience="orch"))
    with serve_in_thread(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            with anyio.fail_after(60):
                anonymous = await http.post("/negotiations", json=alternating())
                reader = await http.post("/negotiations", json=alternating(), headers=_bearer(token("runs:read")))
                async with OrchestratorClient(base, token=token("runs:submit", "runs:read")) as alice:
                    run_id = await alice.start_negotiation(alternating())
                    record = await alice.wait(run_id)
                async with OrchestratorClient(base, token=token("runs:read", sub="bob")) as bob:
                    with pytest.raises(OrchestratorError, match="404"):
                        await bob.get_run(run_id)
                    assert await bob.list_runs(kind="negotiation") == []
    assert anonymous.status_code == 401 and reader.status_code == 403
    assert "runs:submit" in reader.json()["error"]["message"]
    assert record["owner"] == "user:alice" and record["status"] == "succeeded"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_cli_negotiate_and_list_negotiations(
    http_platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_negotiators(http_platform)
    spec = tmp_path / "negotiation.json"
    spec.write_text(json.dumps(alternating()))
    with serve_in_thread(create_app(http_platform.orchestrator())) as base:
        code = await anyio.to_thread.run_sync(main, ["negotiate", str(spec), "--url", base])
        printed = capsys.readouterr().out
        listed = await anyio.to_thread.run_sync(main, ["runs", "list", "--kind", "negotiation", "--url", base])
        listing = capsys.readouterr().out
        graphs = await anyio.to_thread.run_sync(main, ["runs", "list", "--kind", "graph", "--url", base])
        no_graphs = capsys.readouterr().out
    assert code == 0 and listed == 0 and graphs == 0
    assert "negotiation.offer" in printed and "round 1 buyer -> seller" in printed
    assert '"outcome": "agreement"' in printed
    run_id = printed.split()[2]
    assert run_id in listing and "negotiation" in listing and no_graphs == ""


@pytest.mark.postgres
async def test_a_negotiation_run_is_visible_from_a_second_replica(pg_url: str) -> None:
    agents = [negotiator_agent("buyer", Negotiator(BUYER, "linear")), negotiator_agent("seller", Negotiator(SELLER))]
    from protocol.negotiation import Issue

    issues = [Issue.model_validate(i) for i in ISSUES]
    with Registry(pg_url) as registry:
        first = Orchestrator(registry, pg_url, replica_id="first", lease_s=2, poll_s=0.2)
        second = Orchestrator(registry, pg_url, replica_id="second", lease_s=2, poll_s=0.2)
        try:
            with anyio.fail_after(60):
                async with first.running(), second.running(), serve_parties(agents, "http") as p:
                    async with NegotiationRuns(first).recording("pg negotiation", protocol="alternating") as rec:
                        seen = await second.get_run(rec.run_id)
                        await alternating_offers(p["buyer"], p["seller"], issues, recorder=rec)
                    streamed = [e["kind"] async for e in second.events(rec.run_id)]
                    record = await second.wait(rec.run_id)
                    listed = await second.list_runs(kind="negotiation")
        finally:
            first.store.close()
            second.store.close()
    assert seen["kind"] == "negotiation" and seen["status"] == "running" and seen["lease_owner"] == "first"
    assert streamed[2] == "negotiation.started" and streamed[-2:] == ["negotiation.ended", "run.succeeded"]
    assert record["status"] == "succeeded" and record["output"]["outcome"] == "agreement"
    assert [r["id"] for r in listed] == [rec.run_id]
