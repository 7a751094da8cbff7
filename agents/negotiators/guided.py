"""LLM-guided negotiation: code computes a shortlist of valid moves, the small model picks one and says why.

Guardrails are code, not prompt. The strategy alone decides to accept (only offers worth at least its target) or
to walk away; when it counters, the shortlist holds its counter-offer and up to two alternatives worth at least as
much to me and about as close to the opponent's last offer, and the model's answer must match a JSON schema whose
enum holds only those numbers (grammar-constrained decoding). Invalid or failed model output falls back to the
strategy's move; ``enforce`` has the last word.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from agents.agent import SkillContext
from agents.errors import AgentError
from agents.negotiators.strategies import BAND, Strategy, offers_in_band
from agents.negotiators.utility import LinearUtility, OutcomeSpace
from protocol.negotiation import Action, Offer, RespondRequest, Response

__all__ = ["guided_respond", "enforce", "choice_model", "MoveChoice", "MAX_OPTIONS"]

MAX_OPTIONS = 3
NEAR_SLACK = 0.1  # alternatives may be this much farther (normalised L1) from the opponent's offer than the base


class MoveChoice(BaseModel):
    """The model's answer: which shortlisted counter-offer to send, and why. Nothing else is accepted."""

    model_config = ConfigDict(extra="forbid")

    offer: int = Field(ge=0, description="number of the counter-offer to send")
    reason: str = Field(max_length=120, description="one short line")


def choice_model(options: int) -> type[MoveChoice]:
    """``MoveChoice`` narrowed to ``options`` numbered offers: the schema the model decodes inside."""
    fields: dict[str, Any] = {"offer": (Literal[tuple(range(options))], Field(description="offer number"))}
    return create_model("MoveChoice", __base__=MoveChoice, **fields)


def _describe(offer: Offer) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in offer.values.items())


def _prompt(req: RespondRequest, utility: LinearUtility, options: list[Offer], standing: Offer | None) -> str:
    better = [
        f"{n} ({'higher' if utility.preferences.increasing.get(n, True) else 'lower'} is better)" for n in utility.names
    ]
    lines = [
        f"You negotiate for {req.me} with {req.opponent}{f' about {req.item}' if req.item else ''}.",
        f"Round {req.round} of {req.max_rounds}. Issues: {'; '.join(better)}.",
    ]
    if standing is not None:
        lines.append(f"Their last offer: {_describe(standing)} (worth {utility(standing):.2f} to you).")
    lines.append("Counter-offers you may send (all good for you):")
    lines += [f"{i}: {_describe(o)} (worth {utility(o):.2f} to you)" for i, o in enumerate(options)]
    lines.append(
        "Pick the counter-offer they are most likely to accept. "
        'Answer as JSON: {"offer": number, "reason": "one short line"}'
    )
    return "\n".join(lines)


def _row_of(space: OutcomeSpace, offer: Offer) -> int:
    target = [offer.values[i.name] for i in space.issues]
    return int((space.points == target).all(axis=1).argmax())


async def guided_respond(
    ctx: SkillContext,
    req: RespondRequest,
    utility: LinearUtility,
    space: OutcomeSpace,
    strategy: Strategy,
    *,
    options: int = MAX_OPTIONS,
) -> Response:
    """The strategy's move, unless the model picks another shortlisted counter-offer (never a softer one)."""
    base = strategy.respond(req, utility, space)
    if base.action is not Action.COUNTER or base.offer is None:
        return base  # accepting an offer worth the target, or walking away, is the strategy's call alone
    standing = req.standing_offer
    shortlist = [base.offer]
    floor = utility(base.offer)
    distance = space.distance_to(standing) if standing is not None else None
    reach = float(distance[_row_of(space, base.offer)]) + NEAR_SLACK if distance is not None else 0.0
    for row in offers_in_band(utility, space, floor, floor + 2 * BAND, standing, 2 * options):
        candidate = space.offer(row)
        close = distance is None or float(distance[row]) <= reach + 1e-9
        if close and len(shortlist) < options and candidate.key() not in {o.key() for o in shortlist}:
            shortlist.append(candidate)
    if len(shortlist) == 1:
        return base  # nothing to choose: no model call
    try:
        choice = await ctx.generate(
            _prompt(req, utility, shortlist, standing), choice_model(len(shortlist)), max_tokens=48
        )
    except AgentError as exc:
        return base.model_copy(
            update={"source": "fallback", "reason": f"model output unusable ({type(exc).__name__}); strategy move"}
        )
    offer = shortlist[choice.offer]
    if not utility.acceptable(offer):  # defence in depth: the shortlist never holds such an offer
        return base.model_copy(update={"source": "guardrail", "reason": "overruled: offer below reservation"})
    return Response(action=Action.COUNTER, offer=offer, reason=choice.reason[:120], source="model")


def enforce(
    response: Response, req: RespondRequest, utility: LinearUtility, space: OutcomeSpace, strategy: Strategy
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
