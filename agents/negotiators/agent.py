"""Negotiating agents: ordinary ``Agent``s with ``respond``, ``propose`` and ``award`` skills.

A negotiator holds private preferences per item and a strategy; with a brain and ``guided=True`` the small
model picks among the strategy's valid moves (see ``agents.negotiators.guided``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from agents.agent import Agent, SkillContext
from agents.llm.base import Brain
from agents.negotiators.contracts import SIGNER, agreement_problem, signed_agreement, signed_reply, terms_problem
from agents.negotiators.guided import enforce, guided_respond
from agents.negotiators.strategies import Strategy, get_strategy
from agents.negotiators.utilities import AnyPreferences, utility_for
from agents.negotiators.utility import Utility, outcome_space
from protocol.auth import SigningKey
from protocol.negotiation import Action, Award, AwardReply, CallForProposals, Issue, Proposal, RespondRequest, Response

__all__ = ["Negotiator", "negotiator_agent"]


class Negotiator:
    """The private side of a negotiating agent: preferences per item, strategy, remaining capacity."""

    def __init__(
        self,
        preferences: AnyPreferences | Mapping[str, AnyPreferences],
        strategy: str | Strategy = "boulware",
        *,
        capacity: int | None = None,
        opening: float = 0.6,
        signing_key: SigningKey | None = None,
    ) -> None:
        self.preferences = preferences
        self.strategy = get_strategy(strategy) if isinstance(strategy, str) else strategy
        self.capacity = capacity
        self.committed = 0
        self.opening = opening
        self.signing_key = signing_key

    def preferences_for(self, item: str) -> AnyPreferences | None:
        """Preferences for ``item`` with the remaining capacity as a hard quantity limit; None if not traded."""
        prefs = self.preferences.get(item) if isinstance(self.preferences, Mapping) else self.preferences
        if prefs is None or self.capacity is None:
            return prefs
        lo, hi = prefs.limits.get("quantity", (0.0, float("inf")))
        limits = {**prefs.limits, "quantity": (lo, min(hi, float(self.capacity - self.committed)))}
        return prefs.model_copy(update={"limits": limits})

    def utility(self, item: str, issues: list[Issue]) -> Utility | None:
        """My utility over ``issues`` for ``item`` (None when I do not trade it); any preference model
        (``utility_for``: linear, table, additive)."""
        prefs = self.preferences_for(item)
        return None if prefs is None else utility_for(prefs, issues)

    def proposal(self, me: str, cfp: CallForProposals) -> Proposal:
        """Opening terms for a CFP: the allowed outcome at the ``opening`` quantile of my utility, or a refusal."""
        utility = self.utility(cfp.item, cfp.issues)
        if utility is None:
            return Proposal(cfp_id=cfp.cfp_id, bidder=me, reason=f"{me} does not supply {cfp.item}")
        space = outcome_space(cfp.issues)
        scores = utility.scores(space.points)
        ok = scores >= utility.reservation
        if not ok.any():
            return Proposal(cfp_id=cfp.cfp_id, bidder=me, reason="no terms within my limits and reservation value")
        level = float(np.quantile(scores[ok], self.opening))
        rows = np.flatnonzero(ok & (scores >= level))
        row = int(rows[np.argmin(scores[rows])])
        return Proposal(cfp_id=cfp.cfp_id, bidder=me, offer=space.offer(row), reason=f"opening at {scores[row]:.2f}")

    def confirm(self, me: str, req: RespondRequest) -> Response:
        """Sign an agreement reached by alternating offers (``req.contract``) if it passes ``agreement_problem``;
        walk away naming the problem otherwise; accept unsigned without a key."""
        if self.signing_key is None:
            return Response(action=Action.ACCEPT, reason="agreed, but I hold no signing key")
        prefs = self.preferences_for(req.item)
        problem = agreement_problem(me, req, prefs.limits if prefs is not None else None)
        if problem is not None:
            return Response(action=Action.WALK_AWAY, reason=f"refused to sign: {problem}"[:500])
        return signed_agreement(me, req, self.signing_key)

    def award(self, me: str, award: Award) -> AwardReply:
        """Confirm an award while capacity lasts (and commit it); otherwise withdraw. An award with contract
        terms is confirmed only signed, and signed only when the terms pass ``terms_problem`` (my limits)."""
        if not award.accepted:
            return AwardReply(cfp_id=award.cfp_id, bidder=me, confirmed=False, reason="rejection noted")
        if award.contract is not None and self.signing_key is not None:
            prefs = self.preferences_for(award.contract.item)
            problem = terms_problem(me, award, prefs.limits if prefs is not None else None)
            if problem is not None:
                return AwardReply(
                    cfp_id=award.cfp_id, bidder=me, confirmed=False, reason=f"refused to sign: {problem}"[:500]
                )
        quantity = int((award.offer.values if award.offer else {}).get("quantity", 0))
        if self.capacity is not None and self.committed + quantity > self.capacity:
            left = self.capacity - self.committed
            return AwardReply(
                cfp_id=award.cfp_id,
                bidder=me,
                confirmed=False,
                reason=f"withdrawn: only {left} units of capacity left, award needs {quantity}",
            )
        self.committed += quantity
        if award.contract is not None and self.signing_key is not None:
            return signed_reply(me, award, self.signing_key)
        return AwardReply(cfp_id=award.cfp_id, bidder=me, confirmed=True, reason="confirmed")


def negotiator_agent(
    name: str,
    negotiator: Negotiator,
    *,
    brain: Brain | None = None,
    guided: bool = False,
    description: str = "",
    tags: list[str] | None = None,
    items: list[str] | None = None,
) -> Agent:
    """An agent that negotiates: ``respond`` (alternating offers), ``propose`` (answer a CFP), ``award``.

    ``items`` (what it trades) tag the negotiation skills, so a registry finds it by skill and item.
    """
    items = list(items or [])
    if guided and brain is None:
        raise ValueError("guided=True needs a brain, e.g. brain=LlamaCpp() or Scripted([...])")
    kind = "LLM-guided" if guided else negotiator.strategy.name
    agent = Agent(
        name,
        description or f"Negotiator ({kind})",
        brain=brain,
        tags=["negotiation", *(tags or [])],
        metadata={"strategy": negotiator.strategy.name, "guided": guided, SIGNER: negotiator},
    )

    @agent.skill(tags=["negotiation", "alternating-offers", *items])
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        """Answer the offer on the table: accept, counter, or walk away (or sign an agreement reached)."""
        if req.contract is not None:
            return negotiator.confirm(name, req)
        utility = negotiator.utility(req.item, req.issues)
        if utility is None:
            return Response(action=Action.WALK_AWAY, reason=f"{name} does not trade {req.item!r}")
        space = outcome_space(req.issues)
        if guided:
            move = await guided_respond(ctx, req, utility, space, negotiator.strategy)
        else:
            move = negotiator.strategy.respond(req, utility, space)
        return enforce(move, req, utility, space, negotiator.strategy)

    @agent.skill(tags=["negotiation", "contract-net", *items])
    async def propose(ctx: SkillContext, cfp: CallForProposals) -> Proposal:
        """Answer a call for proposals with opening terms, or refuse."""
        return negotiator.proposal(name, cfp)

    @agent.skill(tags=["negotiation", "contract-net"])
    async def award(ctx: SkillContext, req: Award) -> AwardReply:
        """Take an award (confirm or withdraw) or a rejection."""
        return negotiator.award(name, req)

    return agent
