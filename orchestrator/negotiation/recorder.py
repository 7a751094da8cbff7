"""How a negotiation protocol reports its steps: started, offers, bids, awards, the end (``NegotiationRecorder``).

Every protocol takes an optional recorder (default ``NO_RECORDER``: nothing recorded, nothing spent). The step
models are the data of the run events ``negotiation.started|offer|bid|award|ended`` (the negotiation-runs contract
in docs/negotiation.md); ``orchestrator.negotiation.runs`` writes them to the run store, ``EventLog`` keeps them in
memory. Protocol objects inside a step (a proposal, a bid, a contract) are given as on the wire (camelCase).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from protocol.negotiation import Issue, Offer, Outcome

__all__ = [
    "NegotiationRecorder",
    "NoRecorder",
    "NO_RECORDER",
    "EventLog",
    "PartyInfo",
    "Started",
    "OfferStep",
    "BidStep",
    "AwardStep",
    "NashPoint",
    "Ended",
    "ProtocolName",
    "OutcomeKind",
    "STARTED",
    "OFFER",
    "BID",
    "AWARD",
    "ENDED",
    "MAX_FRONTIER",
    "move_of",
    "outcome_kind",
    "price_of",
    "frontier_points",
]

STARTED, OFFER, BID, AWARD, ENDED = (
    "negotiation.started",
    "negotiation.offer",
    "negotiation.bid",
    "negotiation.award",
    "negotiation.ended",
)
MAX_FRONTIER = 200  # Pareto points kept in negotiation.ended (evenly thinned beyond this; the ends always kept)

ProtocolName = Literal["alternating", "contract_net", "auction"]
OutcomeKind = Literal["agreement", "no_agreement", "awarded", "failed"]


class PartyInfo(BaseModel):
    """A party as the run shows it: its name in messages, its registry id (None: not a registered agent)."""

    name: str
    agent_id: str | None = None
    role: str


class Started(BaseModel):
    """``negotiation.started``: the protocol, who takes part, the issues, the limits."""

    protocol: ProtocolName
    parties: list[PartyInfo]
    issues: list[Issue] = Field(default_factory=list)
    max_rounds: int | None = None
    deadline_s: float | None = None


class OfferStep(BaseModel):
    """``negotiation.offer``: one alternating-offers move and how the receiver answered it (None: no answer)."""

    round: int
    sender: str
    receiver: str
    offer: dict[str, float]
    utilities: dict[str, float] = Field(default_factory=dict, description="each party's utility, where known")
    move: Literal["model", "strategy", "fallback"]
    overruled: bool = Field(description="the guardrail replaced what the model (or strategy) proposed")
    reason: str | None = None
    response: Literal["counter", "accept", "reject"] | None = None


class BidStep(BaseModel):
    """``negotiation.bid``: a contract-net proposal or an auction bid, valid or not (and why not)."""

    round: int = 1
    bidder: str
    item: str
    bid: dict[str, Any] = Field(default_factory=dict, description="the proposal or bid as on the wire")
    price: float | None = None
    valid: bool
    reason: str | None = None


class AwardStep(BaseModel):
    """``negotiation.award``: who won (None: nobody), at what price, on which contract."""

    item: str
    winner: str | None = None
    price: float | None = None
    contract: dict[str, Any] | None = None


class NashPoint(BaseModel):
    """The Nash bargaining outcome: the offer and each party's utility of it."""

    offer: dict[str, float]
    utilities: dict[str, float]


class Ended(BaseModel):
    """``negotiation.ended``: the outcome, and for two-party alternating offers the Pareto frontier and Nash point
    (``pareto`` points are [utility of parties_order[0], utility of parties_order[1]])."""

    outcome: OutcomeKind
    agreement: dict[str, float] | None = None
    utilities: dict[str, float] = Field(default_factory=dict)
    rounds: int = 0
    pareto: list[tuple[float, float]] = Field(default_factory=list)
    nash: NashPoint | None = None
    parties_order: list[str] = Field(default_factory=list)
    reason: str = ""


class NegotiationRecorder(Protocol):
    """Receives a protocol's steps as they happen. Calls are synchronous and must be cheap (queue, don't wait)."""

    def started(self, step: Started) -> None: ...

    def offer(self, step: OfferStep) -> None: ...

    def bid(self, step: BidStep) -> None: ...

    def award(self, step: AwardStep) -> None: ...

    def ended(self, step: Ended) -> None: ...


class NoRecorder:
    """Records nothing: the default of every protocol."""

    def started(self, step: Started) -> None:
        pass

    def offer(self, step: OfferStep) -> None:
        pass

    def bid(self, step: BidStep) -> None:
        pass

    def award(self, step: AwardStep) -> None:
        pass

    def ended(self, step: Ended) -> None:
        pass


NO_RECORDER = NoRecorder()


class EventLog:
    """Keeps every step in memory as ``(kind, data)``, the data exactly as the run event carries it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _add(self, kind: str, step: BaseModel) -> None:
        self.events.append((kind, step.model_dump(mode="json")))

    def started(self, step: Started) -> None:
        self._add(STARTED, step)

    def offer(self, step: OfferStep) -> None:
        self._add(OFFER, step)

    def bid(self, step: BidStep) -> None:
        self._add(BID, step)

    def award(self, step: AwardStep) -> None:
        self._add(AWARD, step)

    def ended(self, step: Ended) -> None:
        self._add(ENDED, step)

    def kinds(self) -> list[str]:
        """The event kinds in order."""
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The data of every event of ``kind``, in order."""
        return [data for k, data in self.events if k == kind]


def move_of(source: str) -> tuple[Literal["model", "strategy", "fallback"], bool]:
    """A ``Response.source`` as (move, overruled): ``guardrail`` means the strategy's move replaced another."""
    if source == "model":
        return "model", False
    if source == "fallback":
        return "fallback", False
    return "strategy", source == "guardrail"


def outcome_kind(outcome: Outcome) -> OutcomeKind:
    """How an alternating-offers ``Outcome`` ended: agreement, no agreement (deadline, walk-away), or failed (a
    call failed or timed out, a protocol violation)."""
    if outcome.agreement is not None:
        return "agreement"
    if outcome.reason.startswith(("timeout", "failed", "protocol violation", "cancelled")):
        return "failed"
    return "no_agreement"


def price_of(offer: Offer | None) -> float | None:
    """The price in an offer (its ``price`` or ``unit_price`` issue), None when it has none."""
    if offer is None:
        return None
    value = offer.values.get("price", offer.values.get("unit_price"))
    return None if value is None else float(value)


def frontier_points(frontier: list[tuple[float, float]], limit: int = MAX_FRONTIER) -> list[tuple[float, float]]:
    """At most ``limit`` frontier points, rounded to 4 places: evenly spaced along it, both ends kept."""
    if len(frontier) > limit:
        step = (len(frontier) - 1) / (limit - 1)
        frontier = [frontier[round(i * step)] for i in range(limit)]
    return [(round(a, 4), round(b, 4)) for a, b in frontier]
