"""Preference models beyond linear additive, as they travel in specs and configurations: outcome tables
(``TablePreferences``) and generalised additive preferences (``AdditivePreferences``: per-issue value functions and
box terms). ``AnyPreferences`` accepts any of them or the linear ``Preferences``, told apart by ``kind`` (absent:
linear, so older JSON keeps working). ``agents.negotiators.utilities`` turns them into utilities.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, FiniteFloat, PrivateAttr, Tag, model_validator

from agents.negotiators.utility import Preferences
from protocol.negotiation import MAX_ISSUE_VALUES

__all__ = [
    "TableEntry",
    "TablePreferences",
    "LinearValue",
    "PiecewiseValue",
    "TableValue",
    "ValueFunction",
    "Box",
    "AdditivePreferences",
    "AnyPreferences",
    "MAX_TABLE_ENTRIES",
    "MAX_PIECES",
    "MAX_BOXES",
]

MAX_TABLE_ENTRIES = 100_000
MAX_PIECES = 64
MAX_BOXES = 64

Limits = dict[str, tuple[float, float]]


def _limits_field() -> Any:
    return Field(default_factory=dict, max_length=32, description="issue -> (min, max): hard bounds")


def _reservation_field() -> Any:
    return Field(default=0.0, ge=0.0, lt=1.0, description="utility of no deal, in [0, 1)")


class TableEntry(BaseModel):
    """One outcome and its value: ``outcome`` maps issue names to values (a label for categorical issues)."""

    model_config = ConfigDict(extra="forbid")

    outcome: dict[str, float | str] = Field(min_length=1, max_length=32)
    value: FiniteFloat


class TablePreferences(BaseModel):
    """A value per outcome (ANL-style tables over categorical issues); outcomes not listed are worth ``default``.

    Every entry names the same issues (all of the negotiation's, or some: the others then count for nothing).
    ``normalise``: map the lowest value to 0 and the highest to 1 (else the values must already lie in [0, 1])."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["table"] = "table"
    entries: list[TableEntry] = Field(min_length=1, max_length=MAX_TABLE_ENTRIES)
    default: FiniteFloat = 0.0
    normalise: bool = True
    reservation: float = _reservation_field()
    limits: Limits = _limits_field()
    _compiled: dict[Any, tuple[np.ndarray, np.ndarray, float, float]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> TablePreferences:
        names = set(self.entries[0].outcome)
        for k, entry in enumerate(self.entries):
            if set(entry.outcome) != names:
                raise ValueError(
                    f"table entry {k} names the issues {sorted(entry.outcome)}, entry 0 names {sorted(names)}; "
                    "every entry must name the same issues"
                )
        if not self.normalise:
            values = [e.value for e in self.entries] + [self.default]
            if min(values) < 0.0 or max(values) > 1.0:
                raise ValueError("with normalise=false every value (and the default) must lie in [0, 1]")
        return self


class LinearValue(BaseModel):
    """Linear over the issue's range: 0 at the worse end, 1 at the better one."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["linear"] = "linear"
    increasing: bool = True


class PiecewiseValue(BaseModel):
    """Piecewise-linear through ``points`` ([x, value] pairs, x strictly increasing), flat beyond the ends: capacity
    steps, margins that matter less once covered, volume tiers."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["piecewise"] = "piecewise"
    points: list[tuple[FiniteFloat, FiniteFloat]] = Field(min_length=2, max_length=MAX_PIECES + 1)

    @model_validator(mode="after")
    def _increasing_x(self) -> PiecewiseValue:
        xs = [x for x, _ in self.points]
        if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
            raise ValueError(f"piecewise points need strictly increasing x, got x = {xs[:8]}; sort them")
        return self


class TableValue(BaseModel):
    """A value per issue value (keys: labels of a categorical issue, or numbers written as text); values not
    listed are worth ``default``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["table"] = "table"
    values: dict[str, FiniteFloat] = Field(min_length=1, max_length=MAX_ISSUE_VALUES)
    default: FiniteFloat = 0.0


ValueFunction = Annotated[LinearValue | PiecewiseValue | TableValue, Field(discriminator="kind")]
"""One issue's value function (``kind``: linear, piecewise or table), normalised to [0, 1] over the issue's grid."""


class Box(BaseModel):
    """A constraint ("hypervolume") term: ``bonus`` (negative: a penalty) for every outcome inside all ``bounds``
    (issue -> [min, max], both included), e.g. overtime above a capacity unless the price covers it."""

    model_config = ConfigDict(extra="forbid")

    bounds: dict[str, tuple[FiniteFloat, FiniteFloat]] = Field(min_length=1, max_length=32)
    bonus: float = Field(ge=-1.0, le=1.0, description="added to the weighted sum (in [0, 1]) before normalising")
    label: str = Field(default="", max_length=200, description="why, for people and prompts")

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        for name, (lo, hi) in self.bounds.items():
            if lo > hi:
                raise ValueError(f"box bound {name!r}: min {lo:g} is above max {hi:g}; give [min, max]")
        return self


class AdditivePreferences(BaseModel):
    """Generalised additive: u = normalise(sum_i w_i f_i(x_i) + sum_k bonus_k [x in box_k]).

    ``functions`` give an issue's value function (default: linear, higher is better); each is normalised to [0, 1]
    over the issue's grid, weights to a sum of 1, and the total to [0, 1] over the outcome space. Issues without a
    weight count for nothing (their functions too)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["additive"] = "additive"
    weights: dict[str, float] = Field(min_length=1, max_length=32)
    functions: dict[str, ValueFunction] = Field(default_factory=dict, max_length=32)
    boxes: list[Box] = Field(default_factory=list, max_length=MAX_BOXES)
    reservation: float = _reservation_field()
    limits: Limits = _limits_field()
    _ranges: dict[Any, tuple[float, float]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _weighted(self) -> AdditivePreferences:
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("weights must be non-negative and sum to more than 0, e.g. {'price': 0.7, 'day': 0.3}")
        return self


def _kind(value: Any) -> str:
    kind = value.get("kind", "linear") if isinstance(value, dict) else getattr(value, "kind", "linear")
    return str(kind)


AnyPreferences = Annotated[
    Annotated[Preferences, Tag("linear")]
    | Annotated[TablePreferences, Tag("table")]
    | Annotated[AdditivePreferences, Tag("additive")],
    Discriminator(
        _kind,
        custom_error_type="preferences_kind",
        custom_error_message="preferences 'kind' must be 'linear' (the default), 'table' or 'additive'",
    ),
]
"""Any preference model, told apart by ``kind`` (linear, table, additive; absent: linear, so older JSON works)."""
