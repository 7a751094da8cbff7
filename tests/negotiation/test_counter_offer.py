"""Counter-offers on a coarse grid: the next outcome at or above the target, so concessions never jump back."""

from __future__ import annotations

import itertools

import anyio
import pytest

from agents.negotiators import LinearUtility, Negotiator, Preferences, get_strategy, negotiator_agent, outcome_space
from orchestrator.negotiation import alternating_offers, serve_parties
from protocol.negotiation import Issue, Outcome, RespondRequest

PRICES = [Issue(name="price", values=[10.0, 20.0, 30.0, 40.0, 50.0])]


def seller(reservation: float) -> Preferences:
    return Preferences(weights={"price": 1.0}, reservation=reservation)


def buyer(reservation: float) -> Preferences:
    return Preferences(weights={"price": 1.0}, increasing={"price": False}, reservation=reservation)


async def negotiate(seller_kind: str, buyer_kind: str, reservations: float, opener: str) -> Outcome:
    agents = [
        negotiator_agent("seller", Negotiator(seller(reservations), seller_kind)),
        negotiator_agent("buyer", Negotiator(buyer(reservations), buyer_kind)),
    ]
    with anyio.fail_after(30):
        async with serve_parties(agents) as p:
            first, second = (p["buyer"], p["seller"]) if opener == "buyer" else (p["seller"], p["buyer"])
            return await alternating_offers(first, second, PRICES, max_rounds=10)  # 20 steps


def own_utilities(outcome: Outcome, name: str, prefs: Preferences) -> list[float]:
    u = LinearUtility(prefs, PRICES)
    return [u(r.offer) for r in outcome.history if r.sender == name]


def test_between_grid_levels_the_counter_is_the_next_level_up_not_the_best() -> None:
    u, space = LinearUtility(seller(0.3), PRICES), outcome_space(PRICES)
    # linear target at t = 0.5 is 0.3 + 0.7 * 0.5 = 0.65; the grid's levels are 0, 0.25, 0.5, 0.75, 1
    req = RespondRequest(
        negotiation_id="n", me="seller", opponent="buyer", issues=PRICES, round=3, max_rounds=5, time=0.5
    )
    offer = get_strategy("linear").counter_offer(req, u, space)
    assert offer is not None and offer.values["price"] == 40.0


@pytest.mark.anyio
async def test_five_price_linear_seller_concedes_steadily_and_agrees_with_tit_for_tat() -> None:
    outcome = await negotiate("linear", "tit_for_tat", 0.3, opener="buyer")
    offers = own_utilities(outcome, "seller", seller(0.3))
    assert len(offers) >= 3
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(offers)), f"an offer jumped back up: {offers}"
    assert outcome.agreement is not None, outcome.reason


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["boulware", "linear", "conceder", "tit_for_tat"])
async def test_own_utility_of_successive_offers_never_rises(kind: str) -> None:
    for opponent, reservations, opener in itertools.product(["linear", "tit_for_tat"], [0.0, 0.3], ["buyer", "seller"]):
        outcome = await negotiate(kind, opponent, reservations, opener)
        offers = own_utilities(outcome, "seller", seller(reservations))
        assert all(b <= a + 1e-9 for a, b in itertools.pairwise(offers)), (opponent, reservations, opener, offers)
