"""The `Utility` interface, the linear additive utility (the default), hard limits, and the (enumerated or sampled)
outcome space; non-linear utilities are in `agents.negotiators.utilities`."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from protocol.negotiation import Issue, Offer

__all__ = [
    "Preferences",
    "Utility",
    "LinearUtility",
    "OutcomeSpace",
    "outcome_space",
    "within_limits",
    "ENUMERATE_LIMIT",
    "SAMPLE_SIZE",
]

ENUMERATE_LIMIT = 200_000
SAMPLE_SIZE = 20_000


class Preferences(BaseModel):
    """A party's private preferences: issue weights, which way each issue is better, a reservation value.

    ``limits`` are hard bounds (capacity, cost floor, latest day): offers outside them are never made or accepted.
    Issues without a weight count for nothing. ``kind`` tells it apart from the other preference models on the wire
    (``agents.negotiators.preference_models``: ``table``, ``additive``); it is the default.
    """

    kind: Literal["linear"] = "linear"
    weights: dict[str, float] = Field(min_length=1, max_length=32)
    increasing: dict[str, bool] = Field(default_factory=dict, description="True: higher is better (default)")
    reservation: float = Field(default=0.0, ge=0.0, lt=1.0, description="utility of no deal, in [0, 1)")
    limits: dict[str, tuple[float, float]] = Field(default_factory=dict, description="issue -> (min, max)")

    @model_validator(mode="after")
    def _positive_weights(self) -> Preferences:
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("weights must be non-negative and sum to more than 0, e.g. {'price': 0.7, 'day': 0.3}")
        return self


class Utility(ABC):
    """A party's utility over outcomes: what strategies, guardrails and analytics use.

    Subclasses give ``scores`` (vectorised over outcome rows, columns in ``issues`` order, -1 outside the hard
    limits) and ``allowed``; one offer's utility and the guardrail follow from them.
    """

    issues: list[Issue]
    names: list[str]
    reservation: float
    zero: float = 0.0
    """The score that stands for a raw utility of 0, where scores were rescaled from another scale (a NegMAS ufun
    normalised to [0, 1]: ``-low / span``); bargaining solutions such as the Nash point measure from it."""

    @abstractmethod
    def scores(self, points: np.ndarray) -> np.ndarray:
        """Utilities of outcome rows (columns in issue order); rows outside the hard limits score -1."""

    @abstractmethod
    def allowed(self, points: np.ndarray) -> np.ndarray:
        """Which rows respect the hard limits."""

    def values_of(self, offer: Offer) -> np.ndarray:
        """The offer as one outcome row."""
        return np.array([[offer.values[n] for n in self.names]], dtype=float)

    def __call__(self, offer: Offer) -> float:
        """Utility of one offer (-1 when it breaks a hard limit)."""
        return float(self.scores(self.values_of(offer))[0])

    def acceptable(self, offer: Offer) -> bool:
        """Within the limits and at least the reservation value: the hard guardrail."""
        return self(offer) >= self.reservation

    def describe(self) -> list[str]:
        """One line per issue saying what this party prefers, for a model's prompt."""
        return [f"- {name}" for name in self.names]


class LinearUtility(Utility):
    """u(offer) = sum_i w_i * v_i(offer_i): each v_i maps the issue's range linearly onto [0, 1]."""

    def __init__(self, preferences: Preferences, issues: list[Issue]) -> None:
        self.preferences = preferences
        self.issues = issues
        self.names = [i.name for i in issues]
        total = sum(preferences.weights.get(n, 0.0) for n in self.names)
        if total <= 0:
            raise ValueError(f"preferences weigh none of the issues {self.names}; give a weight to at least one")
        self.weights = np.array([preferences.weights.get(n, 0.0) / total for n in self.names])
        self.reservation = preferences.reservation

    def scores(self, points: np.ndarray) -> np.ndarray:
        """Utilities of outcome rows (columns in issue order); rows outside the limits score -1."""
        low = np.array([i.low for i in self.issues])
        span = np.array([i.high - i.low for i in self.issues])
        norm = (points - low) / span
        up = np.array([self.preferences.increasing.get(n, True) for n in self.names])
        norm = np.where(up, norm, 1.0 - norm)
        utility = norm @ self.weights
        return np.where(self.allowed(points), utility, -1.0)

    def describe(self) -> list[str]:
        """Which way each issue is better and its weight."""
        up = self.preferences.increasing
        return [
            f"- {name}: {'higher' if up.get(name, True) else 'lower'} is better for you (weight {weight:.2f})"
            for name, weight in zip(self.names, self.weights, strict=True)
        ]

    def allowed(self, points: np.ndarray) -> np.ndarray:
        """Which rows respect the hard limits."""
        return within_limits(points, self.names, self.preferences.limits)


def within_limits(points: np.ndarray, names: list[str], limits: dict[str, tuple[float, float]]) -> np.ndarray:
    """Which outcome rows (columns named ``names``) lie within every limit (issue -> (min, max), both included)."""
    ok = np.ones(len(points), dtype=bool)
    for name, (lo, hi) in limits.items():
        if name in names:
            col = points[:, names.index(name)]
            ok &= (col >= lo) & (col <= hi)
    return ok


@dataclass(frozen=True)
class OutcomeSpace:
    """Outcomes of a discrete issue grid as rows (all of them, or a deterministic sample when too many)."""

    issues: tuple[Issue, ...]
    points: np.ndarray
    complete: bool

    def offer(self, row: int) -> Offer:
        return Offer(values={i.name: float(v) for i, v in zip(self.issues, self.points[row], strict=True)})

    def distance_to(self, offer: Offer) -> np.ndarray:
        """Normalised L1 distance of every outcome to ``offer`` (0: same, 1 per issue at opposite ends)."""
        span = np.array([i.high - i.low for i in self.issues])
        target = np.array([offer.values[i.name] for i in self.issues])
        return np.asarray(np.abs(self.points - target) / span).sum(axis=1)


def outcome_space(issues: list[Issue], *, limit: int = ENUMERATE_LIMIT, samples: int = SAMPLE_SIZE) -> OutcomeSpace:
    """All outcomes when there are at most ``limit``, else ``samples`` drawn with a seed fixed by the issues."""
    key = tuple((i.name, tuple(i.values), i.unit, tuple(i.labels) if i.labels else None) for i in issues)
    return _space(key, limit, samples)


_IssueKey = tuple[str, tuple[float, ...], str, tuple[str, ...] | None]


@lru_cache(maxsize=512)
def _space(key: tuple[_IssueKey, ...], limit: int, samples: int) -> OutcomeSpace:
    issues = tuple(Issue(name=n, values=list(v), unit=u, labels=list(b) if b else None) for n, v, u, b in key)
    sizes = [len(i.values) for i in issues]
    total = int(np.prod(sizes, dtype=object))
    if total <= limit:
        grids = np.meshgrid(*[np.array(i.values) for i in issues], indexing="ij")
        points = np.stack([g.ravel() for g in grids], axis=1)
        return OutcomeSpace(issues, points, complete=True)
    digest = hashlib.sha256(repr([(i.name, i.values) for i in issues]).encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    columns = [np.array(i.values)[rng.integers(0, len(i.values), samples)] for i in issues]
    # the extreme corners matter for analytics (best outcome of each side), so they are always included
    corners = np.array([[i.low for i in issues], [i.high for i in issues]])
    points = np.unique(np.vstack([np.stack(columns, axis=1), corners]), axis=0)
    return OutcomeSpace(issues, points, complete=False)
