"""Negotiation messages carried as A2A data parts: issues, offers, contract net, alternating offers, auctions.

Every type is a ``WireModel`` (camelCase on the wire), so any A2A agent that reads JSON data parts can take part.
Offers are points of a discrete grid: each issue lists the values it may take.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from protocol.a2a import WireModel

__all__ = [
    "Issue",
    "Offer",
    "CallForProposals",
    "Proposal",
    "Award",
    "AwardReply",
    "Action",
    "OfferRecord",
    "RespondRequest",
    "Response",
    "AuctionCall",
    "Bid",
    "Contract",
    "ContractTerms",
    "PartySignature",
    "Outcome",
    "validate_offer",
]

MAX_ISSUE_VALUES = 1_000
MAX_HISTORY = 400


class Issue(WireModel):
    """One negotiable dimension (unit price, quantity, delivery day, late penalty) and its allowed values.

    A categorical issue (colour, carrier, contract type) takes the indices 0..n-1 as values and names them in
    ``labels`` (one per value, in order): offers carry the index, people and models read the label."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    values: list[float] = Field(min_length=2, max_length=MAX_ISSUE_VALUES)
    unit: str = Field(default="", max_length=32)
    labels: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None,
        max_length=MAX_ISSUE_VALUES,
        exclude_if=lambda labels: labels is None,  # numeric issues dump exactly as before labels existed
        description="categorical issues: the name of each value, in order",
    )

    @model_validator(mode="after")
    def _sorted_unique(self) -> Self:
        if sorted(set(self.values)) != self.values:
            raise ValueError(f"issue {self.name!r}: values must be strictly increasing, e.g. [1, 2, 3]")
        if self.labels is not None:
            if len(self.labels) != len(self.values):
                raise ValueError(
                    f"issue {self.name!r}: give one label per value ({len(self.values)} values, "
                    f"{len(self.labels)} labels), e.g. Issue.categorical('colour', ['red', 'blue'])"
                )
            if len(set(self.labels)) != len(self.labels):
                raise ValueError(f"issue {self.name!r}: labels must be distinct, got {self.labels[:8]}")
        return self

    @classmethod
    def categorical(cls, name: str, labels: list[str], unit: str = "") -> Issue:
        """A categorical issue: values 0..n-1 named by ``labels``."""
        return cls(name=name, values=[float(i) for i in range(len(labels))], labels=labels, unit=unit)

    def label_of(self, value: float) -> str:
        """The label of ``value`` (its number, written short, when the issue has no labels)."""
        if self.labels is not None and value in self.values:
            return self.labels[self.values.index(value)]
        return f"{value:g}"

    def value_of(self, name: str | float) -> float:
        """The grid value a label (or a number, or a number written as text) stands for; ValueError if none."""
        if isinstance(name, str) and self.labels is not None and name in self.labels:
            return self.values[self.labels.index(name)]
        try:
            value = float(name)
        except ValueError:
            value = float("nan")
        if value not in self.values:
            known = self.labels if self.labels is not None else self.values
            raise ValueError(f"issue {self.name!r} has no value {name!r}; it takes one of {known[:8]}")
        return value

    @property
    def low(self) -> float:
        return self.values[0]

    @property
    def high(self) -> float:
        return self.values[-1]


class Offer(WireModel):
    """A complete proposal: one value per issue, keyed by issue name."""

    values: dict[str, float] = Field(max_length=32)

    def key(self) -> tuple[tuple[str, float], ...]:
        """A hashable, order-independent form (for comparing offers)."""
        return tuple(sorted(self.values.items()))


def validate_offer(offer: Offer, issues: list[Issue]) -> str | None:
    """Why ``offer`` is not a point of the issues' grid, or None when it is."""
    names = {i.name for i in issues}
    if set(offer.values) != names:
        return f"offer must give exactly the issues {sorted(names)}, got {sorted(offer.values)}"
    for issue in issues:
        if offer.values[issue.name] not in issue.values:
            return f"{issue.name}={offer.values[issue.name]} is not one of the allowed values {issue.values[:8]}..."
    return None


class CallForProposals(WireModel):
    """Contract net, step 1: the buyer asks who can supply ``item`` and on what terms, by ``deadline_s``."""

    cfp_id: str = Field(min_length=1, max_length=200)
    buyer: str = Field(min_length=1, max_length=200)
    item: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=10_000_000)
    due_day: int = Field(ge=0, le=10_000)
    issues: list[Issue] = Field(min_length=1, max_length=32)
    deadline_s: float = Field(gt=0, le=3600, description="seconds the buyer waits for proposals")


class Proposal(WireModel):
    """Contract net, step 2: a bidder's terms for a CFP, or a refusal (``offer`` absent)."""

    cfp_id: str = Field(min_length=1, max_length=200)
    bidder: str = Field(min_length=1, max_length=200)
    offer: Offer | None = None
    reason: str = Field(default="", max_length=500)

    @property
    def refused(self) -> bool:
        return self.offer is None


class ContractTerms(WireModel):
    """What both parties of an agreement sign (its JCS form): parties, item, agreed values per issue, the
    negotiation it ended, the protocol, and when the initiator proposed it as final (ISO 8601, UTC)."""

    contract_id: str = Field(min_length=1, max_length=200)
    negotiation_id: str = Field(min_length=1, max_length=200)
    protocol: str = Field(min_length=1, max_length=40, description="contract_net, alternating or auction")
    buyer: str = Field(min_length=1, max_length=200)
    seller: str = Field(min_length=1, max_length=200)
    item: str = Field(min_length=1, max_length=200)
    values: dict[str, float] = Field(max_length=32, description="issue -> agreed value")
    agreed_at: str = Field(min_length=1, max_length=40)


