"""Offers planned by backward induction, for when the opponent's utility is known but its reservation value is not
(ANL's setting).

The opponent's reservation value is taken as uniform below a bound: the lowest utility it has offered itself (it
never offers below that value) or, lower still, its utility at the Nash point of the two utilities without
reservation values (where ANL's scenario generator draws it from, so that a deal stays possible). Both are
measured on the utilities' own scales: where scores were normalised, from the score that stands for a raw 0
(``Utility.zero``), since ANL draws from 0 on raw utilities that need not span [0, 1], but only while my own
utility still shows its raw scale (``plan_zeros``). From that prior
comes the chance that it accepts an outcome, and from the chance the plan: with ``k`` offers left, offer the
Pareto outcome that maximises my expected gain over my reservation value (raised to ``risk``: below 1, surer deals
count for more), knowing that a refusal leaves the plan for ``k - 1``. Its value with ``k`` offers left, as a
certainty equivalent, is what an offer on the table must beat to be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BidPlan", "acceptance_chance", "plan_bids", "plan_zeros", "reservation_bound"]


def plan_zeros(mine: float, theirs: float) -> tuple[float, float]:
    """The scores the plan measures from: both raw zeros (``Utility.zero``) when my raw zero lies below my lowest
    score (my utility still shows its raw scale); else neither lower than its utility's lowest score (0). ANL's
    tournament rescales every utility to [0, 1] but reveals the opponent's before rescaling, so a raw zero on its
    side alone would tilt the Nash point my way and the prior towards opponents that accept anything."""
    if mine < -1e-9:
        return mine, theirs
    return max(mine, 0.0), max(theirs, 0.0)


def reservation_bound(
    mine: np.ndarray, theirs: np.ndarray, lowest: float, zeros: tuple[float, float] = (0.0, 0.0)
) -> float:
    """The highest the opponent's reservation value is taken to be: the lower of ``lowest`` (the least it has
    offered itself) and its utility at the Nash point of ``mine`` and ``theirs`` (utilities of every outcome row),
    measured from ``zeros`` (the scores of a raw utility of 0, mine and theirs: ``Utility.zero``)."""
    gains = np.clip(mine - zeros[0], 0.0, None) * np.clip(theirs - zeros[1], 0.0, None)
    nash = int(np.argmax(gains))
    return max(min(lowest, float(theirs[nash])), zeros[1] + 1e-3)


def acceptance_chance(theirs: np.ndarray, lowest: float, bound: float, caution: float, zero: float = 0.0) -> np.ndarray:
    """The chance the opponent accepts outcomes it values at ``theirs``: certain at or above the lowest level it
    has offered, else the chance that a reservation value uniform on ``[zero, bound]`` lies below, raised to
    ``caution`` (above 1: a refusal weighs more, as opponents do not take everything above their reservation
    value)."""
    scale = max(bound - zero, 1e-9)
    below = np.clip((np.asarray(theirs, dtype=float) - zero) / scale, 0.0, 1.0) ** caution
    return np.where(theirs >= lowest - 1e-12, 1.0, below)


@dataclass(frozen=True)
class BidPlan:
    """``rows[k]``: the outcome row to offer with ``k`` offers left; ``values[k]``: my expected utility then
    (``values[0]`` is my reservation value). Plans longer than ``len(rows)`` repeat the last entry."""

    rows: np.ndarray
    values: np.ndarray

    def row(self, offers_left: int) -> int:
        """The row to offer with ``offers_left`` offers left (at least 1)."""
        return int(self.rows[min(max(offers_left, 1), len(self.rows) - 1)])

    def value(self, offers_left: int) -> float:
        """My expected utility with ``offers_left`` offers left."""
        return float(self.values[min(max(offers_left, 0), len(self.values) - 1)])


def plan_bids(
    candidates: np.ndarray, mine: np.ndarray, chance: np.ndarray, reservation: float, offers: int, risk: float = 1.0
) -> BidPlan:
    """Backward induction over ``offers`` offers among ``candidates`` (rows; ``mine`` and ``chance`` are indexed by
    row): with ``k`` left, offer the row maximising ``(g(mine) - W[k-1]) * chance``, where ``g`` is the gain over
    my reservation value raised to ``risk`` (1: expected utility; below 1: a sure deal counts for more than a
    gamble of the same expected utility); stops early once the plan no longer changes. ``values`` are certainty
    equivalents, in my utility."""
    gain_of = np.clip(mine[candidates] - reservation, 0.0, None) ** risk
    p = chance[candidates]
    rows = [int(candidates[int(np.argmax(gain_of))])]  # k = 0 is never offered; a placeholder
    worth = [0.0]
    for _ in range(max(offers, 1)):
        gain = (gain_of - worth[-1]) * p
        best = int(np.argmax(gain))
        if gain[best] <= 1e-12:
            break
        rows.append(int(candidates[best]))
        worth.append(worth[-1] + float(gain[best]))
        if len(worth) > 2 and worth[-1] - worth[-2] < 1e-9:
            break
    if len(rows) == 1:
        rows.append(rows[0])
        worth.append(0.0)
    values = reservation + np.asarray(worth) ** (1.0 / risk)
    return BidPlan(np.asarray(rows), values)
