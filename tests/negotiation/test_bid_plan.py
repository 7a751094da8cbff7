"""Planned offers for a known opponent utility: the reservation estimate, the acceptance model and the plan."""

from __future__ import annotations

import numpy as np
import pytest

from agents.negotiators.bid_plan import acceptance_chance, estimate_reservation, plan_bids


def test_the_reservation_estimate_reads_a_concession_curve_near_the_deadline() -> None:
    times = list(np.linspace(0.02, 1.0, 50))
    levels = list(0.3 + (0.9 - 0.3) * (1 - np.asarray(times) ** 3))
    assert estimate_reservation(times, levels) == pytest.approx(0.3, abs=0.03)
    # early, or with few distinct levels: half the lowest level offered (it never offers below its reservation)
    assert estimate_reservation(times[:20], levels[:20]) == pytest.approx(min(levels[:20]) / 2)
    assert estimate_reservation([0.95, 0.99], [0.8, 0.7]) == pytest.approx(0.35)
    assert estimate_reservation([], []) == 0.5


def test_acceptance_is_certain_at_levels_the_opponent_offered_and_falls_below_its_reservation() -> None:
    theirs = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    chance = acceptance_chance(theirs, lowest=0.6, reservation=0.3)
    assert list(chance[3:]) == [1.0, 1.0, 1.0]
    assert chance[0] < 0.05 < chance[1] < 0.5 < chance[2] < 1.0
    assert np.all(np.diff(chance) >= 0)


def test_the_plan_concedes_as_offers_run_out_and_is_worth_the_reservation_at_the_end() -> None:
    mine = np.linspace(1.0, 0.0, 11)
    theirs = 1.0 - mine
    chance = acceptance_chance(theirs, lowest=0.8, reservation=0.4)
    plan = plan_bids(np.arange(11), mine, chance, reservation=0.2, offers=50)
    assert plan.value(0) == 0.2
    values = [plan.value(k) for k in range(1, 60)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))  # more offers left: never worth less
    asks = [mine[plan.row(k)] for k in range(1, 60)]
    assert all(b >= a for a, b in zip(asks, asks[1:], strict=False))  # and never asking less
    assert asks[0] < asks[-1] and plan.value(1) > 0.2
    # the last offer maximises (mine - reservation) * chance
    assert plan.row(1) == int(np.argmax((mine - 0.2) * chance))