class PartySignature(WireModel):
    """A party's detached JWS (EdDSA) over the JCS form of ``ContractTerms``; its protected header names the key
    (``kid``) and carries the public JWK."""

    signer: str = Field(min_length=1, max_length=200)
    protected: str = Field(min_length=1, max_length=2_000)
    signature: str = Field(min_length=1, max_length=200)


class Award(WireModel):
    """Contract net, step 3: the buyer awards (``accepted``) or rejects a proposal. A signed award carries the
    ``contract`` terms and the buyer's ``signature``; the bidder confirms by signing them too."""

    cfp_id: str = Field(min_length=1, max_length=200)
    bidder: str = Field(min_length=1, max_length=200)
    accepted: bool
    offer: Offer | None = None
    reason: str = Field(default="", max_length=500)
    contract: ContractTerms | None = None
    signature: PartySignature | None = None


class AwardReply(WireModel):
    """The bidder's answer to an award: confirm, or withdraw (``confirmed`` false) with a reason. Confirming a
    signed award, the bidder adds its ``signature`` over the award's contract terms."""

    cfp_id: str = Field(min_length=1, max_length=200)
    bidder: str = Field(min_length=1, max_length=200)
    confirmed: bool
    reason: str = Field(default="", max_length=500)
    signature: PartySignature | None = None


class Action(StrEnum):
    """What a party does with the offer on the table."""

    ACCEPT = "accept"
    COUNTER = "counter"
    WALK_AWAY = "walk_away"


class OfferRecord(WireModel):
    """One offer of a negotiation's history: who made it, in which round."""

    sender: str = Field(min_length=1, max_length=200)
    round: int = Field(ge=1)
    offer: Offer


class RespondRequest(WireModel):
    """Alternating offers: the state a party needs to act. ``history`` ends with the offer on the table."""

    negotiation_id: str = Field(min_length=1, max_length=200)
    me: str = Field(min_length=1, max_length=200)
    opponent: str = Field(min_length=1, max_length=200)
    item: str = Field(default="", max_length=200, description="what is negotiated (selects the preferences)")
    issues: list[Issue] = Field(min_length=1, max_length=32)
    round: int = Field(ge=1)
    max_rounds: int = Field(ge=1, le=1_000)
    time: float = Field(ge=0.0, le=1.0, description="relative time: 0 at the start, 1 at the deadline")
    history: list[OfferRecord] = Field(default_factory=list, max_length=MAX_HISTORY)
    contract: ContractTerms | None = Field(
        default=None, description="after an accept: the agreed terms to sign (accept with a signature, or walk away)"
    )
    signature: PartySignature | None = Field(default=None, description="the opponent's signature over contract")

    @property
    def standing_offer(self) -> Offer | None:
        """The opponent's latest offer, if it is the last one made."""
        if self.history and self.history[-1].sender == self.opponent:
            return self.history[-1].offer
        return None


class Response(WireModel):
    """A party's move: accept the standing offer, counter with ``offer``, or walk away."""

    action: Action
    offer: Offer | None = None
    reason: str = Field(default="", max_length=500)
    source: str = Field(default="strategy", max_length=40, description="strategy, model, or guardrail")
    signature: PartySignature | None = Field(default=None, description="my signature over the request's contract")

    @model_validator(mode="after")
    def _counter_has_offer(self) -> Self:
        if self.action is Action.COUNTER and self.offer is None:
            raise ValueError("a counter move must carry an offer")
        return self


class AuctionCall(WireModel):
    """Sealed-bid reverse auction for a delivery slot: move ``quantity`` units within a day window."""

    auction_id: str = Field(min_length=1, max_length=200)
    item: str = Field(min_length=1, max_length=200)
    origin: str = Field(min_length=1, max_length=200)
    destination: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=10_000_000)
    earliest_day: int = Field(ge=0, le=10_000)
    latest_day: int = Field(ge=0, le=10_000)
    deadline_s: float = Field(gt=0, le=3600)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.latest_day < self.earliest_day:
            raise ValueError(f"latest_day {self.latest_day} is before earliest_day {self.earliest_day}")
        return self


class Bid(WireModel):
    """A sealed bid: price and pickup day (``price`` absent means no bid); ``days`` in transit."""

    auction_id: str = Field(min_length=1, max_length=200)
    bidder: str = Field(min_length=1, max_length=200)
    price: float | None = Field(default=None, ge=0)
    day: int | None = Field(default=None, ge=0)
    days: int = Field(default=1, ge=0, le=365)
    reason: str = Field(default="", max_length=500)


class Contract(WireModel):
    """An agreement: who sells what to whom, on which terms."""

    contract_id: str = Field(min_length=1, max_length=200)
    buyer: str
    seller: str
    item: str
    terms: Offer
    negotiation_id: str = ""


class Outcome(WireModel):
    """How one negotiation ended, with its analytics (utilities in [0, 1]; distances in utility space)."""

    negotiation_id: str
    parties: list[str]
    agreement: Offer | None = None
    rounds: int = 0
    reason: str = ""
    utilities: dict[str, float] = Field(default_factory=dict)
    social_welfare: float | None = None
    pareto_distance: float | None = None
    nash_distance: float | None = None
    history: list[OfferRecord] = Field(default_factory=list)
    sources: dict[str, int] = Field(default_factory=dict, description="moves per source: strategy, model, ...")
