"""Planned offers for a known opponent utility: the reservation bound, the acceptance model and the plan."""

from __future__ import annotations

import numpy as np
import pytest

from agents.negotiators.bid_plan import acceptance_chance, plan_bids, reservation_bound


def test_the_reservation_bound_is_the_lowest_offered_level_or_the_nash_point_below_it() -> None:
    mine = np.linspace(1.0, 0.0, 11)
    theirs = 1.0 - mine  # the Nash point of the bare utilities: 0.5 each
    assert reservation_bound(mine, theirs, lowest=0.8) == pytest.approx(0.5)
    assert reservation_bound(mine, theirs, lowest=0.3) == pytest.approx(0.3)  # it offered 0.3, so it takes 0.3


def test_acceptance_is_certain_at_levels_the_opponent_offered_and_falls_with_its_utility_below() -> None:
    theirs = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    plain = acceptance_chance(theirs, lowest=0.6, bound=0.5, caution=1.0)
    assert list(plain) == pytest.approx([0.0, 0.4, 0.8, 1.0, 1.0, 1.0])  # uniform reservation on [0, 0.5]
    cautious = acceptance_chance(theirs, lowest=0.6, bound=0.5)
    assert list(cautious[3:]) == [1.0, 1.0, 1.0]
    assert list(cautious[:3]) == pytest.approx([0.0, 0.064, 0.512])  # caution 3 (the default) cubes the chance
    assert np.all(np.diff(cautious) >= 0)


def test_the_plan_concedes_as_offers_run_out_and_is_worth_the_reservation_at_the_end() -> None:
    mine = np.linspace(1.0, 0.0, 11)
    theirs = 1.0 - mine
    chance = acceptance_chance(theirs, lowest=0.8, bound=0.5)
    plan = plan_bids(np.arange(11), mine, chance, reservation=0.2, offers=50)
    assert plan.value(0) == 0.2
    values = [plan.value(k) for k in range(1, 60)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))  # more offers left: never worth less
    asks = [mine[plan.row(k)] for k in range(1, 60)]
    assert all(b >= a for a, b in zip(asks, asks[1:], strict=False))  # and never asking less
    assert asks[0] < asks[-1] and plan.value(1) > 0.2
    # the last offer maximises (mine - reservation) * chance
    assert plan.row(1) == int(np.argmax((mine - 0.2) * chance))
