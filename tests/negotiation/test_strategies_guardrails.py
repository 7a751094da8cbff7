"""Classic strategies and the LLM-guided negotiator: concession curves, acceptance, hard guardrails."""

from __future__ import annotations

import random

import pytest

from agents.agent import SkillContext
from agents.llm import Scripted
from agents.negotiators import LinearUtility, Negotiator, Preferences, get_strategy, negotiator_agent, outcome_space
from agents.negotiators.guided import display_order, enforce, guided_respond, shortlist
from protocol.negotiation import Action, Issue, Offer, OfferRecord, RespondRequest, Response


def request(
    issues: list[Issue], *, time: float, history: list[OfferRecord] | None = None, rnd: int = 2, max_rounds: int = 5
) -> RespondRequest:
    return RespondRequest(
        negotiation_id="n",
        me="me",
        opponent="them",
        issues=issues,
        round=rnd,
        max_rounds=max_rounds,
        time=time,
        history=history or [],
    )


def test_time_dependent_targets_by_hand(issues: list[Issue], buyer_prefs: Preferences) -> None:
    u = LinearUtility(buyer_prefs, issues)  # reservation 0.3
    req = request(issues, time=0.5)
    assert get_strategy("linear").target(req, u) == pytest.approx(0.3 + 0.7 * 0.5)
    assert get_strategy("boulware").target(req, u) == pytest.approx(0.3 + 0.7 * (1 - 0.5**5))
    assert get_strategy("conceder").target(req, u) == pytest.approx(0.3 + 0.7 * (1 - 0.5 ** (1 / 3)))
    assert get_strategy("boulware").target(request(issues, time=1.0), u) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="unknown strategy"):
        get_strategy("greedy")


def test_tit_for_tat_mirrors_concession(issues: list[Issue], buyer_prefs: Preferences) -> None:
    u = LinearUtility(buyer_prefs, issues)
    first = Offer(values={"price": 120, "quantity": 120, "day": 5})  # worth 0 to the buyer
    better = Offer(values={"price": 100, "quantity": 120, "day": 5})  # worth 0.3
    history = [OfferRecord(sender="them", round=1, offer=first), OfferRecord(sender="them", round=2, offer=better)]
    target = get_strategy("tit_for_tat").target(request(issues, time=0.0, history=history), u)
    assert target == pytest.approx(1.0 - 0.3)


@pytest.mark.parametrize("name", ["boulware", "linear", "conceder", "tit_for_tat", "adaptive"])
def test_strategies_never_accept_or_offer_below_reservation(
    name: str, issues: list[Issue], buyer_prefs: Preferences
) -> None:
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy(name)
    rng = random.Random(3)
    for _ in range(300):
        offer = space.offer(rng.randrange(len(space.points)))
        req = request(
            issues,
            time=rng.choice([0.0, 0.3, 0.7, 0.95, 1.0]),
            history=[OfferRecord(sender="them", round=1, offer=offer)],
        )
        move = strategy.respond(req, u, space)
        if move.action is Action.ACCEPT:
            assert u(offer) >= u.reservation
        if move.offer is not None:
            assert u(move.offer) >= u.reservation


def _below_reservation_state(issues: list[Issue], prefs: Preferences) -> tuple[RespondRequest, Offer]:
    # worth 0.1 to the buyer (reservation 0.3); at t=0.5 the linear strategy's shortlist has three counters
    bad = Offer(values={"price": 120, "quantity": 100, "day": 5})
    return request(issues, time=0.5, history=[OfferRecord(sender="them", round=1, offer=bad)]), bad


