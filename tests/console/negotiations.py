"""Negotiations for console tests: scripted parties whose moves are marked model / fallback / overruled (started
through ``POST /negotiations``), and a negotiation recorded from a script with both parties' utilities known (so
its run carries the Pareto frontier and the Nash point)."""

from __future__ import annotations

from typing import Any

import anyio

from agents.agent import Agent, SkillContext
from agents.negotiators import LinearUtility, Negotiator, Preferences, negotiator_agent
from orchestrator.negotiation import NegotiationRuns, alternating_offers, serve_parties
from orchestrator.service import Orchestrator
from protocol.negotiation import Action, Issue, Offer, RespondRequest, Response

ISSUES = [{"name": "price", "values": [80, 90, 100, 110, 120]}, {"name": "day", "values": [1, 2, 3, 4, 5]}]
BUYER = Preferences(weights={"price": 0.7, "day": 0.3}, increasing={"price": False, "day": False}, reservation=0.2)
SELLER = Preferences(weights={"price": 0.8, "day": 0.2}, reservation=0.2)


def counter(source: str, **values: float) -> Response:
    return Response(action=Action.COUNTER, offer=Offer(values=values), source=source, reason=f"{source} move")


def scripted(name: str, moves: list[Response]) -> Agent:
    """A negotiator that replays fixed moves (with the ``source`` a guided negotiator reports)."""
    agent = Agent(name, "scripted negotiator")
    queue = list(moves)

    @agent.skill()
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        return queue.pop(0)

    return agent


def scripted_pair() -> tuple[Agent, Agent]:
    """Buyer opens (model), seller counters (fallback), the buyer's model move is overruled by the guardrail,
    the seller accepts: agreement on price 100, day 3."""
    buyer = scripted("buyer", [counter("model", price=80, day=1), counter("guardrail", price=100, day=3)])
    seller = scripted(
        "seller", [counter("fallback", price=120, day=5), Response(action=Action.ACCEPT, source="strategy")]
    )
    return buyer, seller


def negotiation_spec(buyer_id: str, seller_id: str) -> dict[str, Any]:
    """The ``POST /negotiations`` body for the scripted pair."""
    return {
        "protocol": "alternating",
        "name": "motor price (HTTP)",
        "item": "motor",
        "parties": [  # the preferences are for the record (the utility space), never sent to the agents
            {"agent_id": buyer_id, "role": "buyer", "preferences": BUYER.model_dump(mode="json")},
            {"agent_id": seller_id, "role": "seller", "preferences": SELLER.model_dump(mode="json")},
        ],
        "issues": ISSUES,
        "max_rounds": 8,
    }


def record_scripted_negotiation(orchestrator: Orchestrator) -> str:
    """Run a buyer/seller negotiation in-process with both utilities known, recorded as a run; its id."""
    issues = [Issue.model_validate(i) for i in ISSUES]
    agents = [
        negotiator_agent("buyer", Negotiator(BUYER, "linear")),
        negotiator_agent("seller", Negotiator(SELLER, "conceder")),
    ]
    utilities = (LinearUtility(BUYER, issues), LinearUtility(SELLER, issues))

    async def go() -> str:
        with anyio.fail_after(30):
            async with orchestrator.running(), serve_parties(agents) as parties:
                runs = NegotiationRuns(orchestrator)
                async with runs.recording("motor price (scenario)", protocol="alternating") as recorder:
                    await alternating_offers(
                        parties["buyer"], parties["seller"], issues, utilities=utilities, recorder=recorder
                    )
                return recorder.run_id

    return anyio.run(go)
