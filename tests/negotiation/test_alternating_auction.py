"""Alternating offers (agreement, deadline, timeout, protocol violations, one-to-many) and sealed-bid auctions
(ranking, ties, late and invalid bids, second price, withdrawal), over both transports."""

from __future__ import annotations

import anyio
import pytest

from agents.agent import Agent, SkillContext
from agents.negotiators import (
    Carrier,
    CarrierProfile,
    LinearUtility,
    Negotiator,
    Preferences,
    carrier_agent,
    negotiator_agent,
)
from orchestrator.negotiation import alternating_offers, one_to_many, sealed_bid_auction, serve_parties
from protocol.negotiation import (
    Action,
    AuctionCall,
    Award,
    AwardReply,
    Bid,
    Issue,
    Offer,
    RespondRequest,
    Response,
)

LATE_S = 2.0  # a late answer; deadlines in these tests are well under it


def scripted_party(name: str, moves: list[Response | str]) -> Agent:
    """A negotiator that replays fixed moves; "hang" answers only after LATE_S seconds."""
    agent = Agent(name, "scripted negotiator")
    queue = list(moves)

    @agent.skill()
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        move = queue.pop(0)
        if move == "hang":
            await anyio.sleep(LATE_S)  # answers, but after the deadline
        assert isinstance(move, Response)
        return move

    return agent


@pytest.mark.anyio
async def test_classic_negotiators_agree_with_analytics(
    transport: str, issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    agents = [
        negotiator_agent("buyer", Negotiator(buyer_prefs, "linear")),
        negotiator_agent("seller", Negotiator(seller_prefs, "conceder")),
    ]
    utilities = (LinearUtility(buyer_prefs, issues), LinearUtility(seller_prefs, issues))
    with anyio.fail_after(30):
        async with serve_parties(agents, transport) as p:
            outcome = await alternating_offers(p["buyer"], p["seller"], issues, max_rounds=10, utilities=utilities)
    assert outcome.agreement is not None and outcome.reason.startswith("accepted by")
    assert outcome.utilities["buyer"] >= 0.3 and outcome.utilities["seller"] >= 0.3
    assert outcome.pareto_distance is not None and outcome.nash_distance is not None
    assert outcome.social_welfare == pytest.approx(sum(outcome.utilities.values()))
    senders = [r.sender for r in outcome.history]
    assert senders[0] == "buyer" and all(a != b for a, b in zip(senders, senders[1:], strict=False))


@pytest.mark.anyio
async def test_deadline_without_agreement(issues: list[Issue]) -> None:
    stubborn = Response(action=Action.COUNTER, offer=Offer(values={"price": 80, "quantity": 100, "day": 1}))
    greedy = Response(action=Action.COUNTER, offer=Offer(values={"price": 120, "quantity": 120, "day": 5}))
    agents = [scripted_party("a", [stubborn] * 3), scripted_party("b", [greedy] * 3)]
    async with serve_parties(agents) as p:
        outcome = await alternating_offers(p["a"], p["b"], issues, max_rounds=3)
    assert outcome.agreement is None and outcome.reason == "deadline: no agreement after 3 rounds"
    assert len(outcome.history) == 6


@pytest.mark.anyio
async def test_late_reply_ends_the_negotiation(transport: str, issues: list[Issue]) -> None:
    offer = Response(action=Action.COUNTER, offer=Offer(values={"price": 80, "quantity": 100, "day": 1}))
    agents = [scripted_party("a", [offer]), scripted_party("b", ["hang"])]
    with anyio.fail_after(30):
        async with serve_parties(agents, transport) as p:
            outcome = await alternating_offers(p["a"], p["b"], issues, max_rounds=3, timeout_s=0.5)
    assert outcome.agreement is None and outcome.reason.startswith("timeout: b did not answer")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("second_move", "reason"),
    [
        (Response(action=Action.WALK_AWAY, reason="too greedy"), "b walked away: too greedy"),
        (
            Response(action=Action.COUNTER, offer=Offer(values={"price": 81, "quantity": 100, "day": 1})),
            "protocol violation: b offered off the grid",
        ),
    ],
)
async def test_walk_away_and_off_grid_offers(issues: list[Issue], second_move: Response, reason: str) -> None:
    offer = Response(action=Action.COUNTER, offer=Offer(values={"price": 80, "quantity": 100, "day": 1}))
    async with serve_parties([scripted_party("a", [offer]), scripted_party("b", [second_move])]) as p:
        outcome = await alternating_offers(p["a"], p["b"], issues, max_rounds=3)
    assert outcome.agreement is None and outcome.reason.startswith(reason)


