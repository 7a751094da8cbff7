"""Offers planned by backward induction, for when the opponent's utility is known but its reservation value is not
(ANL's setting).

The opponent never offers below its reservation value, so the lowest utility it has offered itself bounds that
value from above; near the deadline a time-dependent concession curve fitted to its offers narrows it down.
From that estimate comes the chance that it accepts an outcome, and from the chance the plan: with ``k`` offers
left, offer the Pareto outcome that maximises my expected utility, knowing that a refusal leaves the plan for
``k - 1``. Its value with ``k`` offers left is what an offer on the table must beat to be accepted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BidPlan", "acceptance_chance", "estimate_reservation", "plan_bids"]

FIT_FROM = 0.9  # the curve fit runs from this share of the negotiation on; before it the gap's midpoint is used
FIT_MIN_LEVELS = 10  # distinct utility levels the opponent must have offered before the fit is trusted
_EXPONENTS = np.geomspace(0.1, 10.0, 25)
_SHARES = np.linspace(0.0, 1.0, 41)
_erf = np.frompyfunc(math.erf, 1, 1)


def estimate_reservation(times: Sequence[float], levels: Sequence[float]) -> float:
    """The opponent's reservation value estimated from the times (0-1) of its offers and its own utility of each.

    Before ``FIT_FROM`` (or with few distinct levels): half the lowest level it offered. Later: the ``rv`` of
    the curve ``rv + (top - rv) * (1 - t^e)`` closest to its offers (least squares over a grid, ``rv`` in
    [0, lowest], ``e`` in [0.1, 10])."""
    if not levels:
        return 0.5
    u = np.asarray(levels, dtype=float)
    lowest, top = float(u.min()), float(u.max())
    if times[-1] < FIT_FROM or len(np.unique(np.round(u, 3))) < FIT_MIN_LEVELS:
        return lowest / 2
    t = np.asarray(times, dtype=float)
    rv = _SHARES * lowest
    shape = 1.0 - t[None, :] ** _EXPONENTS[:, None]  # (exponents, offers)
    curves = rv[:, None, None] + (top - rv)[:, None, None] * shape[None, :, :]  # (rv, exponents, offers)
    error = ((curves - u[None, None, :]) ** 2).sum(axis=2)
    best = np.unravel_index(int(np.argmin(error)), error.shape)
    return float(rv[best[0]])


def acceptance_chance(theirs: np.ndarray, lowest: float, reservation: float) -> np.ndarray:
    """The chance the opponent accepts outcomes it values at ``theirs``: certain at or above the lowest level it
    has offered, else the chance its reservation value (normal around the estimate, spread a quarter of the
    lowest level) lies below."""
    sigma = max(lowest / 4.0, 1e-3)
    below = 0.5 + 0.5 * np.asarray(_erf((theirs - reservation) / (sigma * math.sqrt(2.0))), dtype=float)
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
