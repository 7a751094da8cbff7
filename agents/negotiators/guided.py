"""LLM-guided negotiation: code computes a shortlist of valid moves, the small model picks one and says why.

Guardrails are code, not prompt. The strategy alone decides to accept (only offers worth at least its target) or
to walk away; when it counters, the shortlist holds its counter-offer and up to two alternatives worth at least as
much to me and about as close to the opponent's last offer, and the model's answer must match a JSON schema whose
enum holds only those numbers (grammar-constrained decoding). The shortlist is shown in a seeded random order per
call, so a model that always answers one position gains nothing from it; its pick is mapped back to the real
offer. Invalid or failed model output falls back to the strategy's move; ``enforce`` has the last word.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from agents.agent import SkillContext
from agents.errors import AgentError
from agents.negotiators.strategies import BAND, Strategy, offers_in_band
from agents.negotiators.utility import OutcomeSpace, Utility
from protocol.negotiation import Action, Offer, RespondRequest, Response

__all__ = [
    "guided_respond",
    "enforce",
    "choice_model",
    "shortlist",
    "display_order",
    "instructions",
    "Picker",
    "MoveChoice",
    "MAX_OPTIONS",
]

MAX_OPTIONS = 3
NEAR_SLACK = 0.1  # alternatives may be this much farther (normalised L1) from the opponent's offer than the base

Picker = Callable[[list[Offer]], int]
"""Replaces the model's pick (benchmark controls): the shortlist in the strategy's order -> the index to send."""


class MoveChoice(BaseModel):
    """The model's answer: which shortlisted counter-offer to send, and why. Nothing else is accepted."""

    model_config = ConfigDict(extra="forbid")

    offer: int = Field(ge=0, description="number of the counter-offer to send")
    reason: str = Field(max_length=60, description="one short line")


def choice_model(options: int) -> type[MoveChoice]:
    """``MoveChoice`` narrowed to ``options`` numbered offers: the schema the model decodes inside."""
    fields: dict[str, Any] = {"offer": (Literal[tuple(range(options))], Field(description="offer number"))}
    return create_model("MoveChoice", __base__=MoveChoice, **fields)


def _describe(offer: Offer, utility: Utility) -> str:
    """The offer as the model reads it: categorical values by their labels."""
    issues = {i.name: i for i in utility.issues}
    return ", ".join(f"{k}={issues[k].label_of(v) if k in issues else f'{v:g}'}" for k, v in offer.values.items())


def instructions(req: RespondRequest, utility: Utility) -> str:
    """The fixed part of every prompt (task, answer format, issues, my preferences): sent first and the same on
    every turn and with every opponent on these issues, so the engine reuses its KV cells for it."""
    issues = utility.describe()
    about = f" about {req.item}" if req.item else ""
    return "\n".join(
        [
            f"You negotiate for {req.me}{about}. Each turn you send one counter-offer, chosen from a numbered "
            "list. Every listed offer is good enough for you; pick the one the other side is most likely to accept.",
            'Answer as JSON: {"offer": number, "reason": "one short line"}',
            "Issues:",
            *issues,
            f"No deal is worth {utility.reservation:.2f} to you.",
        ]
    )


def _turn(req: RespondRequest, utility: Utility, shown: list[Offer], standing: Offer | None) -> str:
    lines = [f"Round {req.round} of {req.max_rounds} with {req.opponent}."]
    if standing is not None:
        lines.append(f"Their last offer: {_describe(standing, utility)} (worth {utility(standing):.2f} to you).")
    lines.append("Counter-offers you may send:")
    lines += [f"{i}: {_describe(o, utility)} (worth {utility(o):.2f} to you)" for i, o in enumerate(shown)]
    lines.append("Your answer as JSON:")
    return "\n".join(lines)


def display_order(req: RespondRequest, count: int, seed: int = 0) -> list[int]:
    """The order in which ``count`` shortlisted offers are shown: ``order[i]`` is the shortlist index shown as
    number ``i``. Random per call, fixed by ``seed`` and the negotiation state (so a replayed negotiation shows
    the same order)."""
    state = repr((seed, req.me, req.opponent, req.item, req.round, [(r.sender, r.offer.key()) for r in req.history]))
    order = list(range(count))
    random.Random(int.from_bytes(hashlib.sha256(state.encode()).digest()[:8], "little")).shuffle(order)
    return order