@pytest.mark.anyio
async def test_accepting_nothing_is_a_violation(issues: list[Issue]) -> None:
    async with serve_parties([scripted_party("a", [Response(action=Action.ACCEPT)]), scripted_party("b", [])]) as p:
        outcome = await alternating_offers(p["a"], p["b"], issues)
    assert outcome.reason == "protocol violation: a accepted with no offer on the table"


@pytest.mark.anyio
async def test_one_to_many_keeps_the_buyers_best_deal(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    cheap = seller_prefs.model_copy(update={"reservation": 0.05})
    dear = seller_prefs.model_copy(update={"limits": {"price": (110.0, 200.0)}})
    agents = [
        negotiator_agent("buyer", Negotiator(buyer_prefs, "linear")),
        negotiator_agent("s1", Negotiator(dear, "boulware")),
        negotiator_agent("s2", Negotiator(cheap, "conceder")),
    ]
    bu = LinearUtility(buyer_prefs, issues)
    utilities = {"s1": (bu, LinearUtility(dear, issues)), "s2": (bu, LinearUtility(cheap, issues))}
    async with serve_parties(agents) as p:
        result = await one_to_many(
            p["buyer"], [p["s1"], p["s2"]], issues, max_rounds=6, utilities=utilities, id_prefix="t"
        )
    assert len(result.outcomes) == 2 and result.best is not None
    agreed = [o for o in result.outcomes if o.agreement is not None]
    assert result.best.utilities["buyer"] == max(o.utilities["buyer"] for o in agreed)
    assert result.best.negotiation_id == "t-s2"


def fixed_bidder(name: str, bid: Bid | str, *, confirm: bool = True) -> Agent:
    agent = Agent(name, "scripted carrier")

    @agent.skill("bid")
    async def bid_skill(ctx: SkillContext, call: AuctionCall) -> Bid:
        if bid == "hang":
            await anyio.sleep(LATE_S)  # answers, but after the deadline
        assert isinstance(bid, Bid)
        return bid

    @agent.skill()
    async def award(ctx: SkillContext, req: Award) -> AwardReply:
        return AwardReply(cfp_id=req.cfp_id, bidder=name, confirmed=confirm, reason="" if confirm else "truck broke")

    return agent


CALL = AuctionCall(
    auction_id="ship-1",
    item="motor",
    origin="s",
    destination="f",
    quantity=50,
    earliest_day=2,
    latest_day=6,
    deadline_s=1.5,  # under LATE_S, with room for the prompt bidders over HTTP on a loaded machine
)


def b(name: str, price: float | None, day: int | None = 3, days: int = 1) -> Bid:
    return Bid(auction_id="ship-1", bidder=name, price=price, day=day, days=days)


@pytest.mark.anyio
async def test_auction_rules(transport: str) -> None:
    agents = [
        fixed_bidder("late", "hang"),
        fixed_bidder("none", b("none", None, None)),
        fixed_bidder("outside", b("outside", 1.0, day=5, days=3)),  # arrives day 8 > 6
        fixed_bidder("tie-later", b("tie-later", 100.0, day=4)),
        fixed_bidder("tie-early", b("tie-early", 100.0, day=3)),
        fixed_bidder("withdraws", b("withdraws", 90.0), confirm=False),
        fixed_bidder("dear", b("dear", 150.0)),
    ]
    with anyio.fail_after(30):
        async with serve_parties(agents, transport) as p:
            first = await sealed_bid_auction(CALL, list(p.values()))
            second = await sealed_bid_auction(CALL, [p["tie-early"], p["dear"]], pricing="second")
    assert [x.bidder for x in first.ranked] == ["withdraws", "tie-early", "tie-later", "dear"]
    assert first.late == ["late"] and first.no_bids == ["none"] and set(first.invalid) == {"outside"}
    assert first.withdrawn == {"withdraws": "truck broke"}
    assert first.winner is not None and first.winner.bidder == "tie-early" and first.payment == 100.0
    assert second.winner is not None and second.winner.bidder == "tie-early" and second.payment == 150.0


@pytest.mark.anyio
async def test_carrier_books_capacity_and_stops_bidding_when_full() -> None:
    carrier = carrier_agent("c", Carrier(CarrierProfile(trucks=1, truck_capacity=60, transit_days=1)))
    async with serve_parties([carrier]) as p:
        one = await sealed_bid_auction(CALL, [p["c"]])
        assert one.winner is not None and one.winner.day == 5  # latest pickup that arrives by day 6
        two = await sealed_bid_auction(CALL.model_copy(update={"auction_id": "ship-2"}), [p["c"]])
        assert two.winner is not None and two.winner.day == 4  # day 5 is full now
        small = CALL.model_copy(update={"auction_id": "ship-3", "earliest_day": 4, "latest_day": 6})
        three = await sealed_bid_auction(small, [p["c"]])
    assert three.winner is None and three.no_bids == ["c"]
