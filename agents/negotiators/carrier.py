"""Carriers (distributors) for delivery-slot auctions: a calendar of truck capacity, sealed bids, bookings."""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, Field

from agents.agent import Agent, SkillContext
from agents.negotiators.contracts import SIGNER, signed_reply, terms_problem
from protocol.auth import SigningKey
from protocol.negotiation import AuctionCall, Award, AwardReply, Bid

__all__ = ["CarrierProfile", "Carrier", "carrier_agent"]


class CarrierProfile(BaseModel):
    """What a carrier can do and what it costs: trucks per day, units per truck, price per unit and day."""

    trucks: int = Field(default=2, ge=1, le=10_000)
    truck_capacity: int = Field(default=100, ge=1, le=10_000_000)
    cost_per_unit: float = Field(default=1.0, gt=0)
    margin: float = Field(default=0.2, ge=0, le=10)
    transit_days: int = Field(default=1, ge=0, le=60)
    rush_premium: float = Field(default=0.1, ge=0, le=10, description="extra margin per day earlier than latest")


class Carrier:
    """Capacity calendar of one carrier; bids the earliest feasible day, books on award."""

    def __init__(self, profile: CarrierProfile, *, signing_key: SigningKey | None = None) -> None:
        self.profile = profile
        self.signing_key = signing_key
        self.booked: dict[int, int] = defaultdict(int)

    def free(self, day: int) -> int:
        return self.profile.trucks * self.profile.truck_capacity - self.booked[day]

    def bid(self, me: str, call: AuctionCall) -> Bid:
        """Price for the latest day that still arrives in time and has room (cheapest for the carrier)."""
        p = self.profile
        last_pickup = call.latest_day - p.transit_days
        for day in range(last_pickup, call.earliest_day - 1, -1):
            if self.free(day) >= call.quantity:
                rush = p.rush_premium * (last_pickup - day)
                price = round(call.quantity * p.cost_per_unit * (1 + p.margin + rush), 2)
                return Bid(auction_id=call.auction_id, bidder=me, price=price, day=day, days=p.transit_days)
        return Bid(auction_id=call.auction_id, bidder=me, reason="no truck capacity in the time window")

    def award(self, me: str, award: Award) -> AwardReply:
        """Book the slot if it is still free; otherwise withdraw. With a key, an award with contract terms is
        booked only after its terms pass ``terms_problem``, and confirmed signed."""
        if not award.accepted:
            return AwardReply(cfp_id=award.cfp_id, bidder=me, confirmed=False, reason="rejection noted")
        signing = award.contract is not None and self.signing_key is not None
        if signing and (problem := terms_problem(me, award, {})) is not None:
            return AwardReply(cfp_id=award.cfp_id, bidder=me, confirmed=False, reason=f"refused to sign: {problem}")
        values = award.offer.values if award.offer else {}
        day, quantity = int(values.get("day", -1)), int(values.get("quantity", 0))
        if day < 0 or self.free(day) < quantity:
            return AwardReply(
                cfp_id=award.cfp_id,
                bidder=me,
                confirmed=False,
                reason=f"withdrawn: day {day} no longer has room for {quantity} units",
            )
        self.booked[day] += quantity
        if signing and self.signing_key is not None:
            return signed_reply(me, award, self.signing_key)
        return AwardReply(cfp_id=award.cfp_id, bidder=me, confirmed=True, reason=f"booked on day {day}")


def carrier_agent(name: str, carrier: Carrier, *, description: str = "") -> Agent:
    """An agent with ``bid`` (sealed bid for a delivery slot) and ``award`` skills."""
    agent = Agent(
        name,
        description or "Carrier bidding for delivery slots",
        tags=["logistics", "auction"],
        metadata={SIGNER: carrier},
    )

    @agent.skill(tags=["auction", "logistics"])
    async def bid(ctx: SkillContext, call: AuctionCall) -> Bid:
        """A sealed bid for moving a shipment within the call's day window."""
        return carrier.bid(name, call)

    @agent.skill(tags=["auction", "logistics"])
    async def award(ctx: SkillContext, req: Award) -> AwardReply:
        """Book (or decline) the awarded delivery slot."""
        return carrier.award(name, req)

    return agent
