"""Sealed-bid reverse auction for delivery slots: lowest price wins; ties go to the earlier day, then the
alphabetically first bidder. First-price (the winner is paid its bid) or second-price (paid the runner-up's).
Late, failed and invalid bids (no price, outside the day window) are recorded and never win.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from orchestrator.negotiation.calls import Ledger, NegotiationCallError, Party, call_skill, gather_replies
from protocol.negotiation import AuctionCall, Award, AwardReply, Bid, Offer

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
) -> AuctionResult:
    """Collect sealed bids by ``call.deadline_s``, then award the best bid (the next one if it withdraws)."""
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
    parties = {p.name: p for p in bidders}
    for i, bid in enumerate(result.ranked):
        assert bid.price is not None and bid.day is not None
        runner_up = next((b.price for b in result.ranked[i + 1 :] if b.price is not None), bid.price)
        payment = bid.price if pricing == "first" else runner_up
        offer = Offer(values={"day": float(bid.day), "price": float(payment), "quantity": float(call.quantity)})
        award = Award(cfp_id=call.auction_id, bidder=bid.bidder, accepted=True, offer=offer)
        try:
            reply = await call_skill(
                parties[bid.bidder], "award", award, AwardReply, timeout_s=timeout_s, ledger=ledger
            )
        except NegotiationCallError as exc:
            result.withdrawn[bid.bidder] = f"no confirmation: {exc}"
            continue
        if reply.confirmed:
            result.winner, result.payment = bid, payment
            break
        result.withdrawn[bid.bidder] = reply.reason or "withdrawn"
    return result