def _row_of(space: OutcomeSpace, offer: Offer) -> int:
    target = [offer.values[i.name] for i in space.issues]
    return int((space.points == target).all(axis=1).argmax())


def shortlist(
    req: RespondRequest, utility: Utility, space: OutcomeSpace, base: Offer, options: int = MAX_OPTIONS
) -> list[Offer]:
    """The strategy's counter-offer ``base`` first, then up to ``options - 1`` alternatives worth at least as
    much to me (at most ``2 * BAND`` more) and at most ``NEAR_SLACK`` farther from the opponent's last offer."""
    standing = req.standing_offer
    found = [base]
    floor = utility(base)
    distance = space.distance_to(standing) if standing is not None else None
    reach = float(distance[_row_of(space, base)]) + NEAR_SLACK if distance is not None else 0.0
    for row in offers_in_band(utility, space, floor, floor + 2 * BAND, standing, 2 * options):
        candidate = space.offer(row)
        close = distance is None or float(distance[row]) <= reach + 1e-9
        if close and len(found) < options and candidate.key() not in {o.key() for o in found}:
            found.append(candidate)
    return found


async def guided_respond(
    ctx: SkillContext,
    req: RespondRequest,
    utility: Utility,
    space: OutcomeSpace,
    strategy: Strategy,
    *,
    options: int = MAX_OPTIONS,
    seed: int = 0,
    picker: Picker | None = None,
) -> Response:
    """The strategy's move, unless the model picks another shortlisted counter-offer (never a softer one).

    ``seed`` varies the shown order of the shortlist; ``picker`` replaces the model (source ``control``)."""
    base = strategy.respond(req, utility, space)
    if base.action is not Action.COUNTER or base.offer is None:
        return base  # accepting an offer worth the target, or walking away, is the strategy's call alone
    listed = shortlist(req, utility, space, base.offer, options)
    if len(listed) == 1:
        return base  # nothing to choose: no model call
    if picker is not None:
        offer, reason, source = listed[picker(listed)], "control pick", "control"
    else:
        order = display_order(req, len(listed), seed)
        shown = [listed[i] for i in order]
        standing = req.standing_offer
        try:
            choice = await ctx.generate(
                _turn(req, utility, shown, standing),
                choice_model(len(shown)),
                system=instructions(req, utility),
                max_tokens=48,
            )
        except AgentError as exc:
            return base.model_copy(
                update={"source": "fallback", "reason": f"model output unusable ({type(exc).__name__}); strategy move"}
            )
        offer, reason, source = shown[choice.offer], choice.reason, "model"
    if not utility.acceptable(offer):  # defence in depth: the shortlist never holds such an offer
        return base.model_copy(update={"source": "guardrail", "reason": "overruled: offer below reservation"})
    return Response(action=Action.COUNTER, offer=offer, reason=reason, source=source)


def enforce(
    response: Response, req: RespondRequest, utility: Utility, space: OutcomeSpace, strategy: Strategy
) -> Response:
    """The last word on any move, whoever made it: no accept or counter below the reservation value or outside
    the hard limits, nothing after the deadline. A move that breaks a rule becomes the strategy's move."""
    if req.round > req.max_rounds:
        return Response(action=Action.WALK_AWAY, reason="the deadline has passed", source="guardrail")
    standing = req.standing_offer
    if response.action is Action.ACCEPT and (standing is None or not utility.acceptable(standing)):
        why = "nothing to accept" if standing is None else f"offer worth {utility(standing):.2f}"
    elif response.action is Action.COUNTER and response.offer is not None and not utility.acceptable(response.offer):
        why = f"counter worth {utility(response.offer):.2f}"
    else:
        return response
    fallback = strategy.respond(req, utility, space)
    return fallback.model_copy(
        update={
            "source": "guardrail",
            "reason": f"overruled {response.source} move ({why}, reservation {utility.reservation:.2f}); "
            + fallback.reason,
        }
    )
