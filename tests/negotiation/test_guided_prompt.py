"""The guided negotiator's prompt and shortlist: a fixed prefix between turns, a shuffled shortlist whose shown
position is mapped back to the real offer, and controls that replace the model's pick."""

from __future__ import annotations

import os
import random
import re

import pytest

from agents.agent import SkillContext
from agents.llm import Scripted
from agents.llm.base import Completion, GenerationRequest
from agents.negotiators import LinearUtility, Preferences, get_strategy, outcome_space
from agents.negotiators.guided import display_order, guided_respond, shortlist
from protocol.negotiation import Issue, Offer, OfferRecord, RespondRequest

LINE = re.compile(r"^(\d+): (.+) \(worth [0-9.]+ to you\)$", re.MULTILINE)


def states(issues: list[Issue], prefs: Preferences, count: int) -> list[RespondRequest]:
    """Seeded negotiation states in which the linear strategy counters with a shortlist of two or more offers."""
    u, space, strategy = LinearUtility(prefs, issues), outcome_space(issues), get_strategy("linear")
    rng = random.Random(5)
    found: list[RespondRequest] = []
    while len(found) < count:
        offers = [space.offer(rng.randrange(len(space.points))) for _ in range(rng.randint(1, 4))]
        history = [OfferRecord(sender="them", round=i + 1, offer=o) for i, o in enumerate(offers)]
        req = RespondRequest(
            negotiation_id="n",
            me="me",
            opponent="them",
            item="steel",
            issues=issues,
            round=len(offers),
            max_rounds=10,
            time=rng.uniform(0.1, 0.9),
            history=history,
        )
        base = strategy.respond(req, u, space)
        if base.offer is not None and len(shortlist(req, u, space, base.offer)) >= 2:
            found.append(req)
    return found


def engine_text(request: GenerationRequest) -> str:
    """The text the llama.cpp brain tokenizes (system first)."""
    return f"{request.system}\n\n{request.prompt}" if request.system else request.prompt


def shown(request: GenerationRequest) -> list[str]:
    return [m.group(2) for m in LINE.finditer(request.prompt)]


def describe(offer: Offer) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in offer.values.items())


@pytest.mark.anyio
async def test_prompt_prefix_is_identical_between_turns(issues: list[Issue], buyer_prefs: Preferences) -> None:
    brain = Scripted([{"offer": 0, "reason": "x"}], cycle=True)
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("linear")
    for req in states(issues, buyer_prefs, 3):
        await guided_respond(SkillContext(brain), req, u, space, strategy)
    texts = [engine_text(r) for r in brain.requests]
    common = os.path.commonprefix(texts)
    # the instructions, the issues and my preferences come first and never change; only the turn does
    for needed in ("Answer as JSON", "price", "quantity", "day", "lower is better", "0.30"):
        assert needed in common, needed
    assert re.search(r"Round \d", common) is None and "Their last offer" not in common


@pytest.mark.anyio
async def test_shown_position_is_shuffled_and_mapped_back(issues: list[Issue], buyer_prefs: Preferences) -> None:
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("linear")
    own_counter: list[bool] = []
    for req in states(issues, buyer_prefs, 30):
        brain = Scripted([lambda r: {"offer": len(shown(r)) - 1, "reason": "last shown"}])
        base = strategy.respond(req, u, space)
        assert base.offer is not None
        move = await guided_respond(SkillContext(brain), req, u, space, strategy)
        lines = shown(brain.requests[0])
        listed = shortlist(req, u, space, base.offer)
        assert sorted(lines) == sorted(describe(o) for o in listed), "every option shown once"
        assert move.source == "model" and move.offer is not None and describe(move.offer) == lines[-1]
        own_counter.append(move.offer == base.offer)
    # always answering the last shown number sends the strategy's own counter sometimes, not always
    assert 0 < sum(own_counter) < len(own_counter)


def test_display_order_is_seeded_and_deterministic(issues: list[Issue], buyer_prefs: Preferences) -> None:
    req = states(issues, buyer_prefs, 1)[0]
    assert display_order(req, 3, seed=1) == display_order(req, 3, seed=1)
    assert sorted(display_order(req, 3, seed=1)) == [0, 1, 2]
    assert len({tuple(display_order(req, 3, seed=s)) for s in range(20)}) > 1


@pytest.mark.anyio
async def test_a_picker_replaces_the_model(issues: list[Issue], buyer_prefs: Preferences) -> None:
    brain = Scripted([])  # any model call would raise
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("linear")
    req = states(issues, buyer_prefs, 1)[0]
    base = strategy.respond(req, u, space)
    assert base.offer is not None
    move = await guided_respond(SkillContext(brain), req, u, space, strategy, picker=lambda listed: len(listed) - 1)
    assert move.source == "control" and move.offer == shortlist(req, u, space, base.offer)[-1]
    assert not brain.requests


class Recording:
    """Delegates to a real brain and keeps every completion (to read ``cached_tokens``)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.completions: list[Completion] = []
        self.requests: list[GenerationRequest] = []

    @property
    def model_name(self) -> str:
        return str(getattr(self.inner, "model_name", "inner"))

    async def generate(self, request: GenerationRequest) -> Completion:
        self.requests.append(request)
        completion = await self.inner.generate(request)  # type: ignore[attr-defined]
        self.completions.append(completion)
        return completion


@pytest.mark.model
@pytest.mark.anyio
async def test_the_engine_reuses_the_prefix_between_turns(issues: list[Issue], buyer_prefs: Preferences) -> None:
    from agents.llm import LlamaCpp

    real = LlamaCpp()
    brain = Recording(real)
    u, space, strategy = LinearUtility(buyer_prefs, issues), outcome_space(issues), get_strategy("linear")
    for req in states(issues, buyer_prefs, 2):
        await guided_respond(SkillContext(brain), req, u, space, strategy)
    prefix = len(real.engine().model.tokenize(brain.requests[0].system or ""))
    assert prefix > 40
    assert brain.completions[-1].cached_tokens >= prefix - 2  # only the turn was evaluated
