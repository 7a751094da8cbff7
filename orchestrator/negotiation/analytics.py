"""Outcome analytics in utility space: Pareto frontier, Nash bargaining point, distances, social welfare.

Works for any ``Utility`` (linear, table, generalised additive), vectorised with numpy. Outcomes come from the issue
grid (all of them when small, a deterministic sample otherwise; see ``agents.negotiators.utility.outcome_space``).
Outcomes outside either party's hard limits are not feasible.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from agents.negotiators.utility import OutcomeSpace, Utility, outcome_space
from protocol.negotiation import Issue, Offer

__all__ = ["Analysis", "pareto_frontier", "nash_point", "analyse"]


class Analysis(BaseModel):
    """Utilities of an agreement and how far it is from the efficient (Pareto) and fair (Nash) outcomes;
    ``nash_offer`` is the outcome at the Nash point."""

    utilities: tuple[float, float] | None
    social_welfare: float | None
    pareto_distance: float | None
    nash_distance: float | None
    nash: tuple[float, float] | None
    frontier: list[tuple[float, float]]
    complete: bool
    nash_offer: Offer | None = None


def pareto_frontier(points: np.ndarray) -> np.ndarray:
    """The non-dominated rows of an (n, 2) array of utility pairs (each once), sorted by the first utility
    descending. Vectorised: one sort and a running maximum."""
    if len(points) == 0:
        return points.reshape(0, 2)
    ordered = points[np.lexsort((-points[:, 1], -points[:, 0]))]  # by u_a desc, then u_b desc
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(ordered[:-1, 1])])
    return ordered[ordered[:, 1] > best_before]


def nash_point(points: np.ndarray, reservations: tuple[float, float]) -> tuple[float, float] | None:
    """The utility pair maximising (u_a - r_a)(u_b - r_b) among outcomes both prefer to no deal."""
    row = _nash_row(points, reservations)
    return None if row is None else (float(points[row, 0]), float(points[row, 1]))


def _nash_row(points: np.ndarray, reservations: tuple[float, float]) -> int | None:
    """The row of ``points`` that maximises the Nash product (None when no outcome beats both reservations)."""
    ra, rb = reservations
    ok = np.flatnonzero((points[:, 0] >= ra) & (points[:, 1] >= rb))
    if len(ok) == 0:
        return None
    products = (points[ok, 0] - ra) * (points[ok, 1] - rb)
    return int(ok[int(np.argmax(products))])


def analyse(
    agreement: Offer | None, issues: list[Issue], a: Utility, b: Utility, *, space: OutcomeSpace | None = None
) -> Analysis:
    """Analytics for one bilateral negotiation (no agreement: only the frontier and the Nash point); ``space``
    replaces the default outcome space of the issues (e.g. every outcome of a grid larger than the default limit)."""
    space = space if space is not None else outcome_space(issues)
    ua, ub = a.scores(space.points), b.scores(space.points)
    feasible = (ua >= 0) & (ub >= 0)
    points = np.stack([ua[feasible], ub[feasible]], axis=1)
    frontier = pareto_frontier(points)
    nash_row = _nash_row(points, (a.reservation, b.reservation))
    nash = None if nash_row is None else (float(points[nash_row, 0]), float(points[nash_row, 1]))
    nash_offer = None if nash_row is None else space.offer(int(np.flatnonzero(feasible)[nash_row]))
    pairs = [(float(x), float(y)) for x, y in frontier]
    if agreement is None:
        return Analysis(
            utilities=None,
            social_welfare=None,
            pareto_distance=None,
            nash_distance=None,
            nash=nash,
            frontier=pairs,
            complete=space.complete,
            nash_offer=nash_offer,
        )
    here = np.array([a(agreement), b(agreement)])
    pareto = float(np.min(np.linalg.norm(frontier - here, axis=1))) if len(frontier) else None
    nash_d = float(np.linalg.norm(np.array(nash) - here)) if nash is not None else None
    return Analysis(
        utilities=(float(here[0]), float(here[1])),
        social_welfare=float(here.sum()),
        pareto_distance=pareto,
        nash_distance=nash_d,
        nash=nash,
        frontier=pairs,
        complete=space.complete,
        nash_offer=nash_offer,
    )
