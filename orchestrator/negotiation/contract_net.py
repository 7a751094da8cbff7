"""Contract Net: call for proposals, collect proposals by a deadline, award the best (next best on withdrawal),
reject the rest. Late, failed and invalid proposals are recorded and never awarded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio
from pydantic import BaseModel, Field

from orchestrator.ledger import SignedContract
from orchestrator.negotiation.calls import Ledger, NegotiationCallError, Party, call_skill, gather_replies
from orchestrator.negotiation.recorder import (
    NO_RECORDER,
    AwardStep,
    BidStep,
    Ended,
    NegotiationRecorder,
    PartyInfo,
    Started,
    price_of,
)
from orchestrator.negotiation.signing import ContractSigning
from protocol.negotiation import Award, AwardReply, CallForProposals, Contract, Offer, Proposal, validate_offer

__all__ = ["ContractNetResult", "collect_proposals", "award_best", "contract_net"]


class ContractNetResult(BaseModel):
    """Everything a contract-net round saw: ranked valid proposals, refusals, late, failed, invalid, awards."""

    cfp: CallForProposals
    ranked: list[Proposal] = Field(default_factory=list, description="valid proposals, best first")
    refusals: list[Proposal] = Field(default_factory=list)
    late: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    invalid: dict[str, str] = Field(default_factory=dict)
    awarded: list[Proposal] = Field(default_factory=list)
    withdrawn: dict[str, str] = Field(default_factory=dict)
    contracts: list[SignedContract] = Field(default_factory=list, description="signed by both (with signing)")


def _rank(proposals: list[Proposal], score: Callable[[Proposal], float]) -> list[Proposal]:
    # ties go to the alphabetically first bidder, so a round is deterministic whatever the reply order
    return sorted(proposals, key=lambda p: (-score(p), p.bidder))


async def collect_proposals(
    cfp: CallForProposals,
    bidders: Sequence[Party],
    score: Callable[[Proposal], float],
    *,
    concurrency: int = 256,
    ledger: Ledger | None = None,
    recorder: NegotiationRecorder = NO_RECORDER,
) -> ContractNetResult:
    """Send the CFP to every bidder; keep valid proposals received before ``cfp.deadline_s``, ranked by score.
    ``recorder`` hears the start and every proposal (``award_best`` records the rest)."""
    parties = [PartyInfo(name=cfp.buyer, role="buyer")]
    parties += [PartyInfo(name=b.name, agent_id=b.agent_id, role=b.role or "bidder") for b in bidders]
    recorder.started(Started(protocol="contract_net", parties=parties, issues=cfp.issues, deadline_s=cfp.deadline_s))
    replies = await gather_replies(
        bidders, "propose", cfp, Proposal, deadline_s=cfp.deadline_s, concurrency=concurrency, ledger=ledger
    )
    result = ContractNetResult(cfp=cfp, late=replies.late, failed=replies.failed)
    valid: list[Proposal] = []
    for name in sorted(replies.answers):
        proposal = replies.answers[name]
        if proposal.cfp_id != cfp.cfp_id or proposal.bidder != name:
            result.invalid[name] = (
                f"proposal for cfp {proposal.cfp_id!r} by {proposal.bidder!r} does not answer "
                f"cfp {cfp.cfp_id!r} sent to {name!r}"
            )
        elif proposal.offer is None:
            result.refusals.append(proposal)
        elif (problem := validate_offer(proposal.offer, cfp.issues)) is not None:
            result.invalid[name] = problem
        else:
            valid.append(proposal)
    result.ranked = _rank(valid, score)
    _record_proposals(result, recorder)
    return result


def _record_proposals(result: ContractNetResult, recorder: NegotiationRecorder) -> None:
    item = result.cfp.item
    steps = [
        BidStep(bidder=p.bidder, item=item, bid=p.wire(), price=price_of(p.offer), valid=True) for p in result.ranked
    ]
    steps += [
        BidStep(bidder=p.bidder, item=item, bid=p.wire(), valid=False, reason=f"refused: {p.reason or 'no offer'}")
        for p in result.refusals
    ]
    steps += [BidStep(bidder=n, item=item, valid=False, reason=f"invalid: {why}") for n, why in result.invalid.items()]
    steps += [BidStep(bidder=n, item=item, valid=False, reason="late: after the deadline") for n in result.late]
    steps += [BidStep(bidder=n, item=item, valid=False, reason=f"failed: {why}") for n, why in result.failed.items()]
    for step in sorted(steps, key=lambda s: s.bidder):
        recorder.bid(step)


async def award_best(
    result: ContractNetResult,
    parties: dict[str, Party],
    *,
    awards: int = 1,
    terms: dict[str, Offer] | None = None,
    timeout_s: float = 30.0,
    notify_rejected: bool = True,
    ledger: Ledger | None = None,
    recorder: NegotiationRecorder = NO_RECORDER,
    signing: ContractSigning | None = None,
) -> ContractNetResult:
    """Award ranked proposals in order until ``awards`` are confirmed (withdrawals pass to the next best),
    then reject the others. ``terms`` replaces a bidder's proposed offer (e.g. after a negotiation).
    ``recorder`` hears every confirmed award (or that nobody won) and the end. With ``signing`` (the buyer's
    key) each award carries the contract terms signed by the buyer; only a confirmation signed by the bidder
    makes a contract (appended to ``signing``'s ledger), anything else counts as a withdrawal."""
    terms = terms or {}
    cfp_id = result.cfp.cfp_id
    if signing is not None and signing.initiator != result.cfp.buyer:
        raise ValueError(f"the signing key is {signing.initiator!r}'s, but the buyer is {result.cfp.buyer!r}")
    for proposal in result.ranked:
        if len(result.awarded) >= awards:
            break
        offer = terms.get(proposal.bidder, proposal.offer)
        award = Award(cfp_id=cfp_id, bidder=proposal.bidder, accepted=True, offer=offer)
        signed = None
        if signing is not None and offer is not None:
            signed = signing.terms(
                contract_id=f"{cfp_id}-{proposal.bidder}",
                negotiation_id=cfp_id,
                protocol="contract_net",
                seller=proposal.bidder,
                item=result.cfp.item,
                values=offer.values,
            )
            award = award.model_copy(update={"contract": signed[0], "signature": signed[1]})
        try:
            reply = await call_skill(
                parties[proposal.bidder], "award", award, AwardReply, timeout_s=timeout_s, ledger=ledger
            )
        except NegotiationCallError as exc:
            result.withdrawn[proposal.bidder] = f"no confirmation: {exc}"
            continue
        if reply.confirmed and signing is not None and signed is not None:
            contract = signing.countersigned(signed[0], signed[1], reply.signature)
            if contract is None:
                result.withdrawn[proposal.bidder] = f"no contract: {signing.refused[proposal.bidder]}"
                continue
            await signing.record(contract, recorder)
            result.contracts.append(contract)
        if reply.confirmed:
            result.awarded.append(proposal.model_copy(update={"offer": offer}))
        else:
            result.withdrawn[proposal.bidder] = reply.reason or "withdrawn"
    if notify_rejected:
        winners = {p.bidder for p in result.awarded}
        losers = [p.bidder for p in result.ranked if p.bidder not in winners and p.bidder not in result.withdrawn]

        async def reject(name: str) -> None:
            award = Award(cfp_id=cfp_id, bidder=name, accepted=False, reason="another proposal was preferred")
            try:
                await call_skill(parties[name], "award", award, AwardReply, timeout_s=timeout_s, ledger=ledger)
            except NegotiationCallError:
                pass  # a rejection that does not arrive changes nothing for the buyer

        async with anyio.create_task_group() as tg:
            for name in losers:
                tg.start_soon(reject, name)
    _record_awards(result, recorder)
    return result


def _record_awards(result: ContractNetResult, recorder: NegotiationRecorder) -> None:
    cfp = result.cfp
    for proposal in result.awarded:
        contract = Contract(
            contract_id=f"{cfp.cfp_id}-{proposal.bidder}",
            buyer=cfp.buyer,
            seller=proposal.bidder,
            item=cfp.item,
            terms=proposal.offer or Offer(values={}),
        )
        price = price_of(proposal.offer)
        recorder.award(AwardStep(item=cfp.item, winner=proposal.bidder, price=price, contract=contract.wire()))
    if not result.awarded:
        recorder.award(AwardStep(item=cfp.item))
    first = result.awarded[0] if result.awarded else None
    if first is not None:
        reason = f"awarded to {', '.join(p.bidder for p in result.awarded)}"
    elif result.withdrawn:
        reason = "every awarded bidder withdrew: " + "; ".join(f"{n}: {w}" for n, w in result.withdrawn.items())
    else:
        reason = "no valid proposal"
    recorder.ended(
        Ended(
            outcome="awarded" if first is not None else "no_agreement",
            agreement=first.offer.values if first is not None and first.offer is not None else None,
            rounds=1,
            parties_order=[cfp.buyer, first.bidder] if first is not None else [cfp.buyer],
            reason=reason[:2000],
        )
    )


async def contract_net(
    cfp: CallForProposals,
    bidders: Sequence[Party],
    score: Callable[[Proposal], float],
    *,
    awards: int = 1,
    concurrency: int = 256,
    notify_rejected: bool = True,
    ledger: Ledger | None = None,
    recorder: NegotiationRecorder = NO_RECORDER,
    signing: ContractSigning | None = None,
) -> ContractNetResult:
    """A full round: CFP, proposals by the deadline, award the best ``awards`` on their own terms, reject the rest
    (signed contracts with ``signing``: see ``award_best``)."""
    result = await collect_proposals(cfp, bidders, score, concurrency=concurrency, ledger=ledger, recorder=recorder)
    parties = {p.name: p for p in bidders}
    return await award_best(
        result,
        parties,
        awards=awards,
        notify_rejected=notify_rejected,
        ledger=ledger,
        recorder=recorder,
        signing=signing,
    )
