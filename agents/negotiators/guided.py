"""LLM-guided negotiation: code computes a shortlist of valid moves, the small model picks one and says why.

Guardrails are code, not prompt: the shortlist only holds counter-offers at or above the strategy's own target,
an accept is honoured only when the offer clears the reservation value, the hard limits and (within ``BAND``)
the strategy's target, and any invalid or failed model output falls back to the strategy's move.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from agents.agent import SkillContext
from agents.errors import AgentError
from agents.negotiators.strategies import BAND, Strategy, offers_in_band
from agents.negotiators.utility import LinearUtility, OutcomeSpace
from protocol.negotiation import Action, Offer, RespondRequest, Response

__all__ = ["guided_respond", "enforce", "choice_model", "MoveChoice", "MAX_OPTIONS"]

MAX_OPTIONS = 3


def choice_model(options: int, *, accept: bool) -> type[BaseModel]:
    """The model's answer schema: counter with one of ``options`` numbered offers (or accept, only when
    accepting is allowed: grammar-constrained decoding cannot produce a move the schema leaves out), and a reason."""
    indices = tuple(range(options))
    actions = Literal["accept", "counter"] if accept else Literal["counter"]
    fields: dict[str, Any] = {
        "action": (actions, ...),
        "offer": (Literal[indices], Field(description="number of the counter-offer to send")),
        "reason": (str, Field(max_length=120, description="one short line")),
    }
    return create_model("MoveChoice", **fields)


class MoveChoice(BaseModel):
    """A validated model answer (the schema of ``choice_model`` narrows these fields further)."""

    action: Literal["accept", "counter"]
    offer: int
    reason: str


def _describe(offer: Offer) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in offer.values.items())


def _prompt(req: RespondRequest, utility: LinearUtility, options: list[Offer], standing: Offer | None,
            accept_allowed: bool) -> str:
    better = [f"{n} ({'higher' if utility.preferences.increasing.get(n, True) else 'lower'} is better)"
              for n in utility.names]
    lines = [
        f"You negotiate for {req.me} with {req.opponent}{f' about {req.item}' if req.item else ''}.",
        f"Round {req.round} of {req.max_rounds}. Issues: {'; '.join(better)}.",
    ]
    if standing is not None:
        lines.append(f"Their offer: {_describe(standing)} (worth {utility(standing):.2f} to you)."
                     + (" You may accept it." if accept_allowed else ""))
    lines.append("Counter-offers you may send:")
    lines += [f"{i}: {_describe(o)} (worth {utility(o):.2f} to you)" for i, o in enumerate(options)]
    action = '"accept" or "counter"' if accept_allowed else '"counter"'
    lines.append('Pick the move most likely to reach a good deal. Answer as JSON: '
                 f'{{"action": {action}, "offer": number, "reason": "one short line"}}')
    return "\n".join(lines)


async def guided_respond(
    ctx: SkillContext, req: RespondRequest, utility: LinearUtility, space: OutcomeSpace, strategy: Strategy,
    *, options: int = MAX_OPTIONS,
) -> Response:
    """The strategy's move, unless the model picks another valid move from the shortlist."""
    base = strategy.respond(req, utility, space)
    if base.action is not Action.COUNTER or base.offer is None:
        return base  # accepting a good offer or walking away leaves nothing to choose
    standing = req.standing_offer
    target = max(strategy.target(req, utility), utility.reservation)
    shortlist = [base.offer]
    floor = utility(base.offer)
    for row in offers_in_band(utility, space, floor, floor + 2 * BAND, standing, options + 1):
        candidate = space.offer(row)
        if len(shortlist) < options and candidate.key() not in {o.key() for o in shortlist}:
            shortlist.append(candidate)
    accept_allowed = standing is not None and utility.acceptable(standing) and utility(standing) >= target - BAND
    if len(shortlist) == 1 and not accept_allowed:
        return base
    try:
        raw = await ctx.generate(_prompt(req, utility, shortlist, standing, accept_allowed),
                                    choice_model(len(shortlist), accept=accept_allowed), max_tokens=64)
    except AgentError as exc:
        return base.model_copy(update={"source": "fallback",
                                       "reason": f"model output unusable ({type(exc).__name__}); strategy move"})
    choice = MoveChoice.model_validate(raw.model_dump())
    reason = choice.reason[:120]
    if choice.action == "accept":
        if standing is None or not accept_allowed:
            worth = f"{utility(standing):.2f}" if standing is not None else "nothing"
            return base.model_copy(update={
                "source": "guardrail",
                "reason": f"overruled: model wanted to accept an offer worth {worth} "
                          f"(needs >= {max(target - BAND, utility.reservation):.2f}); strategy counter sent",
            })
        return Response(action=Action.ACCEPT, reason=reason, source="model")
    offer = shortlist[int(choice.offer)]
    if not utility.acceptable(offer):  # defence in depth: the shortlist never holds such an offer
        return base.model_copy(update={"source": "guardrail", "reason": "overruled: offer below reservation"})
    return Response(action=Action.COUNTER, offer=offer, reason=reason, source="model")


def enforce(response: Response, req: RespondRequest, utility: LinearUtility, space: OutcomeSpace,
            strategy: Strategy) -> Response:
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
    return fallback.model_copy(update={
        "source": "guardrail",
        "reason": f"overruled {response.source} move ({why}, reservation {utility.reservation:.2f}); {fallback.reason}",
    })
