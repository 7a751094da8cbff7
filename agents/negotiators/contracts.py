"""Signing contracts: a negotiator signs an award's contract terms only when they are what was awarded and within
its hard limits (the guardrail runs before the key is touched)."""

from __future__ import annotations

from collections.abc import Mapping

from agents.agent import Agent
from protocol.auth import SigningKey
from protocol.negotiation import Action, Award, AwardReply, PartySignature, RespondRequest, Response
from protocol.signing import SignatureError, sign_terms, verify_terms

__all__ = ["terms_problem", "signed_reply", "agreement_problem", "signed_agreement", "SIGNER", "set_signing_key"]

SIGNER = "signer"
"""``Agent.metadata`` key of a negotiating agent's party object (a ``Negotiator`` or ``Carrier``): what
``set_signing_key`` gives the key to."""


def set_signing_key(agent: Agent, key: SigningKey | None) -> bool:
    """Give the negotiating ``agent`` (made by ``negotiator_agent`` or ``carrier_agent``) the key it signs
    contracts with; False when the agent is not one of those."""
    party = agent.metadata.get(SIGNER)
    if party is None or not hasattr(party, "signing_key"):
        return False
    party.signing_key = key
    return True


def terms_problem(me: str, award: Award, limits: Mapping[str, tuple[float, float]] | None) -> str | None:
    """Why ``me`` must not sign ``award``'s contract terms, or None: they must name me as seller, repeat the
    awarded offer, carry the buyer's valid signature, and stay within my hard ``limits`` (issue -> (min, max);
    None: I do not trade the item)."""
    terms = award.contract
    if terms is None:
        return "the award carries no contract terms to sign"
    if terms.seller != me:
        return f"the contract names {terms.seller!r} as seller, not {me!r}"
    offered = award.offer.values if award.offer is not None else {}
    if terms.values != offered:
        return f"the contract's values {terms.values} are not the awarded offer {offered}"
    if award.signature is None or award.signature.signer != terms.buyer:
        return f"the contract is not signed by its buyer {terms.buyer!r}"
    try:
        verify_terms(terms, award.signature.wire())
    except SignatureError as exc:
        return f"the buyer's signature does not hold: {exc}"
    return _limits_problem(me, terms.item, terms.values, limits)


def _limits_problem(
    me: str, item: str, values: Mapping[str, float], limits: Mapping[str, tuple[float, float]] | None
) -> str | None:
    if limits is None:
        return f"{me} does not trade {item!r}"
    for issue, (low, high) in limits.items():
        value = values.get(issue)
        if value is not None and not low <= value <= high:
            return f"{issue}={value:g} is outside my limits [{low:g}, {high:g}]"
    return None


def agreement_problem(me: str, req: RespondRequest, limits: Mapping[str, tuple[float, float]] | None) -> str | None:
    """Why ``me`` must not sign the alternating-offers agreement in ``req.contract``, or None: it must be between
    me and my opponent in this negotiation, hold the last offer made, carry the opponent's valid signature if it
    carries one, and stay within my hard ``limits``."""
    terms = req.contract
    if terms is None:
        return "the request carries no contract terms to sign"
    if {terms.buyer, terms.seller} != {me, req.opponent} or terms.negotiation_id != req.negotiation_id:
        return f"the contract is not between {me!r} and {req.opponent!r} in negotiation {req.negotiation_id!r}"
    if not req.history or terms.values != req.history[-1].offer.values or terms.item != req.item:
        return "the contract's values are not the offer accepted"
    if req.signature is not None:
        if req.signature.signer != req.opponent:
            return f"the contract is signed by {req.signature.signer!r}, not by {req.opponent!r}"
        try:
            verify_terms(terms, req.signature.wire())
        except SignatureError as exc:
            return f"{req.opponent}'s signature does not hold: {exc}"
    return _limits_problem(me, terms.item, terms.values, limits)


def signed_agreement(me: str, req: RespondRequest, key: SigningKey) -> Response:
    """An accept carrying my signature over ``req.contract`` (check ``agreement_problem`` first)."""
    assert req.contract is not None
    signature = PartySignature.model_validate(sign_terms(req.contract, key, me))
    return Response(action=Action.ACCEPT, reason="agreed and signed", signature=signature)


def signed_reply(me: str, award: Award, key: SigningKey) -> AwardReply:
    """A confirmation of ``award`` carrying my signature over its contract terms (check ``terms_problem`` first)."""
    assert award.contract is not None
    signature = PartySignature.model_validate(sign_terms(award.contract, key, me))
    return AwardReply(
        cfp_id=award.cfp_id, bidder=me, confirmed=True, reason="confirmed and signed", signature=signature
    )
