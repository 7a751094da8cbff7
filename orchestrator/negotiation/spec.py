"""What a client sends to start a negotiation (``POST /negotiations``): ``NegotiationSpec``, bounded and checked.

Parties are named by their registry agent id; the role says what they do (and so which skills they must serve):
alternating offers takes two parties (``buyer`` / ``seller``; the first listed opens), a contract net and an
auction take ``bidder``s (the orchestrator calls for proposals and ranks them for the buyer named in
``contract_net``; it runs the auction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.negotiators.utilities import AnyPreferences, utility_for
from protocol.negotiation import Issue
from protocol.validation import stored_text

__all__ = [
    "NegotiationSpec",
    "PartySpec",
    "ContractNetTerms",
    "AuctionTerms",
    "MAX_PARTIES",
    "REQUIRED_SKILLS",
]

MAX_PARTIES = 100
REQUIRED_SKILLS = {"alternating": ("respond",), "contract_net": ("propose", "award"), "auction": ("bid", "award")}
"""The skills every party of a protocol must serve."""

if TYPE_CHECKING:
    Line = str
    Id = str
else:
    Line = stored_text(200)
    Id = stored_text(200, min_length=1)


class PartySpec(BaseModel):
    """One party: a registered agent (by id, or else by name), its role, and optionally its name in messages
    (default: the agent's registered name)."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Id = Field(description="the agent's registry id (or its name)")
    role: Literal["buyer", "seller", "bidder"]
    name: Id | None = Field(default=None, description="its name in the negotiation's messages")
    preferences: AnyPreferences | None = Field(
        default=None,
        description="alternating offers, for the record only: this party's preferences where the submitter knows "
        "them (its own agent, a simulation; 'kind' linear (default), table or additive). With both parties' given, "
        "every offer is valued and the run records the Pareto frontier and the Nash point. Never sent to any agent.",
    )


class ContractNetTerms(BaseModel):
    """A contract net's call for proposals: who buys, how many, by when, and how the buyer ranks proposals."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    buyer: Id = Field(default="buyer", description="the buyer's name in the messages")
    quantity: int = Field(default=1, ge=1, le=10_000_000)
    due_day: int = Field(default=0, ge=0, le=10_000)
    preferences: AnyPreferences = Field(
        description="the buyer's preferences ('kind' linear (default), table or additive): proposals are ranked "
        "by this utility"
    )
    awards: int = Field(default=1, ge=1, le=MAX_PARTIES, description="how many proposals to award")


class AuctionTerms(BaseModel):
    """A sealed-bid reverse auction for a delivery slot."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    origin: Id
    destination: Id
    quantity: int = Field(default=1, ge=1, le=10_000_000)
    earliest_day: int = Field(default=0, ge=0, le=10_000)
    latest_day: int = Field(default=0, ge=0, le=10_000)
    pricing: Literal["first", "second"] = "first"

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.latest_day < self.earliest_day:
            raise ValueError(f"latest_day {self.latest_day} is before earliest_day {self.earliest_day}")
        return self


class NegotiationSpec(BaseModel):
    """A negotiation to run: the protocol, its parties from the registry, the issues and the limits.

    ``deadline_s``: alternating offers, the whole negotiation (then it ends without a deal); contract net and
    auction, how long proposals or bids are collected (default 30 s). ``move_timeout_s`` bounds each call."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    protocol: Literal["alternating", "contract_net", "auction"]
    name: Line = Field(default="", description="shown in run listings (default: the protocol and the item)")
    item: Line = Field(default="", description="what is negotiated (required by contract_net and auction)")
    parties: list[PartySpec] = Field(min_length=1, max_length=MAX_PARTIES)
    issues: list[Issue] = Field(default_factory=list, max_length=32)
    max_rounds: int | None = Field(default=None, ge=1, le=200, description="alternating offers (default 10)")
    deadline_s: float | None = Field(default=None, gt=0, le=3_600)
    move_timeout_s: float = Field(default=60.0, gt=0, le=3_600)
    contract_net: ContractNetTerms | None = None
    auction: AuctionTerms | None = None

    @model_validator(mode="after")
    def _fits_protocol(self) -> Self:
        roles = [p.role for p in self.parties]
        if self.protocol == "alternating":
            if len(self.parties) != 2 or not self.issues:
                raise ValueError("alternating offers takes exactly two parties and at least one issue")
        else:
            if any(r != "bidder" for r in roles):
                raise ValueError(f"every party of a {self.protocol} is a 'bidder', got roles {roles}")
            if not self.item:
                raise ValueError(f"a {self.protocol} needs an 'item'")
        if self.protocol == "contract_net" and (self.contract_net is None or not self.issues):
            raise ValueError("a contract_net needs 'contract_net' terms (buyer preferences) and at least one issue")
        if self.protocol == "auction" and self.auction is None:
            raise ValueError("an auction needs 'auction' terms (origin, destination, day window)")
        names = [p.name or p.agent_id for p in self.parties]
        if len(set(names)) != len(names):
            raise ValueError("each party must appear once (agent ids and names must be distinct)")
        self._preferences_fit_issues()
        return self

    def _preferences_fit_issues(self) -> None:
        """Every preferences given must define a utility over the spec's issues (tables on the grid, boxes on
        issues it has), so a spec that cannot be valued is refused before the run starts."""
        given = [(f"parties[{k}].preferences", p.preferences) for k, p in enumerate(self.parties)]
        if self.contract_net is not None:
            given.append(("contract_net.preferences", self.contract_net.preferences))
        for where, prefs in given:
            if prefs is not None and self.issues:
                try:
                    utility_for(prefs, self.issues)
                except ValueError as exc:
                    raise ValueError(f"{where} do not fit the issues: {exc}") from None

    @property
    def title(self) -> str:
        """The run's name: ``name``, else the protocol and the item."""
        return self.name or f"{self.protocol} {self.item}".strip()
