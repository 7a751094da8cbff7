"""The adaptive strategy: endgame against hardliners, agreement with reciprocal opponents, guardrails, planned offers
against a known opponent utility."""

from __future__ import annotations

import numpy as np
import pytest

from agents.negotiators import LinearUtility, Preferences, Strategy, Utility, get_strategy, outcome_space
from agents.negotiators.adaptive import Adaptive
from protocol.negotiation import Action, Issue, Offer, OfferRecord, RespondRequest, Response


def _request(issues: list[Issue], history: list[OfferRecord], rnd: int, max_rounds: int, time: float) -> RespondRequest:
    return RespondRequest(
        negotiation_id="n",
        me="me",
        opponent="them",
        issues=issues,
        round=rnd,
        max_rounds=max_rounds,
        time=time,
        history=history,
    )


def _play(
    issues: list[Issue], mine: tuple[Strategy, Utility], theirs: tuple[Strategy, Utility], max_rounds: int
) -> tuple[Offer | None, str | None]:
    """Alternating offers between two in-process strategies (``mine`` opens): the agreement and who accepted."""
    space, history = outcome_space(issues), []
    players = {"me": mine, "them": theirs}
    turns = 2 * max_rounds
    for turn in range(turns):
        me, other = ("me", "them") if turn % 2 == 0 else ("them", "me")
        strategy, utility = players[me]
        req = RespondRequest(
            negotiation_id="n",
            me=me,
            opponent=other,
            issues=issues,
            round=turn // 2 + 1,
            max_rounds=max_rounds,
            time=turn / (turns - 1),
            history=history,
        )
        move = strategy.respond(req, utility, space)
        if move.action is Action.ACCEPT:
            assert req.standing_offer is not None
            return req.standing_offer, me
        if move.action is Action.WALK_AWAY:
            return None, None
        assert move.offer is not None
        history = [*history, OfferRecord(sender=me, round=req.round, offer=move.offer)]
    return None, None


def test_registered_by_name() -> None:
    assert isinstance(get_strategy("adaptive"), Adaptive)
    with pytest.raises(ValueError, match="exponent"):
        Adaptive(exponent=0)


def _alternating(first: str, theirs: list[Offer], mine: Offer) -> list[OfferRecord]:
    """A history of ``len(theirs)`` rounds, ``first`` opening each: their offers in order, mine always ``mine``."""
    history = []
    for rnd, offer in enumerate(theirs, 1):
        pair = [OfferRecord(sender="them", round=rnd, offer=offer), OfferRecord(sender="me", round=rnd, offer=mine)]
        history += pair if first == "them" else pair[::-1]
    return history


def test_last_move_refuses_a_hardliners_worse_offer(issues: list[Issue], buyer_prefs: Preferences) -> None:
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("adaptive")
    good = Offer(values={"price": 100.0, "quantity": 110.0, "day": 3.0})  # 0.6 to the buyer
    poor = Offer(values={"price": 110.0, "quantity": 100.0, "day": 4.0})  # 0.4: above the reservation 0.3
    ask = Offer(values={"price": 80.0, "quantity": 100.0, "day": 1.0})  # the buyer's best
    assert u(good) > u(poor) > u.reservation
    theirs = [good, *[poor] * 9]  # rounds 1-10, the last round's offer standing

    def move(first: str, rnd: int) -> Response:
        if first == "me":  # I open round rnd: rounds 1 to rnd - 1 are complete
            history = _alternating("me", theirs[: rnd - 1], ask)
        else:  # they opened round rnd: their offer of it stands, my reply is the move being decided
            history = _alternating("them", theirs[:rnd], ask)[:-1]
        turn = 2 * (rnd - 1) + (first == "them")
        return strategy.respond(_request(issues, history, rnd=rnd, max_rounds=10, time=turn / 19), u, space)

    # they open every round: my move in round 10 ends the negotiation (time 1) and keeps the floor of their best
    last = move("them", 10)
    assert last.action is not Action.ACCEPT, "the last move keeps the floor of the best offer they made"
    # so my last offer they can answer is round 9's: their own best offer back, halfway down to it in round 8
    answerable = move("them", 9)
    assert answerable.action is Action.COUNTER and answerable.offer == good
    before = move("them", 8)
    assert before.action is Action.COUNTER and before.offer is not None and u(before.offer) > u(good)
    # I open every round: they answer my round-10 offer, so that one is their best back and round 9 goes halfway
    opening = move("me", 10)
    assert opening.action is Action.COUNTER and opening.offer == good
    before = move("me", 9)
    assert before.action is Action.COUNTER and before.offer is not None and u(before.offer) > u(good)
    # a hardliner's constant offer is its best: on the last move taking it beats no deal
    steady = [OfferRecord(sender="them", round=r, offer=poor) for r in range(1, 10)]
    taken = strategy.respond(_request(issues, steady, rnd=10, max_rounds=10, time=1.0), u, space)
    assert taken.action is Action.ACCEPT


