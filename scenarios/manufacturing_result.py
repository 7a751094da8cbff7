"""What a smart-manufacturing run produces: contracts, negotiations, a delivery schedule, per-agent accounting."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from protocol.negotiation import Contract, Outcome

__all__ = [
    "ComponentSummary",
    "OfferPoint",
    "NegotiationSummary",
    "Delivery",
    "AgentReport",
    "AgentTiming",
    "Timing",
    "ScenarioResult",
]


class ComponentSummary(BaseModel):
    """The contract-net round for one component."""

    component: str
    quantity: int
    asked: int
    proposals: int
    refusals: int
    late: int
    failed: int
    invalid: int
    negotiated_with: list[str]
    winner: str | None
    withdrawn: dict[str, str] = Field(default_factory=dict)
    note: str = ""


class OfferPoint(BaseModel):
    """One offer of a negotiation, valued by both sides (for the offers-over-rounds picture)."""

    round: int
    sender: str
    buyer_utility: float
    seller_utility: float


class NegotiationSummary(BaseModel):
    """One bilateral negotiation: who, with which brain, how it ended, its offers, and the supplier's kind of
    preferences (``linear``, or non-linear: ``capacity_step``, ``volume_discount``)."""

    item: str
    buyer: str
    seller: str
    brain: str
    outcome: Outcome
    trace: list[OfferPoint]
    seller_preferences: str = "linear"


class Delivery(BaseModel):
    """One scheduled shipment (carrier None: no carrier could take it)."""

    shipment: str
    item: str
    origin: str
    destination: str
    quantity: int
    carrier: str | None
    pickup_day: int | None
    arrival_day: int | None
    price: float | None
    bids: int
    note: str = ""


class AgentReport(BaseModel):
    """Deterministic per-agent accounting: calls received, model calls and tokens."""

    calls: int
    model_calls: int
    tokens: int


class AgentTiming(BaseModel):
    """Measured per-agent cost: orchestrator-side seconds, model CPU seconds, energy estimate in joules."""

    seconds: float
    cpu_seconds: float
    energy_j: float


class Timing(BaseModel):
    """Everything that varies run to run."""

    wall_seconds: float
    agents: dict[str, AgentTiming]
    energy_j: float


class ScenarioResult(BaseModel):
    """The outcome of ``scenarios.smart_manufacturing.run``; ``stable()`` drops the timing."""

    config: dict[str, Any]
    components: list[ComponentSummary]
    contracts: list[Contract]
    negotiations: list[NegotiationSummary]
    schedule: list[Delivery]
    assembly_day: int | None
    completion_day: int | None
    on_time: bool
    total_cost: float
    agents: dict[str, AgentReport]
    timing: Timing

    def stable(self) -> dict[str, Any]:
        """The result without timings: identical run to run for rule brains and a fixed seed."""
        return self.model_dump(mode="json", exclude={"timing"})
