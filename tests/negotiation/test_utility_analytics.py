"""Utilities, Pareto frontier and Nash point against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from agents.negotiators import LinearUtility, Preferences, outcome_space
from orchestrator.negotiation import analyse, nash_point, pareto_frontier
from protocol.negotiation import Issue, Offer

PRICE = Issue(name="price", values=[80.0, 100.0, 120.0])
DAY = Issue(name="day", values=[1.0, 2.0, 3.0])


def test_linear_utility_by_hand() -> None:
    prefs = Preferences(weights={"price": 3, "day": 1}, increasing={"price": False, "day": False}, reservation=0.2)
    u = LinearUtility(prefs, [PRICE, DAY])
    # weights normalise to 0.75 / 0.25; price 100 is half-way (0.5), day 1 is best (1.0)
    assert u(Offer(values={"price": 100, "day": 1})) == pytest.approx(0.75 * 0.5 + 0.25 * 1.0)
    assert u(Offer(values={"price": 80, "day": 1})) == pytest.approx(1.0)
    assert u(Offer(values={"price": 120, "day": 3})) == pytest.approx(0.0)
    assert not u.acceptable(Offer(values={"price": 120, "day": 2}))  # 0.125 < 0.2


def test_limits_make_outcomes_infeasible() -> None:
    prefs = Preferences(weights={"price": 1}, limits={"price": (100.0, 200.0)})
    u = LinearUtility(prefs, [PRICE, DAY])
    assert u(Offer(values={"price": 80, "day": 1})) == -1.0
    assert u(Offer(values={"price": 100, "day": 1})) == pytest.approx(0.5)


def test_outcome_space_enumerates_or_samples_deterministically() -> None:
    small = outcome_space([PRICE, DAY])
    assert small.complete and len(small.points) == 9
    big = [Issue(name=f"i{k}", values=[float(v) for v in range(10)]) for k in range(4)]
    a = outcome_space(big, limit=1000, samples=500)
    b = outcome_space(big, limit=1000, samples=500)
    assert not a.complete and np.array_equal(a.points, b.points)
    assert {tuple(r) for r in a.points} >= {(0.0,) * 4, (9.0,) * 4}


def test_pareto_frontier_by_hand() -> None:
    points = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.4], [0.6, 0.6], [0.6, 0.2]])
    frontier = pareto_frontier(points)
    assert [tuple(p) for p in frontier] == [(1.0, 0.0), (0.6, 0.6), (0.0, 1.0)]


def test_nash_point_by_hand() -> None:
    points = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.5], [0.5, 0.7], [0.9, 0.3]])
    # reservations (0.2, 0): products 0, -, 0.5*0.5=0.25, 0.3*0.7=0.21, 0.7*0.3=0.21 -> (0.7, 0.5)
    assert nash_point(points, (0.2, 0.0)) == (0.7, 0.5)
    assert nash_point(points, (0.0, 0.2)) == (0.5, 0.7)  # 0.5*0.5=0.25 beats 0.7*0.3=0.21
    assert nash_point(points, (0.95, 0.95)) is None


def test_analyse_distances_by_hand() -> None:
    # one issue, opposed preferences: every outcome is Pareto-optimal; utilities (1,0), (0.5,0.5), (0,1)
    a = LinearUtility(Preferences(weights={"price": 1}, increasing={"price": False}), [PRICE])
    b = LinearUtility(Preferences(weights={"price": 1}), [PRICE])
    mid = analyse(Offer(values={"price": 100}), [PRICE], a, b)
    assert mid.utilities == (0.5, 0.5) and mid.social_welfare == 1.0
    assert mid.pareto_distance == 0.0 and mid.nash == (0.5, 0.5) and mid.nash_distance == 0.0
    edge = analyse(Offer(values={"price": 80}), [PRICE], a, b)
    assert edge.nash_distance == pytest.approx(np.hypot(0.5, 0.5))
    # two issues where the buyer only cares about price and the seller only about day: a dominated agreement
    a2 = LinearUtility(Preferences(weights={"price": 1}, increasing={"price": False}), [PRICE, DAY])
    b2 = LinearUtility(Preferences(weights={"day": 1}), [PRICE, DAY])
    worst = analyse(Offer(values={"price": 120, "day": 1}), [PRICE, DAY], a2, b2)
    assert worst.utilities == (0.0, 0.0)
    assert worst.pareto_distance == pytest.approx(np.hypot(1.0, 1.0))  # the frontier is the single point (1, 1)
    assert analyse(None, [PRICE, DAY], a2, b2).utilities is None
