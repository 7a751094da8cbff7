"""Sealed-bid reverse auction for delivery slots: lowest price wins; ties go to the earlier day, then the
alphabetically first bidder. First-price (the winner is paid its bid) or second-price (paid the runner-up's).
Late, failed and invalid bids (no price, outside the day window) are recorded and never win.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

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
)
from orchestrator.negotiation.signing import ContractSigning
from protocol.negotiation import AuctionCall, Award, AwardReply, Bid, Contract, Offer

__all__ = ["AuctionResult", "sealed_bid_auction", "bid_problem"]


class AuctionResult(BaseModel):
    """Bids ranked best first, who did not bid or bid badly, and the confirmed winner with its payment."""

    call: AuctionCall
    ranked: list[Bid] = Field(default_factory=list)
    no_bids: list[str] = Field(default_factory=list)
    late: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    invalid: dict[str, str] = Field(default_factory=dict)
    winner: Bid | None = None
    payment: float | None = None
    withdrawn: dict[str, str] = Field(default_factory=dict)
    contract: SignedContract | None = Field(default=None, description="the winner's contract, signed by both")


def bid_problem(bid: Bid, call: AuctionCall, sent_to: str) -> str | None:
    """Why a bid cannot win ``call`` (None when it can)."""
    if bid.auction_id != call.auction_id or bid.bidder != sent_to:
        return f"bid for {bid.auction_id!r} by {bid.bidder!r} does not answer {call.auction_id!r} sent to {sent_to!r}"
    if bid.day is None:
        return "a bid with a price needs a pickup day"
    if bid.day < call.earliest_day or bid.day + bid.days > call.latest_day:
        return (
            f"pickup day {bid.day} + {bid.days} transit days is outside the window "
            f"{call.earliest_day}..{call.latest_day}"
        )
    return None


async def sealed_bid_auction(
    call: AuctionCall,
    bidders: Sequence[Party],
    *,
    pricing: Literal["first", "second"] = "first",
    concurrency: int = 256,
    timeout_s: float = 30.0,
    ledger: Ledger | None = None,
    recorder: NegotiationRecorder = NO_RECORDER,
    signing: ContractSigning | None = None,
) -> AuctionResult:
    """Collect sealed bids by ``call.deadline_s``, then award the best bid (the next one if it withdraws).
    ``recorder`` hears the start, every bid, the award and the end. With ``signing`` (the key of the buyer,
    ``call.destination``) the award carries signed contract terms and only a signed confirmation wins."""
    if signing is not None and signing.initiator != call.destination:
        raise ValueError(f"the signing key is {signing.initiator!r}'s, but the buyer is {call.destination!r}")
    infos = [PartyInfo(name=b.name, agent_id=b.agent_id, role=b.role or "bidder") for b in bidders]
    recorder.started(Started(protocol="auction", parties=infos, deadline_s=call.deadline_s))
    replies = await gather_replies(
        bidders, "bid", call, Bid, deadline_s=call.deadline_s, concurrency=concurrency, ledger=ledger
    )
    result = AuctionResult(call=call, late=replies.late, failed=replies.failed)
    valid: list[Bid] = []
    for name in sorted(replies.answers):
        bid = replies.answers[name]
        if bid.price is None and bid.auction_id == call.auction_id:
            result.no_bids.append(name)
        elif (problem := bid_problem(bid, call, name)) is not None:
            result.invalid[name] = problem
        else:
            valid.append(bid)
    result.ranked = sorted(valid, key=lambda b: (b.price, b.day, b.bidder))
    _record_bids(result, replies.answers, recorder)
    parties = {p.name: p for p in bidders}
    for i, bid in enumerate(result.ranked):
        assert bid.price is not None and bid.day is not None
        runner_up = next((b.price for b in result.ranked[i + 1 :] if b.price is not None), bid.price)
        payment = bid.price if pricing == "first" else runner_up
        offer = Offer(values={"day": float(bid.day), "price": float(payment), "quantity": float(call.quantity)})
        award = Award(cfp_id=call.auction_id, bidder=bid.bidder, accepted=True, offer=offer)
        signed = None
        if signing is not None:
            signed = signing.terms(
                contract_id=call.auction_id,
                negotiation_id=call.auction_id,
                protocol="auction",
                seller=bid.bidder,
                item=call.item,
                values=offer.values,
            )
            award = award.model_copy(update={"contract": signed[0], "signature": signed[1]})
        try:
            reply = await call_skill(
                parties[bid.bidder], "award", award, AwardReply, timeout_s=timeout_s, ledger=ledger
            )
        except NegotiationCallError as exc:
            result.withdrawn[bid.bidder] = f"no confirmation: {exc}"
            continue
        if reply.confirmed and signing is not None and signed is not None:
            contract = signing.countersigned(signed[0], signed[1], reply.signature)
            if contract is None:
                result.withdrawn[bid.bidder] = f"no contract: {signing.refused[bid.bidder]}"
                continue
            await signing.record(contract, recorder)
            result.contract = contract
        if reply.confirmed:
            result.winner, result.payment = bid, payment
            break
        result.withdrawn[bid.bidder] = reply.reason or "withdrawn"
    _record_end(result, recorder)
    return result


def _record_bids(result: AuctionResult, answers: dict[str, Bid], recorder: NegotiationRecorder) -> None:
    item = result.call.item
    valid = {b.bidder for b in result.ranked}
    steps = []
    for name, bid in answers.items():
        if name in valid:
            steps.append(BidStep(bidder=name, item=item, bid=bid.wire(), price=bid.price, valid=True))
        elif name in result.no_bids:
            why = f"no bid: {bid.reason}" if bid.reason else "no bid"
            steps.append(BidStep(bidder=name, item=item, bid=bid.wire(), valid=False, reason=why))
        else:
            why = f"invalid: {result.invalid.get(name, '')}"
            steps.append(BidStep(bidder=name, item=item, bid=bid.wire(), price=bid.price, valid=False, reason=why))
    steps += [BidStep(bidder=n, item=item, valid=False, reason="late: after the deadline") for n in result.late]
    steps += [BidStep(bidder=n, item=item, valid=False, reason=f"failed: {why}") for n, why in result.failed.items()]
    for step in sorted(steps, key=lambda s: s.bidder):
        recorder.bid(step)


def _record_end(result: AuctionResult, recorder: NegotiationRecorder) -> None:
    call, win = result.call, result.winner
    if win is None or win.day is None:
        recorder.award(AwardStep(item=call.item))
        why = "; ".join(f"{n}: {w}" for n, w in result.withdrawn.items())
        reason = f"every winning bidder withdrew: {why}" if why else "no valid bid"
        recorder.ended(Ended(outcome="no_agreement", rounds=1, reason=reason[:2000]))
        return
    terms = {"day": float(win.day), "price": float(result.payment or 0.0), "quantity": float(call.quantity)}
    offer = Offer(values=terms)
    seller, buyer = win.bidder, call.destination
    contract = Contract(contract_id=call.auction_id, buyer=buyer, seller=seller, item=call.item, terms=offer)
    recorder.award(AwardStep(item=call.item, winner=win.bidder, price=result.payment, contract=contract.wire()))
    recorder.ended(
        Ended(
            outcome="awarded",
            agreement=terms,
            rounds=1,
            parties_order=[win.bidder],
            reason=f"awarded to {win.bidder} at {result.payment:g}",
        )
    )
