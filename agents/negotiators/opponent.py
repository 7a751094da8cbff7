"""Opponent modelling from offers: a frequency model of the opponent's issue weights and value preferences.

The model sees only the opponent's offers. Values it offers often are taken to be ones it likes; issues whose
value it rarely changes are taken to matter more to it. It works for any utility (it never reads mine) and
estimates the opponent's utility of many outcome rows at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from protocol.negotiation import Issue, Offer, OfferRecord

__all__ = ["FrequencyModel", "offers_of", "pareto_rows", "nash_row"]

VALUE_EXPONENT = 0.5  # flattens value estimates: a value offered a quarter as often as the favourite scores 0.5
WEIGHT_FLOOR = 0.1  # every issue keeps some weight, so an unseen preference is never assumed to be zero


@dataclass
class FrequencyModel:
    """Counts of the values the opponent offered per issue and of the issues it kept unchanged between offers."""

    issues: tuple[Issue, ...]
    counts: list[np.ndarray] = field(default_factory=list)
    unchanged: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offers: int = 0
    _last: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [np.zeros(len(i.values)) for i in self.issues]
        if self.unchanged.size == 0:
            self.unchanged = np.zeros(len(self.issues))

    @classmethod
    def from_offers(cls, issues: Sequence[Issue], offers: Sequence[Offer]) -> FrequencyModel:
        """A model of ``offers`` (oldest first), counted in one vectorised pass."""
        model = cls(tuple(issues))
        if not offers:
            return model
        points = np.array([[o.values[i.name] for i in model.issues] for o in offers], dtype=float)
        index = model._indices(points)
        model.counts = [
            np.bincount(index[:, k], minlength=len(i.values)).astype(float) for k, i in enumerate(model.issues)
        ]
        model.unchanged = (index[1:] == index[:-1]).sum(axis=0).astype(float)
        model.offers = len(offers)
        model._last = index[-1]
        return model

    def _indices(self, points: np.ndarray) -> np.ndarray:
        columns = [
            np.clip(np.searchsorted(np.asarray(i.values), points[:, k]), 0, len(i.values) - 1)
            for k, i in enumerate(self.issues)
        ]
        return np.stack(columns, axis=1)

    def update(self, offer: Offer) -> None:
        """Count one more opponent offer."""
        row = self._indices(np.array([[offer.values[i.name] for i in self.issues]], dtype=float))[0]
        for k, index in enumerate(row):
            self.counts[k][index] += 1
        if self._last is not None:
            self.unchanged += row == self._last
        self._last = row
        self.offers += 1

    def weights(self) -> np.ndarray:
        """Estimated issue weights (sum 1): an issue counts more the more often its value stayed the same and the
        more its offered values concentrate on one; uniform before any offer."""
        if self.offers == 0:
            return np.full(len(self.issues), 1.0 / len(self.issues))
        share = np.array([c.max() / self.offers for c in self.counts])
        steady = self.unchanged / (self.offers - 1) if self.offers > 1 else np.ones(len(self.issues))
        raw = WEIGHT_FLOOR + share + steady
        return np.asarray(raw / raw.sum())

    def value_scores(self, k: int) -> np.ndarray:
        """Estimated preference for each value of issue ``k`` in [0, 1] (1: its most offered value). On a numeric
        issue a value not offered scores by its distance from the offered ones (next to one it offers: almost as
        good to it; at the far end: 0), as preferences over prices, quantities and days are mostly monotone."""
        counts = self.counts[k]
        if counts.max() <= 0:
            return np.ones(len(counts))
        scores = ((counts + 1.0) / (counts.max() + 1.0)) ** VALUE_EXPONENT
        n = len(counts)
        if self.issues[k].labels is not None or n < 2:
            return np.asarray(scores)
        offered = np.flatnonzero(counts > 0)
        position = np.arange(n)
        near = 1.0 - np.abs(position[:, None] - offered[None, :]) / (n - 1)
        return np.asarray((near * scores[offered][None, :]).max(axis=1))

    def scores(self, points: np.ndarray) -> np.ndarray:
        """Estimated opponent utility of outcome rows (columns in issue order), in [0, 1]."""
        index = self._indices(points)
        weights = self.weights()
        total = np.zeros(len(points))
        for k in range(len(self.issues)):
            total += weights[k] * self.value_scores(k)[index[:, k]]
        return total


def offers_of(history: Sequence[OfferRecord], sender: str) -> list[Offer]:
    """The offers ``sender`` made, oldest first."""
    return [record.offer for record in history if record.sender == sender]


def pareto_rows(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Rows no other row beats on both utilities (ties kept once), ordered from best for me to best for them."""
    order = np.lexsort((-theirs, -mine))
    best_theirs = np.maximum.accumulate(theirs[order])
    previous = np.concatenate([[-np.inf], best_theirs[:-1]])
    return np.asarray(order[theirs[order] > previous])


def nash_row(mine: np.ndarray, theirs: np.ndarray, reservation: float) -> int | None:
    """The row maximising (my utility - my reservation) * their estimated utility, among rows I accept."""
    gain = np.where(mine >= reservation, (mine - reservation) * theirs, -np.inf)
    row = int(np.argmax(gain))
    return row if np.isfinite(gain[row]) else None