def test_a_short_negotiation_concedes_before_its_last_rounds(issues: list[Issue], buyer_prefs: Preferences) -> None:
    """Time alone (exponent 0.05) would hold the top until the last two of 20 rounds; the ramp starts six
    answerable offers before the end, so a reciprocal opponent has rounds left to answer."""
    u = LinearUtility(buyer_prefs, issues)
    poor = Offer(values={"price": 120.0, "quantity": 120.0, "day": 5.0})  # 0 to the buyer
    ask = Offer(values={"price": 80.0, "quantity": 100.0, "day": 1.0})
    history = _alternating("me", [poor] * 15, ask)

    def target(strategy: Adaptive) -> float:
        req = _request(issues, history, rnd=16, max_rounds=20, time=30 / 39)
        return strategy.target(req, u)

    assert target(Adaptive(ramp_moves=0)) == pytest.approx(1.0, abs=0.01)
    ramped = target(Adaptive())  # 4 answerable offers after this one (rounds 17-20): (1 - 4/6)^2 of the way down
    assert ramped == pytest.approx(1.0 - 0.7 * (2 / 6) ** 2, abs=0.01)  # from the top 1 to the reservation 0.3
    assert ramped < target(Adaptive(ramp_moves=0))


def test_with_nothing_of_theirs_acceptable_the_endgame_offers_something_new_near_nash(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    """Every offer of theirs is below my reservation: my last answerable offer is the (here known) Nash point, or,
    once I have offered it, a new outcome worth up to ``band`` less (MiCRO concedes only for new offers); never my
    best outcome, which they have refused from the start."""
    mine, theirs, space = LinearUtility(buyer_prefs, issues), LinearUtility(seller_prefs, issues), outcome_space(issues)
    poor = Offer(values={"price": 120.0, "quantity": 120.0, "day": 5.0})  # 0 to me, below my reservation 0.3
    ask = Offer(values={"price": 80.0, "quantity": 100.0, "day": 1.0})  # my best
    informed = Adaptive(plan=False).for_negotiation(opponent=theirs)

    def last_offer(my_offers: list[Offer], strategy: Adaptive) -> Offer:
        history = _alternating("me", [poor] * 9, ask)  # I open: round 10's offer is the last they can answer
        for k, offer in enumerate(my_offers):
            history[-2 - 2 * k] = OfferRecord(sender="me", round=9 - k, offer=offer)
        move = strategy.respond(_request(issues, history, rnd=10, max_rounds=10, time=18 / 19), mine, space)
        assert move.action is Action.COUNTER and move.offer is not None
        return move.offer

    nash = last_offer([], informed)
    assert 0.3 < mine(nash) < mine(ask) and theirs(nash) > 0.3
    again = last_offer([nash], informed)
    assert again not in (nash, ask), "a new outcome, not the one they refused"
    assert mine(nash) - informed.band - 1e-9 <= mine(again) <= mine(nash) + 1e-9  # the same, or a little less
    # an opponent that wants what I want: the Nash point is my best outcome, refused all along, so not offered
    alike = Adaptive(plan=False).for_negotiation(opponent=mine)
    assert mine(last_offer([], alike)) < mine(ask)


def test_holds_out_against_a_hardliner_before_the_end(issues: list[Issue], buyer_prefs: Preferences) -> None:
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("adaptive")
    poor = Offer(values={"price": 110.0, "quantity": 100.0, "day": 4.0})  # 0.4 to the buyer
    history = [OfferRecord(sender="them", round=r, offer=poor) for r in range(1, 50)]
    for rnd in (50, 80, 95):
        move = strategy.respond(_request(issues, history, rnd=rnd, max_rounds=100, time=rnd / 100), u, space)
        assert move.action is Action.COUNTER and move.offer is not None and u(move.offer) > u(poor)


@pytest.mark.parametrize("opponent", ["tit_for_tat", "boulware", "linear", "adaptive"])
@pytest.mark.parametrize("max_rounds", [10, 100])
def test_reaches_agreement_with_reciprocal_and_time_based_opponents(
    opponent: str, max_rounds: int, issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    mine, theirs = LinearUtility(buyer_prefs, issues), LinearUtility(seller_prefs, issues)
    for pair in (((get_strategy("adaptive"), mine), (get_strategy(opponent), theirs)),):
        agreement, _ = _play(issues, *pair, max_rounds=max_rounds)
        assert agreement is not None, f"no agreement with {opponent} in {max_rounds} rounds"
        assert mine(agreement) >= mine.reservation and theirs(agreement) >= theirs.reservation
    # and as the second mover
    agreement, _ = _play(issues, (get_strategy(opponent), theirs), (get_strategy("adaptive"), mine), max_rounds)
    assert agreement is not None and mine(agreement) >= mine.reservation


def test_offers_stay_within_limits(issues: list[Issue]) -> None:
    prefs = Preferences(weights={"price": 0.7, "day": 0.3}, reservation=0.1, limits={"day": (2.0, 4.0)})
    u, space, strategy = LinearUtility(prefs, issues), outcome_space(issues), get_strategy("adaptive")
    outside = Offer(values={"price": 120.0, "quantity": 100.0, "day": 5.0})  # their best for me, but off limits
    history: list[OfferRecord] = []
    for rnd in range(1, 21):
        history.append(OfferRecord(sender="them", round=rnd, offer=outside))
        move = strategy.respond(_request(issues, history, rnd=rnd, max_rounds=20, time=rnd / 20), u, space)
        assert move.action is not Action.ACCEPT
        if move.offer is not None:
            assert 2.0 <= move.offer.values["day"] <= 4.0 and u(move.offer) >= u.reservation


def test_a_known_opponent_utility_replaces_the_estimate(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    mine, theirs, space = LinearUtility(buyer_prefs, issues), LinearUtility(seller_prefs, issues), outcome_space(issues)
    shared = get_strategy("adaptive")
    assert shared.for_negotiation() is not shared and get_strategy("boulware").for_negotiation(theirs) is not None
    informed = shared.for_negotiation(opponent=theirs)
    assert isinstance(informed, Adaptive) and informed.opponent is theirs and shared.opponent is None
    history = [OfferRecord(sender="them", round=1, offer=Offer(values={"price": 120.0, "quantity": 120.0, "day": 5.0}))]
    req = _request(issues, history, rnd=2, max_rounds=10, time=0.15)
    view = informed.view(req, mine, space)
    assert view.theirs == pytest.approx(theirs.scores(space.points))  # the known utility, not the frequency model
    offer = informed.counter_offer(req, mine, space)
    assert offer is not None and mine(offer) >= view.target - 1e-9
    # among the outcomes of my band, the one the opponent really values most
    band = (view.mine >= mine(offer) - 1e-9) & (view.mine <= mine(offer) + informed.band)
    assert theirs(offer) == pytest.approx(float(theirs.scores(space.points)[band].max()))
    # the last move offers what is best for me among outcomes they value as much as their own last offer
    fair = Offer(values={"price": 100.0, "quantity": 110.0, "day": 3.0})  # 0.6 to me
    history = [OfferRecord(sender="them", round=r, offer=fair) for r in range(1, 10)]
    last = informed.counter_offer(_request(issues, history, rnd=10, max_rounds=10, time=0.95), mine, space)
    assert last is not None and last != fair
    assert theirs(last) >= theirs(fair) - 1e-9 and mine(last) > mine(fair)


@pytest.mark.parametrize("max_rounds", [10, 100])
def test_per_negotiation_instances_cache_without_changing_moves(
    max_rounds: int, issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    mine, theirs = LinearUtility(buyer_prefs, issues), LinearUtility(seller_prefs, issues)
    boulware = get_strategy("boulware")
    shared = _play(issues, (get_strategy("adaptive"), mine), (boulware, theirs), max_rounds)
    cached = _play(issues, (get_strategy("adaptive").for_negotiation(), mine), (boulware, theirs), max_rounds)
    assert shared == cached and shared[0] is not None
    informed_strategy = get_strategy("adaptive").for_negotiation(theirs)
    informed, _ = _play(issues, (informed_strategy, mine), (boulware, theirs), max_rounds)
    assert informed is not None and mine(informed) >= mine.reservation and theirs(informed) >= theirs.reservation


def test_the_negmas_bridge_plays_with_the_revealed_opponent_utility(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    pytest.importorskip("negmas")
    from negmas.sao import AspirationNegotiator, SAOMechanism

    from agents.negotiators.negmas_bridge import ScaleoutNegotiator, ScaleoutUfun, negmas_outcome_space

    mine, theirs = ScaleoutUfun(LinearUtility(buyer_prefs, issues)), ScaleoutUfun(LinearUtility(seller_prefs, issues))
    ours = ScaleoutNegotiator(strategy="adaptive", name="ours", private_info={"opponent_ufun": theirs})
    mechanism = SAOMechanism(outcome_space=negmas_outcome_space(issues), n_steps=20)
    mechanism.add(ours, ufun=mine)
    mechanism.add(AspirationNegotiator(name="theirs"), ufun=theirs)
    state = mechanism.run()
    playing = ours._playing
    assert isinstance(playing, Adaptive) and playing is not get_strategy("adaptive")
    assert playing.opponent is not None and playing.opponent is ours.opponent_utility
    assert state.agreement is not None and mine(state.agreement) >= buyer_prefs.reservation


def _time(rnd: int, max_rounds: int) -> float:
    return min(1.0, (2 * rnd - 1) / (2 * max_rounds - 1))  # answering second in round ``rnd``


def test_a_known_opponent_gets_planned_offers_and_a_last_chance_accept(
    issues: list[Issue], buyer_prefs: Preferences, seller_prefs: Preferences
) -> None:
    mine, theirs = LinearUtility(buyer_prefs, issues), LinearUtility(seller_prefs, issues)
    space = outcome_space(issues)
    informed = get_strategy("adaptive").for_negotiation(opponent=theirs)
    assert isinstance(informed, Adaptive) and informed.plan
    hard = Offer(values={"price": 120.0, "quantity": 100.0, "day": 5.0})
    scores = mine.scores(space.points)
    modest = space.offer(int(np.argmin(np.where(scores > mine.reservation + 0.05, scores, np.inf))))
    history: list[OfferRecord] = []
    asks = []
    for rnd in range(1, 20):
        history.append(OfferRecord(sender="them", round=rnd, offer=hard))
        move = informed.respond(_request(issues, history, rnd, 20, _time(rnd, 20)), mine, space)
        assert move.action is Action.COUNTER and move.offer is not None
        assert mine(move.offer) >= mine.reservation
        asks.append(mine(move.offer))
        history.append(OfferRecord(sender="me", round=rnd, offer=move.offer))
    assert asks == sorted(asks, reverse=True) and asks[0] > asks[-1]  # concedes, never asks more again
    # their last offer, when I answer second at the deadline: anything above my reservation beats walking away
    history.append(OfferRecord(sender="them", round=20, offer=modest))
    last = informed.respond(_request(issues, history, 20, 20, 1.0), mine, space)
    assert mine(modest) > mine.reservation and last.action is Action.ACCEPT
    # an offer below my reservation is never accepted, plan or not
    history[-1] = OfferRecord(sender="them", round=20, offer=hard)
    assert informed.respond(_request(issues, history, 20, 20, 1.0), mine, space).action is not Action.ACCEPT
