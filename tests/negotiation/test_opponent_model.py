"""The frequency opponent model, the estimated Pareto frontier and Nash point, and the acceptance conditions."""

from __future__ import annotations

import numpy as np
import pytest

from agents.negotiators import LinearUtility, Preferences, get_strategy, outcome_space
from agents.negotiators.acceptance import ac_combi, ac_next, ac_time, window_best
from agents.negotiators.opponent import FrequencyModel, nash_row, offers_of, pareto_rows
from protocol.negotiation import Issue, Offer, OfferRecord, RespondRequest


def _offers_of_a_conceding_seller(issues: list[Issue], prefs: Preferences, rounds: int) -> list[Offer]:
    """The offers a linear-conceding seller makes against a buyer that keeps asking for its own best outcome."""
    seller, space = LinearUtility(prefs, issues), outcome_space(issues)
    ask = Offer(values={"price": 80.0, "quantity": 100.0, "day": 1.0})  # the seller's worst outcome
    strategy, history = get_strategy("linear"), [OfferRecord(sender="buyer", round=1, offer=ask)]
    made = []
    for rnd in range(1, rounds + 1):
        req = RespondRequest(
            negotiation_id="n",
            me="seller",
            opponent="buyer",
            issues=issues,
            round=rnd,
            max_rounds=rounds,
            time=(rnd - 1) / rounds,
            history=history,
        )
        offer = strategy.counter_offer(req, seller, space)
        assert offer is not None
        made.append(offer)
        history = [*history, OfferRecord(sender="seller", round=rnd, offer=offer)]
        history.append(OfferRecord(sender="buyer", round=rnd, offer=ask))
    return made


def test_model_learns_the_opponents_weight_ranking(issues: list[Issue], seller_prefs: Preferences) -> None:
    offers = _offers_of_a_conceding_seller(issues, seller_prefs, rounds=12)  # price 0.7, quantity 0.2, day 0.1
    model = FrequencyModel.from_offers(issues, offers)
    weights = model.weights()
    assert weights.sum() == pytest.approx(1.0)
    assert np.argsort(-weights).tolist() == [0, 1, 2], f"price > quantity > day for the seller, estimated {weights}"
    # its favourite price (the highest) scores 1; the estimate ranks the seller's best outcome above its worst
    assert model.value_scores(0)[-1] == pytest.approx(1.0)
    space = outcome_space(issues)
    theirs = model.scores(space.points)
    assert theirs.shape == (len(space.points),) and 0.0 <= theirs.min() and theirs.max() <= 1.0 + 1e-9
    best, worst = np.array([[120.0, 120.0, 5.0]]), np.array([[80.0, 100.0, 1.0]])
    assert model.scores(best)[0] > model.scores(worst)[0]


def test_model_before_any_offer_and_updates_match_the_batch(issues: list[Issue]) -> None:
    empty = FrequencyModel.from_offers(issues, [])
    assert np.allclose(empty.weights(), 1 / 3) and np.allclose(empty.scores(outcome_space(issues).points), 1.0)
    offers = [
        Offer(values={"price": 120.0, "quantity": 100.0, "day": 5.0}),
        Offer(values={"price": 120.0, "quantity": 110.0, "day": 4.0}),
        Offer(values={"price": 110.0, "quantity": 120.0, "day": 4.0}),
    ]
    one_by_one = FrequencyModel(tuple(issues))
    for offer in offers:
        one_by_one.update(offer)
    batch = FrequencyModel.from_offers(issues, offers)
    assert np.allclose(one_by_one.weights(), batch.weights())
    records = [OfferRecord(sender="a" if i % 2 else "b", round=1, offer=o) for i, o in enumerate(offers)]
    assert offers_of(records, "b") == [offers[0], offers[2]]


def test_pareto_rows_and_nash_row() -> None:
    mine = np.array([1.0, 0.8, 0.6, 0.5, 0.2, 0.8])
    theirs = np.array([0.1, 0.5, 0.4, 0.9, 1.0, 0.3])
    assert pareto_rows(mine, theirs).tolist() == [0, 1, 3, 4]  # rows 2 and 5 are dominated by row 1
    assert nash_row(mine, theirs, reservation=0.3) == 1  # (0.8 - 0.3) * 0.5 beats (0.5 - 0.3) * 0.9
    assert nash_row(mine, theirs, reservation=1.5) is None


def test_acceptance_conditions() -> None:
    assert ac_next(0.7, 0.7) and not ac_next(0.69, 0.7) and ac_next(0.6, 0.7, alpha=0.8, beta=0.03)
    assert ac_time(0.95, 0.95) and not ac_time(0.9, 0.95)
    assert window_best([0.2, 0.5, 0.3, 0.4], 2) == 0.4 and window_best([], 3) == float("-inf")
    # early: only AC_next; late: an offer as good as the recent best and above the floor
    assert not ac_combi(0.5, 0.8, time=0.5, deadline=0.9, recent_best=0.5, floor=0.4)
    assert ac_combi(0.5, 0.8, time=0.95, deadline=0.9, recent_best=0.5, floor=0.4)
    assert not ac_combi(0.5, 0.8, time=0.95, deadline=0.9, recent_best=0.6, floor=0.4), "they offered better"
    assert not ac_combi(0.5, 0.8, time=0.95, deadline=0.9, recent_best=0.5, floor=0.55), "below my floor"
    assert ac_combi(0.8, 0.8, time=0.1, deadline=0.9, recent_best=0.9, floor=0.95), "AC_next alone suffices"


def test_a_steady_offer_ranks_numeric_values_by_distance(issues: list[Issue]) -> None:
    """A hardliner repeating one offer still tells the model which way it leans on a numeric issue: a value next to
    the one it offers scores above one at the far end. Categorical values have no distance, so all others tie."""
    steady = [Offer(values={"price": 120.0, "quantity": 100.0, "day": 3.0})] * 10
    model = FrequencyModel.from_offers(issues, steady)
    price = model.value_scores(0)  # 80, 90, 100, 110, 120
    assert price[-1] == pytest.approx(1.0) and np.all(np.diff(price) > 0)
    day = model.value_scores(2)  # 1..5, offered 3: single-peaked
    assert day[2] == pytest.approx(1.0) and day[1] == pytest.approx(day[3]) and day[1] > day[0]
    colour = Issue.categorical("colour", ["red", "green", "blue"])
    labelled = FrequencyModel.from_offers([colour], [Offer(values={"colour": 0.0})] * 10).value_scores(0)
    assert labelled[0] == pytest.approx(1.0) and labelled[1] == pytest.approx(labelled[2]) and labelled[1] < 1.0
    # the estimated Nash point against such a hardliner is a middle outcome, not one it rates at the floor
    space = outcome_space(issues)
    theirs = model.scores(space.points)
    assert theirs.min() < 0.3 and np.sort(theirs)[len(theirs) // 2] > 0.5