@pytest.mark.anyio
async def test_scripted_llm_accepting_a_bad_deal_is_overruled(issues: list[Issue], buyer_prefs: Preferences) -> None:
    brain = Scripted([{"action": "accept", "offer": 0, "reason": "take it"}], cycle=True)
    u, space = LinearUtility(buyer_prefs, issues), outcome_space(issues)
    req, _bad = _below_reservation_state(issues, buyer_prefs)
    move = await guided_respond(SkillContext(brain), req, u, space, get_strategy("linear"))
    assert move.action is Action.COUNTER and move.source == "fallback"
    assert move.offer is not None and u(move.offer) >= u.reservation
    assert brain.requests, "the model was asked"
    schema = brain.requests[0].json_schema or {}
    assert set(schema["properties"]) == {"offer", "reason"} and schema.get("additionalProperties") is False
    assert len(brain.requests) == 3, "the invalid answer was retried, then replaced by the strategy's move"


@pytest.mark.anyio
async def test_enforce_overrules_any_move_below_reservation(issues: list[Issue], buyer_prefs: Preferences) -> None:
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("linear")
    req, bad = _below_reservation_state(issues, buyer_prefs)
    for move in (
        Response(action=Action.ACCEPT, source="model"),
        Response(action=Action.COUNTER, offer=bad, source="model"),
    ):
        fixed = enforce(move, req, u, space, strategy)
        assert fixed.source == "guardrail" and fixed.action is Action.COUNTER
        assert fixed.offer is not None and u(fixed.offer) >= u.reservation
    late = req.model_copy(update={"round": 6})
    assert enforce(Response(action=Action.ACCEPT), late, u, space, strategy).action is Action.WALK_AWAY


@pytest.mark.anyio
async def test_model_picks_a_shortlisted_counter(issues: list[Issue], buyer_prefs: Preferences) -> None:
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("linear")
    req, _ = _below_reservation_state(issues, buyer_prefs)
    base = strategy.respond(req, u, space)
    assert base.offer is not None
    order = display_order(req, len(shortlist(req, u, space, base.offer)))
    other = next(i for i, real in enumerate(order) if real != 0)  # a shown number that is not the strategy's
    brain = Scripted([{"offer": other, "reason": "closer to their offer"}])
    move = await guided_respond(SkillContext(brain), req, u, space, strategy)
    assert move.source == "model" and move.reason == "closer to their offer"
    assert move.offer is not None and move.offer != base.offer
    assert base.offer is not None and u(move.offer) >= u(base.offer) - 1e-9, "never softer than the strategy"


@pytest.mark.anyio
async def test_invalid_model_output_falls_back_to_the_strategy(issues: list[Issue], buyer_prefs: Preferences) -> None:
    brain = Scripted(["not json", {"offer": 9, "reason": "x"}, "{}"])
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("linear")
    req, _ = _below_reservation_state(issues, buyer_prefs)
    move = await guided_respond(SkillContext(brain), req, u, space, strategy)
    assert move.source == "fallback" and move.offer == strategy.respond(req, u, space).offer
    assert len(brain.requests) == 3


@pytest.mark.anyio
async def test_guided_agent_applies_guardrails_end_to_end(issues: list[Issue], buyer_prefs: Preferences) -> None:
    brain = Scripted([{"action": "accept", "offer": 0, "reason": "deal"}], cycle=True)
    agent = negotiator_agent("me", Negotiator(buyer_prefs, "linear"), brain=brain, guided=True)
    req, _ = _below_reservation_state(issues, buyer_prefs)
    move, _usage = await agent.call("respond", req.wire())
    assert isinstance(move, Response) and move.action is not Action.ACCEPT
    with pytest.raises(ValueError, match="needs a brain"):
        negotiator_agent("x", Negotiator(buyer_prefs), guided=True)


@pytest.mark.anyio
async def test_accepting_is_the_strategys_call_alone(issues: list[Issue], buyer_prefs: Preferences) -> None:
    brain = Scripted([])  # any model call would raise: it must not be asked
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("boulware")
    great = Offer(values={"price": 80, "quantity": 100, "day": 1})  # worth 1.0 to the buyer
    req = request(issues, time=0.5, history=[OfferRecord(sender="them", round=1, offer=great)])
    move = await guided_respond(SkillContext(brain), req, u, space, strategy)
    assert move.action is Action.ACCEPT and move.source == "strategy" and not brain.requests
