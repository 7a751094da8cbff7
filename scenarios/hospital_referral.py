"""Hospital referral: a GP books an MRI with a radiologist and a pharmacist to dispense the prescription.

The same protocols as the manufacturing scenario in another domain: a contract net among radiologists
(issues: waiting days, tariff, report turnaround), alternating offers with the two best, and a sealed-bid
auction among pharmacists (price and pickup day). Run: ``python -m scenarios.hospital_referral``.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Literal

import anyio
from pydantic import BaseModel

from agents.agent import Agent, SkillContext
from agents.negotiators import LinearUtility, Negotiator, Preferences, negotiator_agent
from orchestrator.negotiation import (
    NegotiationRecorder,
    NegotiationRuns,
    Party,
    award_best,
    collect_proposals,
    one_to_many,
    sealed_bid_auction,
    serve_parties,
)
from orchestrator.negotiation.runs import record_with, recording_runs
from protocol.negotiation import AuctionCall, Award, AwardReply, Bid, CallForProposals, Issue, Outcome

__all__ = ["ReferralResult", "run", "pharmacist_agent", "MRI_ISSUES", "GP_PREFERENCES"]

MRI_ISSUES = [
    Issue(name="wait_days", values=[1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 14.0], unit="day"),
    Issue(name="tariff", values=[180.0, 220.0, 260.0, 300.0, 340.0], unit="EUR"),
    Issue(name="report_hours", values=[4.0, 12.0, 24.0, 48.0], unit="h"),
]
GP_PREFERENCES = Preferences(
    weights={"wait_days": 0.5, "tariff": 0.3, "report_hours": 0.2},
    increasing={"wait_days": False, "tariff": False, "report_hours": False},
    reservation=0.3,
    limits={"wait_days": (0.0, 10.0)},
)


class ReferralResult(BaseModel):
    """The booked scan (None if no radiologist agreed), every negotiation, and the dispensing pharmacy."""

    radiologist: str | None
    terms: dict[str, float] | None
    negotiations: list[Outcome]
    pharmacist: str | None
    price: float | None
    pickup_day: int | None


def pharmacist_agent(name: str, markup: float, stock: int) -> Agent:
    """A pharmacist written from scratch: any agent with ``bid`` and ``award`` skills can join an auction."""
    agent = Agent(name, "Community pharmacist", tags=["pharmacy", "auction"])
    left = {"stock": stock}

    @agent.skill()
    async def bid(ctx: SkillContext, call: AuctionCall) -> Bid:
        """Bid to dispense the prescription: price by markup, pickup tomorrow when in stock."""
        if left["stock"] < call.quantity:
            return Bid(auction_id=call.auction_id, bidder=name, reason="out of stock")
        price = round(call.quantity * 12.0 * (1 + markup), 2)
        return Bid(auction_id=call.auction_id, bidder=name, price=price, day=call.earliest_day, days=0)

    @agent.skill()
    async def award(ctx: SkillContext, req: Award) -> AwardReply:
        """Reserve the stock for an award."""
        if req.accepted:
            left["stock"] -= int((req.offer.values if req.offer else {}).get("quantity", 0))
        return AwardReply(cfp_id=req.cfp_id, bidder=name, confirmed=req.accepted)

    return agent


def _radiologist(rng: random.Random, i: int) -> tuple[Agent, Preferences]:
    prefs = Preferences(
        weights={"wait_days": rng.uniform(0.2, 0.4), "tariff": rng.uniform(0.4, 0.6), "report_hours": 0.2},
        increasing={"wait_days": True, "tariff": True, "report_hours": True},
        reservation=0.2,
        limits={"wait_days": (float(rng.choice([1, 2, 3, 5])), 99.0)},
    )
    strategy = rng.choice(["boulware", "linear", "conceder"])
    return negotiator_agent(f"radiologist-{i}", Negotiator({"mri": prefs}, strategy)), prefs


async def arun(
    radiologists: int = 5,
    pharmacists: int = 3,
    seed: int = 1,
    transport: Literal["local", "http"] = "local",
    runs: NegotiationRuns | None = None,
) -> ReferralResult:
    """Book an MRI and a dispensing pharmacy; deterministic for a given seed. With ``runs`` every negotiation
    (the contract net, each alternating-offers thread, the auction) is recorded as an orchestrator run."""
    rng = random.Random(seed)
    made = [_radiologist(rng, i) for i in range(radiologists)]
    gp = negotiator_agent("gp", Negotiator(GP_PREFERENCES, "linear"), description="General practitioner")
    pharmacies = [
        pharmacist_agent(f"pharmacist-{j}", rng.uniform(0.05, 0.4), rng.choice([0, 30, 60])) for j in range(pharmacists)
    ]
    gp_u = LinearUtility(GP_PREFERENCES, MRI_ISSUES)
    async with serve_parties([gp, *[a for a, _ in made], *pharmacies], transport) as parties:
        cfp = CallForProposals(
            cfp_id="mri-1", buyer="gp", item="mri", quantity=1, due_day=10, issues=MRI_ISSUES, deadline_s=30
        )
        async with record_with(runs, "contract net: mri", protocol="contract_net") as recorder:
            round_ = await collect_proposals(
                cfp,
                [parties[a.name] for a, _ in made],
                lambda p: gp_u(p.offer) if p.offer else -1.0,
                recorder=recorder,
            )
            best = round_.ranked[:2]
            utilities = {a.name: (gp_u, LinearUtility(prefs, MRI_ISSUES)) for a, prefs in made}

            def thread_run(seller: Party) -> AbstractAsyncContextManager[NegotiationRecorder]:
                return record_with(runs, f"negotiation: mri, gp and {seller.name}", protocol="alternating")

            talks = await one_to_many(
                parties["gp"],
                [parties[p.bidder] for p in best],
                MRI_ISSUES,
                item="mri",
                max_rounds=6,
                utilities=utilities,
                id_prefix="mri",
                recorders=thread_run,
            )
            chosen = talks.best
            if chosen is not None and chosen.agreement is not None:
                winner = chosen.parties[1]
                round_.ranked = [p for p in round_.ranked if p.bidder == winner]
            else:
                round_.ranked = []  # nobody agreed: nothing is awarded (the round is recorded as such)
            terms = {chosen.parties[1]: chosen.agreement} if chosen is not None and chosen.agreement else None
            await award_best(round_, parties, terms=terms, recorder=recorder)
        call = AuctionCall(
            auction_id="rx-1",
            item="prescription",
            origin="pharmacy",
            destination="patient",
            quantity=30,
            earliest_day=1,
            latest_day=3,
            deadline_s=30,
        )
        async with record_with(runs, "auction: rx-1", protocol="auction") as recorder:
            auction = await sealed_bid_auction(call, [parties[p.name] for p in pharmacies], recorder=recorder)
    agreed = chosen is not None and chosen.agreement is not None
    return ReferralResult(
        radiologist=chosen.parties[1] if agreed and chosen else None,
        terms=chosen.agreement.values if agreed and chosen and chosen.agreement else None,
        negotiations=talks.outcomes,
        pharmacist=auction.winner.bidder if auction.winner else None,
        price=auction.payment,
        pickup_day=auction.winner.day if auction.winner else None,
    )


def run(
    radiologists: int = 5,
    pharmacists: int = 3,
    seed: int = 1,
    transport: Literal["local", "http"] = "local",
    record_runs: str | None = None,
) -> ReferralResult:
    """Synchronous ``arun``; ``record_runs`` (a database URL or SQLite path) records the negotiations as runs
    there and prints their ids."""

    async def go() -> ReferralResult:
        async with recording_runs(record_runs) as runs:
            result = await arun(radiologists, pharmacists, seed, transport, runs)
        if runs is not None:
            print(f"recorded negotiation runs in {record_runs}: {' '.join(runs.opened)}", file=sys.stderr)
        return result

    return anyio.run(go)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line and print what was booked."""
    p = argparse.ArgumentParser(prog="python -m scenarios.hospital_referral", description=__doc__.split("\n")[0])
    p.add_argument("--radiologists", type=int, default=5)
    p.add_argument("--pharmacists", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--transport", choices=["local", "http"], default="local")
    p.add_argument("--record-runs", metavar="DB", help="record every negotiation as an orchestrator run in DB")
    a = p.parse_args(argv)
    r = run(a.radiologists, a.pharmacists, a.seed, a.transport, a.record_runs)
    for o in r.negotiations:
        u = ", ".join(f"{k} {v:.2f}" for k, v in o.utilities.items())
        print(f"{o.negotiation_id}: {o.reason} after {o.rounds} rounds ({u})")
    print(f"MRI booked with {r.radiologist or 'nobody'}: {r.terms}")
    print(f"Prescription: {r.pharmacist or 'no pharmacy'} at {r.price} EUR, pickup day {r.pickup_day}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
