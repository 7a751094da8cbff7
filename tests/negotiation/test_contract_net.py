"""Contract net rules over both transports: deadline (late proposals), refusals, invalid and failed replies,
ties, withdrawal after an award, rejections sent to the losers."""

from __future__ import annotations

import anyio
import pytest

from agents.agent import Agent, SkillContext
from orchestrator.negotiation import collect_proposals, contract_net, serve_parties
from protocol.negotiation import Award, AwardReply, CallForProposals, Issue, Offer, Proposal

ISSUES = [Issue(name="price", values=[10.0, 20.0, 30.0]), Issue(name="day", values=[1.0, 2.0])]


LATE_S = 2.0  # a late answer; deadlines in these tests are well under it


def bidder(name: str, *, price: float | None = 10.0, behaviour: str = "ok", log: list[str] | None = None) -> Agent:
    """A scripted bidder: proposes ``price`` (None refuses); behaviours: slow, wrong_id, broken, withdraw."""
    agent = Agent(name, "test bidder")

    @agent.skill()
    async def propose(ctx: SkillContext, cfp: CallForProposals) -> Proposal:
        if behaviour == "slow":
            await anyio.sleep(LATE_S)  # the answer arrives after the deadline and must be ignored
        if behaviour == "broken":
            raise RuntimeError("bidder crashed")
        cfp_id = "other-cfp" if behaviour == "wrong_id" else cfp.cfp_id
        offer = None if price is None else Offer(values={"price": price, "day": 1.0})
        return Proposal(cfp_id=cfp_id, bidder=name, offer=offer, reason="" if offer else "busy")

    @agent.skill()
    async def award(ctx: SkillContext, req: Award) -> AwardReply:
        if log is not None:
            log.append(f"{name}:{'award' if req.accepted else 'reject'}")
        confirmed = req.accepted and behaviour != "withdraw"
        return AwardReply(
            cfp_id=req.cfp_id,
            bidder=name,
            confirmed=confirmed,
            reason="withdrawn: sold out" if behaviour == "withdraw" else "",
        )

    return agent


def cfp(deadline_s: float = 5.0) -> CallForProposals:
    return CallForProposals(
        cfp_id="cfp-1", buyer="buyer", item="motor", quantity=10, due_day=9, issues=ISSUES, deadline_s=deadline_s
    )


def cheapest(p: Proposal) -> float:
    return -p.offer.values["price"] if p.offer else float("-inf")


@pytest.mark.anyio
async def test_round_classifies_every_reply(transport: str) -> None:
    agents = [
        bidder("a", price=20.0),
        bidder("b", price=None),
        bidder("c", behaviour="slow"),
        bidder("d", behaviour="wrong_id"),
        bidder("e", behaviour="broken"),
        bidder("f", price=10.0),
    ]
    with anyio.fail_after(30):
        async with serve_parties(agents, transport) as parties:
            result = await collect_proposals(cfp(deadline_s=0.5), list(parties.values()), cheapest)
    assert [p.bidder for p in result.ranked] == ["f", "a"]
    assert [p.bidder for p in result.refusals] == ["b"]
    assert result.late == ["c"]
    assert set(result.invalid) == {"d"} and "does not answer" in result.invalid["d"]
    assert set(result.failed) == {"e"} and "crashed" in result.failed["e"]


@pytest.mark.anyio
async def test_ties_go_to_the_first_name_and_losers_are_rejected(transport: str) -> None:
    log: list[str] = []
    agents = [bidder(n, price=10.0, log=log) for n in ("zed", "amy", "bob")] + [bidder("cy", price=30.0, log=log)]
    with anyio.fail_after(30):
        async with serve_parties(agents, transport) as parties:
            result = await contract_net(cfp(), list(parties.values()), cheapest)
    assert [p.bidder for p in result.ranked] == ["amy", "bob", "zed", "cy"]
    assert [p.bidder for p in result.awarded] == ["amy"]
    assert sorted(log) == ["amy:award", "bob:reject", "cy:reject", "zed:reject"]


@pytest.mark.anyio
async def test_withdrawal_passes_the_award_to_the_next_best(transport: str) -> None:
    log: list[str] = []
    agents = [
        bidder("a", price=10.0, behaviour="withdraw", log=log),
        bidder("b", price=20.0, log=log),
        bidder("c", price=30.0, log=log),
    ]
    with anyio.fail_after(30):
        async with serve_parties(agents, transport) as parties:
            result = await contract_net(cfp(), list(parties.values()), cheapest, awards=1)
    assert [p.bidder for p in result.awarded] == ["b"]
    assert result.withdrawn == {"a": "withdrawn: sold out"}
    assert sorted(log) == ["a:award", "b:award", "c:reject"]
