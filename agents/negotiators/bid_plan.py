"""Offers planned by backward induction, for when the opponent's utility is known but its reservation value is not
(ANL's setting).

The opponent's reservation value is taken as uniform below a bound: the lowest utility it has offered itself (it
never offers below that value) or, lower still, its utility at the Nash point of the two utilities without
reservation values (where ANL's scenario generator draws it from, so that a deal stays possible). From that prior
comes the chance that it accepts an outcome, and from the chance the plan: with ``k`` offers left, offer the
Pareto outcome that maximises my expected utility, knowing that a refusal leaves the plan for ``k - 1``. Its value
with ``k`` offers left is what an offer on the table must beat to be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BidPlan", "acceptance_chance", "reservation_bound", "plan_bids"]


def reservation_bound(mine: np.ndarray, theirs: np.ndarray, lowest: float) -> float:
    """The highest the opponent's reservation value is taken to be: the lower of ``lowest`` (the least it has
    offered itself) and its utility at the Nash point of ``mine`` and ``theirs`` (utilities of every outcome row,
    disagreement at 0)."""
    nash = int(np.argmax(np.clip(mine, 0.0, None) * np.clip(theirs, 0.0, None)))
    return max(min(lowest, float(theirs[nash])), 1e-3)


def acceptance_chance(theirs: np.ndarray, lowest: float, bound: float, caution: float = 3.0) -> np.ndarray:
    """The chance the opponent accepts outcomes it values at ``theirs``: certain at or above the lowest level it
    has offered, else the chance that a reservation value uniform on ``[0, bound]`` lies below, raised to
    ``caution`` (above 1: a refusal weighs more, as opponents do not take everything above their reservation
    value)."""
    below = np.clip(np.asarray(theirs, dtype=float) / bound, 0.0, 1.0) ** caution
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


def plan_bids(candidates: np.ndarray, mine: np.ndarray, chance: np.ndarray, reservation: float, offers: int) -> BidPlan:
    """Backward induction over ``offers`` offers among ``candidates`` (rows; ``mine`` and ``chance`` are indexed by
    row): with ``k`` left, offer the row maximising ``(mine - V[k-1]) * chance``; stops early once the plan no
    longer changes (more offers then add nothing)."""
    gain_of = mine[candidates]
    p = chance[candidates]
    rows = [int(candidates[int(np.argmax(gain_of))])]  # k = 0 is never offered; a placeholder
    values = [reservation]
    for _ in range(max(offers, 1)):
        gain = (gain_of - values[-1]) * p
        best = int(np.argmax(gain))
        if gain[best] <= 1e-12:
            break
        rows.append(int(candidates[best]))
        values.append(values[-1] + float(gain[best]))
        if len(values) > 2 and values[-1] - values[-2] < 1e-9:
            break
    if len(rows) == 1:
        rows.append(rows[0])
        values.append(reservation)
    return BidPlan(np.asarray(rows), np.asarray(values))
