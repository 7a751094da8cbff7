"""Every protocol reports its steps to a recorder with exactly the fields of the negotiation-runs contract, and
``NegotiationRuns`` records them as orchestrator runs of kind "negotiation" (events, output, listing, cancel,
takeover of a dead replica's negotiation)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from agents.agent import Agent, SkillContext
from agents.negotiators import LinearUtility, Negotiator, Preferences, negotiator_agent
from orchestrator.negotiation import (
    EventLog,
    NegotiationRecorder,
    NegotiationRuns,
    Party,
    alternating_offers,
    analyse,
    contract_net,
    one_to_many,
    sealed_bid_auction,
    serve_parties,
)
from orchestrator.negotiation.runs import INTERRUPTED, STOPPED
from orchestrator.runs import now
from orchestrator.service import Orchestrator
from protocol.negotiation import (
    Action,
    AuctionCall,
    Award,
    AwardReply,
    Bid,
    CallForProposals,
    Issue,
    Offer,
    Proposal,
    RespondRequest,
    Response,
)
from registry import Registry

pytestmark = pytest.mark.anyio

STARTED_KEYS = {"protocol", "parties", "issues", "max_rounds", "deadline_s"}
OFFER_KEYS = {"round", "sender", "receiver", "offer", "utilities", "move", "overruled", "reason", "response"}
BID_KEYS = {"round", "bidder", "item", "bid", "price", "valid", "reason"}
AWARD_KEYS = {"item", "winner", "price", "contract"}
ENDED_KEYS = {"outcome", "agreement", "utilities", "rounds", "pareto", "nash", "parties_order", "reason"}


def scripted(name: str, moves: list[Response]) -> Agent:
    """A negotiator that replays fixed moves (``source`` included, as a guided negotiator reports it)."""
    agent = Agent(name, "scripted negotiator")
    queue = list(moves)

    @agent.skill()
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        return queue.pop(0)

    return agent


def counter(source: str, **values: float) -> Response:
    return Response(action=Action.COUNTER, offer=Offer(values=values), source=source, reason=f"{source} move")


async def test_alternating_offers_steps_with_pareto_and_nash(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    agents = [
        negotiator_agent("buyer", Negotiator(buyer_prefs, "linear")),
        negotiator_agent("seller", Negotiator(seller_prefs, "conceder")),
    ]
    utilities = (LinearUtility(buyer_prefs, issues), LinearUtility(seller_prefs, issues))
    log = EventLog()
    with anyio.fail_after(30):
        async with serve_parties(agents) as p:
            outcome = await alternating_offers(
                p["buyer"], p["seller"], issues, max_rounds=10, utilities=utilities, recorder=log
            )
    kinds = log.kinds()
    assert kinds[0] == "negotiation.started" and kinds[-1] == "negotiation.ended"
    assert set(kinds[1:-1]) == {"negotiation.offer"} and len(kinds) - 2 == len(outcome.history)
    started = log.of("negotiation.started")[0]
    assert set(started) == STARTED_KEYS
    assert started["protocol"] == "alternating" and started["max_rounds"] == 10 and started["deadline_s"] is None
    assert started["parties"] == [
        {"name": "buyer", "agent_id": None, "role": "first"},
        {"name": "seller", "agent_id": None, "role": "second"},
    ]
    assert started["issues"][0] == {"name": "price", "values": [80.0, 90.0, 100.0, 110.0, 120.0], "unit": ""}
    offers = log.of("negotiation.offer")
    for step, record in zip(offers, outcome.history, strict=True):
        assert set(step) == OFFER_KEYS
        assert (step["sender"], step["round"], step["offer"]) == (record.sender, record.round, record.offer.values)
        assert step["receiver"] == ("seller" if step["sender"] == "buyer" else "buyer")
        assert step["utilities"] == {
            "buyer": round(utilities[0](record.offer), 4),
            "seller": round(utilities[1](record.offer), 4),
        }
        assert (step["move"], step["overruled"]) == ("strategy", False)
    assert [s["response"] for s in offers] == ["counter"] * (len(offers) - 1) + ["accept"]
    ended = log.of("negotiation.ended")[0]
    assert set(ended) == ENDED_KEYS
    assert outcome.agreement is not None
    assert ended["outcome"] == "agreement" and ended["agreement"] == outcome.agreement.values
    assert ended["parties_order"] == ["buyer", "seller"] and ended["rounds"] == outcome.rounds
    assert ended["utilities"] == {n: round(u, 4) for n, u in outcome.utilities.items()}
    analysis = analyse(outcome.agreement, issues, *utilities)
    assert len(ended["pareto"]) == len(analysis.frontier) > 0
    assert all(len(point) == 2 for point in ended["pareto"])
    assert analysis.nash is not None and analysis.nash_offer is not None
    assert ended["nash"] == {
        "offer": analysis.nash_offer.values,
        "utilities": {"buyer": round(analysis.nash[0], 4), "seller": round(analysis.nash[1], 4)},
    }
    assert utilities[0](analysis.nash_offer) == pytest.approx(analysis.nash[0])


async def test_moves_are_marked_model_strategy_fallback_and_overruled(issues: list[Issue]) -> None:
    a = scripted(
        "a",
        [counter("model", price=80, quantity=100, day=1), counter("guardrail", price=90, quantity=100, day=1)],
    )
    b = scripted(
        "b",
        [
            counter("fallback", price=120, quantity=120, day=5),
            Response(action=Action.WALK_AWAY, reason="enough", source="strategy"),
        ],
    )
    log = EventLog()
    async with serve_parties([a, b]) as p:
        outcome = await alternating_offers(p["a"], p["b"], issues, max_rounds=5, recorder=log)
    assert outcome.reason == "b walked away: enough"
    offers = log.of("negotiation.offer")
    assert [(s["move"], s["overruled"], s["response"]) for s in offers] == [
        ("model", False, "counter"),
        ("fallback", False, "counter"),
        ("strategy", True, "reject"),
    ]
    assert offers[0]["reason"] == "model move" and offers[0]["utilities"] == {}
    ended = log.of("negotiation.ended")[0]
    assert ended["outcome"] == "no_agreement" and ended["pareto"] == [] and ended["nash"] is None


async def test_a_deadline_ends_the_negotiation_and_its_last_offer_has_no_response(issues: list[Issue]) -> None:
    agent = Agent("slow", "answers late")

    @agent.skill()
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        await anyio.sleep(5)
        return counter("strategy", price=120, quantity=120, day=5)

    fast = scripted("fast", [counter("strategy", price=80, quantity=100, day=1)])
    log = EventLog()
    with anyio.fail_after(4):
        async with serve_parties([fast, agent]) as p:
            outcome = await alternating_offers(p["fast"], p["slow"], issues, deadline_s=0.3, recorder=log)
    assert outcome.reason.startswith("deadline: the negotiation passed its deadline of 0.3 s")
    assert log.kinds() == ["negotiation.started", "negotiation.offer", "negotiation.ended"]
    assert log.of("negotiation.offer")[0]["response"] is None
    assert log.of("negotiation.started")[0]["deadline_s"] == 0.3
    assert log.of("negotiation.ended")[0]["outcome"] == "no_agreement"


def bidder(name: str, price: float | None, *, wrong_id: bool = False) -> Agent:
    agent = Agent(name, "test bidder")

    @agent.skill()
    async def propose(ctx: SkillContext, cfp: CallForProposals) -> Proposal:
        offer = None if price is None else Offer(values={"price": price, "day": 1.0})
        return Proposal(cfp_id="other" if wrong_id else cfp.cfp_id, bidder=name, offer=offer, reason="busy")

    @agent.skill()
    async def award(ctx: SkillContext, req: Award) -> AwardReply:
        return AwardReply(cfp_id=req.cfp_id, bidder=name, confirmed=req.accepted)

    return agent


async def test_contract_net_steps() -> None:
    issues = [Issue(name="price", values=[10.0, 20.0, 30.0]), Issue(name="day", values=[1.0, 2.0])]
    cfp = CallForProposals(
        cfp_id="cfp-1", buyer="buyer", item="motor", quantity=10, due_day=9, issues=issues, deadline_s=5
    )
    agents = [bidder("a", 20.0), bidder("b", 10.0), bidder("c", None), bidder("d", 10.0, wrong_id=True)]
    log = EventLog()
    async with serve_parties(agents) as p:
        bidders = [Party(n, client=p[n].client, agent_id=f"id-{n}") for n in "abcd"]
        result = await contract_net(
            cfp, bidders, lambda pr: -pr.offer.values["price"] if pr.offer else -1, recorder=log
        )
    assert [p.bidder for p in result.awarded] == ["b"]
    assert log.kinds() == ["negotiation.started"] + ["negotiation.bid"] * 4 + ["negotiation.award", "negotiation.ended"]
    started = log.of("negotiation.started")[0]
    assert started["protocol"] == "contract_net" and started["deadline_s"] == 5 and started["max_rounds"] is None
    assert started["parties"][0] == {"name": "buyer", "agent_id": None, "role": "buyer"}
    assert started["parties"][1] == {"name": "a", "agent_id": "id-a", "role": "bidder"}
    bids = log.of("negotiation.bid")
    assert all(set(b) == BID_KEYS for b in bids)
    assert [(b["bidder"], b["valid"], b["price"]) for b in bids] == [
        ("a", True, 20.0),
        ("b", True, 10.0),
        ("c", False, None),
        ("d", False, None),
    ]
    assert bids[0]["bid"] == {
        "cfpId": "cfp-1",
        "bidder": "a",
        "offer": {"values": {"price": 20.0, "day": 1.0}},
        "reason": "busy",
    }
    assert bids[2]["reason"] == "refused: busy" and bids[3]["reason"].startswith("invalid: proposal for cfp 'other'")
    award = log.of("negotiation.award")[0]
    assert set(award) == AWARD_KEYS and award["winner"] == "b" and award["price"] == 10.0
    assert award["contract"]["seller"] == "b" and award["contract"]["terms"] == {"values": {"price": 10.0, "day": 1.0}}
    ended = log.of("negotiation.ended")[0]
    assert set(ended) == ENDED_KEYS
    assert ended["outcome"] == "awarded" and ended["agreement"] == {"price": 10.0, "day": 1.0}
    assert ended["parties_order"] == ["buyer", "b"] and ended["pareto"] == [] and ended["nash"] is None


def carrier(name: str, price: float | None, day: int = 2) -> Agent:
    agent = Agent(name, "test carrier")

    @agent.skill()
    async def bid(ctx: SkillContext, call: AuctionCall) -> Bid:
        return Bid(auction_id=call.auction_id, bidder=name, price=price, day=day if price else None, reason="full")

    @agent.skill()
    async def award(ctx: SkillContext, req: Award) -> AwardReply:
        return AwardReply(cfp_id=req.cfp_id, bidder=name, confirmed=True)

    return agent


async def test_auction_steps() -> None:
    call = AuctionCall(
        auction_id="ship-1",
        item="pumps",
        origin="factory",
        destination="customer",
        quantity=5,
        earliest_day=1,
        latest_day=6,
        deadline_s=5,
    )
    log = EventLog()
    async with serve_parties([carrier("x", 300.0), carrier("y", 250.0), carrier("z", None)], "http") as p:
        result = await sealed_bid_auction(call, [p["x"], p["y"], p["z"]], pricing="second", recorder=log)
    assert result.winner is not None and result.winner.bidder == "y" and result.payment == 300.0
    assert log.kinds() == ["negotiation.started"] + ["negotiation.bid"] * 3 + ["negotiation.award", "negotiation.ended"]
    started = log.of("negotiation.started")[0]
    assert started["protocol"] == "auction" and started["issues"] == [] and started["deadline_s"] == 5
    assert [p["role"] for p in started["parties"]] == ["bidder"] * 3
    bids = log.of("negotiation.bid")
    assert [(b["bidder"], b["valid"], b["price"], b["reason"]) for b in bids] == [
        ("x", True, 300.0, None),
        ("y", True, 250.0, None),
        ("z", False, None, "no bid: full"),
    ]
    award = log.of("negotiation.award")[0]
    assert (award["item"], award["winner"], award["price"]) == ("pumps", "y", 300.0)
    assert award["contract"]["contractId"] == "ship-1" and award["contract"]["buyer"] == "customer"
    ended = log.of("negotiation.ended")[0]
    assert ended["outcome"] == "awarded" and ended["agreement"] == {"day": 2.0, "price": 300.0, "quantity": 5.0}


async def test_one_to_many_records_each_thread(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    agents = [
        negotiator_agent("buyer", Negotiator(buyer_prefs, "linear")),
        negotiator_agent("s1", Negotiator(seller_prefs, "conceder")),
        negotiator_agent("s2", Negotiator(seller_prefs, "boulware")),
    ]
    logs: dict[str, EventLog] = {}

    @asynccontextmanager
    async def record(seller: Party) -> AsyncIterator[NegotiationRecorder]:
        logs[seller.name] = EventLog()
        yield logs[seller.name]

    async with serve_parties(agents) as p:
        result = await one_to_many(p["buyer"], [p["s1"], p["s2"]], issues, max_rounds=6, recorders=record)
    assert sorted(logs) == ["s1", "s2"]
    for outcome in result.outcomes:
        log = logs[outcome.parties[1]]
        assert log.of("negotiation.started")[0]["parties"][1]["name"] == outcome.parties[1]
        assert len(log.of("negotiation.offer")) == len(outcome.history)
        assert log.of("negotiation.ended")[0]["rounds"] == outcome.rounds


# -- recorded as runs ---------------------------------------------------------------------------------------


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(f"sqlite:///{tmp_path / 'runs.db'}") as reg:
        yield reg


async def test_a_negotiation_is_a_run_with_its_steps_as_events(
    registry: Registry, issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    agents = [
        negotiator_agent("buyer", Negotiator(buyer_prefs, "linear")),
        negotiator_agent("seller", Negotiator(seller_prefs, "conceder")),
    ]
    utilities = (LinearUtility(buyer_prefs, issues), LinearUtility(seller_prefs, issues))
    with anyio.fail_after(30):
        async with Orchestrator(registry, registry.url).running() as orch, serve_parties(agents) as p:
            runs = NegotiationRuns(orch)
            async with runs.recording("motor: buyer and seller", protocol="alternating") as recorder:
                outcome = await alternating_offers(
                    p["buyer"], p["seller"], issues, utilities=utilities, recorder=recorder
                )
            record = await orch.wait(recorder.run_id)
            events = [e async for e in orch.events(recorder.run_id)]
            negotiations = await orch.list_runs(kind="negotiation")
            graphs = await orch.list_runs(kind="graph")
    assert runs.opened == [recorder.run_id]
    assert record["kind"] == "negotiation" and record["status"] == "succeeded" and record["tasks"] == []
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["run.created", "run.started", "negotiation.started"]
    assert kinds[-2:] == ["negotiation.ended", "run.succeeded"]
    assert kinds.count("negotiation.offer") == len(outcome.history)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["task_id"] is None for e in events)
    ended = events[-2]["data"]
    assert set(ended) == ENDED_KEYS and ended["pareto"] and ended["nash"] is not None
    assert record["output"] == ended == events[-1]["data"]["output"]
    assert [r["id"] for r in negotiations] == [recorder.run_id] and negotiations[0]["kind"] == "negotiation"
    assert graphs == []


async def test_a_cancelled_negotiation_run_ends_cancelled(registry: Registry, issues: list[Issue]) -> None:
    agent = Agent("slow", "never answers in time")

    @agent.skill()
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        await anyio.sleep(30)
        raise AssertionError("cancelled before")

    fast = scripted("fast", [counter("strategy", price=80, quantity=100, day=1)])
    with anyio.fail_after(20):
        async with Orchestrator(registry, registry.url).running() as orch, serve_parties([fast, agent]) as p:
            runs = NegotiationRuns(orch)
            async with anyio.create_task_group() as tg:
                opened = anyio.Event()
                ids: list[str] = []

                async def negotiate() -> None:
                    async with runs.recording("slow one", protocol="alternating") as recorder:
                        ids.append(recorder.run_id)
                        opened.set()
                        await alternating_offers(p["fast"], p["slow"], issues, recorder=recorder)

                tg.start_soon(negotiate)
                await opened.wait()
                assert await orch.cancel(ids[0]) is True
            record = await orch.get_run(ids[0])
    assert record["status"] == "cancelled" and record["error"] == "cancelled by request"
    assert record["output"]["outcome"] == "failed" and record["output"]["reason"] == "cancelled by request"


async def test_a_dead_replicas_negotiation_is_failed_as_interrupted(registry: Registry) -> None:
    orch = Orchestrator(registry, registry.url)
    stamp = now()
    run: dict[str, Any] = {
        "id": "neg-left-behind",
        "kind": "negotiation",
        "name": "left behind",
        "status": "running",
        "spec": {"protocol": "alternating", "name": "left behind"},
        "created_at": stamp,
        "updated_at": stamp,
        "lease_owner": "a-replica-that-died",
        "lease_expires_at": stamp - timedelta(seconds=1),
    }
    created = {"run_id": run["id"], "seq": 1, "kind": "run.created", "task_id": None, "data": {}, "at": stamp}
    orch.store.create_run(run, [], created)
    with anyio.fail_after(20):
        async with orch.running():
            record = await orch.wait(run["id"])
            events = [e async for e in orch.events(run["id"])]
    assert record["status"] == "failed" and record["error"] == INTERRUPTED and record["lease_owner"] is None
    assert [e["kind"] for e in events] == ["run.created", "negotiation.ended", "run.failed"]
    assert events[1]["data"]["outcome"] == "failed" and events[1]["data"]["reason"] == INTERRUPTED
    assert record["output"] == events[1]["data"]


async def test_a_scenario_records_each_negotiation_as_a_run_and_keeps_its_result(registry: Registry) -> None:
    from scenarios import hospital_referral

    with anyio.fail_after(60):
        plain = await hospital_referral.arun(seed=2)
        async with Orchestrator(registry, registry.url).running() as orch:
            runs = NegotiationRuns(orch)
            recorded = await hospital_referral.arun(seed=2, runs=runs)
            listed = await orch.list_runs(kind="negotiation")
            records = [await orch.get_run(run_id) for run_id in runs.opened]
    assert recorded == plain
    assert sorted(r["id"] for r in listed) == sorted(runs.opened) and len(runs.opened) == 4
    protocols = [r["spec"]["protocol"] for r in records]
    assert sorted(protocols) == ["alternating", "alternating", "auction", "contract_net"]
    assert all(r["status"] == "succeeded" and r["output"]["outcome"] for r in records)
    threads = [r for r in records if r["spec"]["protocol"] == "alternating"]
    assert all(r["output"]["pareto"] and r["output"]["parties_order"][0] == "gp" for r in threads)


async def test_a_replica_that_stops_fails_its_negotiations_as_interrupted(
    registry: Registry, issues: list[Issue]
) -> None:
    agent = Agent("slow", "never answers in time")
    called = anyio.Event()

    @agent.skill()
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        called.set()
        await anyio.sleep(30)
        raise AssertionError("stopped before")

    fast = scripted("fast", [counter("strategy", price=80, quantity=100, day=1)])
    orch = Orchestrator(registry, registry.url)
    with anyio.fail_after(20):
        async with serve_parties([fast, agent]) as p:
            async with orch.running():
                runs = NegotiationRuns(orch)
                recorder = await runs.open("stopped", protocol="alternating")
                orch.spawn(
                    lambda: runs.drive(
                        recorder, lambda: alternating_offers(p["fast"], p["slow"], issues, recorder=recorder)
                    )
                )
                await called.wait()  # the negotiation is under way
        record = orch.store.get_run(recorder.run_id)
        kinds = [e["kind"] for e in orch.store.events_after(recorder.run_id)]
    assert record is not None and record["status"] == "failed" and record["error"] == STOPPED
    assert record["lease_owner"] is None and record["output"]["outcome"] == "failed"
    assert kinds[-2:] == ["negotiation.ended", "run.failed"]
