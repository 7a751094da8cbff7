"""Planned offers for a known opponent utility: the reservation bound, the acceptance model and the plan."""

from __future__ import annotations

import numpy as np
import pytest

from agents.negotiators.bid_plan import acceptance_chance, plan_bids, plan_zeros, reservation_bound


def test_the_reservation_bound_is_the_lowest_offered_level_or_the_nash_point_below_it() -> None:
    mine = np.linspace(1.0, 0.0, 11)
    theirs = 1.0 - mine  # the Nash point of the bare utilities: 0.5 each
    assert reservation_bound(mine, theirs, lowest=0.8) == pytest.approx(0.5)
    assert reservation_bound(mine, theirs, lowest=0.3) == pytest.approx(0.3)  # it offered 0.3, so it takes 0.3


def test_rescaled_utilities_measure_the_nash_point_and_the_prior_from_their_raw_zero() -> None:
    # raw utilities 0.2..1.0 (mine) and 0.4..1.0 (theirs), normalised to [0, 1]: a raw 0 scores -0.25 and -2/3
    raw_mine = np.linspace(1.0, 0.2, 9)
    raw_theirs = np.linspace(0.4, 1.0, 9)
    mine, theirs = (raw_mine - 0.2) / 0.8, (raw_theirs - 0.4) / 0.6
    zeros = (-0.25, -2 / 3)
    raw_nash = int(np.argmax(raw_mine * raw_theirs))
    assert reservation_bound(mine, theirs, lowest=1.0, zeros=zeros) == pytest.approx(theirs[raw_nash])
    assert reservation_bound(mine, theirs, lowest=1.0) != pytest.approx(theirs[raw_nash])  # the normalised Nash
    # a raw reservation value uniform on [0, raw Nash utility]: half the raw bound is a normalised score
    bound = reservation_bound(mine, theirs, lowest=1.0, zeros=zeros)
    half = (raw_theirs[raw_nash] / 2 - 0.4) / 0.6
    chance = acceptance_chance(np.array([zeros[1], half, bound]), 1.0, bound, caution=1.0, zero=zeros[1])
    assert list(chance) == pytest.approx([0.0, 0.5, 1.0])


def test_acceptance_is_certain_at_levels_the_opponent_offered_and_falls_with_its_utility_below() -> None:
    theirs = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    plain = acceptance_chance(theirs, lowest=0.6, bound=0.5, caution=1.0)
    assert list(plain) == pytest.approx([0.0, 0.4, 0.8, 1.0, 1.0, 1.0])  # uniform reservation on [0, 0.5]
    cautious = acceptance_chance(theirs, lowest=0.6, bound=0.5, caution=3.0)
    assert list(cautious[3:]) == [1.0, 1.0, 1.0]
    assert list(cautious[:3]) == pytest.approx([0.0, 0.064, 0.512])  # caution 3 (Adaptive's default) cubes it
    assert np.all(np.diff(cautious) >= 0)


def test_the_plan_concedes_as_offers_run_out_and_is_worth_the_reservation_at_the_end() -> None:
    mine = np.linspace(1.0, 0.0, 11)
    theirs = 1.0 - mine
    chance = acceptance_chance(theirs, lowest=0.8, bound=0.5, caution=3.0)
    plan = plan_bids(np.arange(11), mine, chance, reservation=0.2, offers=50)
    assert plan.value(0) == 0.2
    values = [plan.value(k) for k in range(1, 60)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))  # more offers left: never worth less
    asks = [mine[plan.row(k)] for k in range(1, 60)]
    assert all(b >= a for a, b in zip(asks, asks[1:], strict=False))  # and never asking less
    assert asks[0] < asks[-1] and plan.value(1) > 0.2
    # the last offer maximises (mine - reservation) * chance
    assert plan.row(1) == int(np.argmax((mine - 0.2) * chance))


def test_aversion_to_risk_makes_the_last_offer_surer_and_the_plan_worth_less() -> None:
    mine = np.linspace(1.0, 0.0, 21)
    theirs = 1.0 - mine
    chance = acceptance_chance(theirs, lowest=1.1, bound=1.0, caution=3.0)  # theirs ** 3
    neutral = plan_bids(np.arange(21), mine, chance, reservation=0.0, offers=5)
    averse = plan_bids(np.arange(21), mine, chance, reservation=0.0, offers=5, risk=0.5)
    assert theirs[neutral.row(1)] == pytest.approx(0.75)  # argmax (1 - x) x^3
    assert theirs[averse.row(1)] == pytest.approx(0.85)  # argmax sqrt(1 - x) x^3 on the grid (6/7 exactly)
    assert averse.value(0) == neutral.value(0) == 0.0
    assert 0.0 < averse.value(1) < neutral.value(1)  # a certainty equivalent: below the expected utility


def test_raw_zeros_count_only_while_my_own_utility_shows_its_raw_scale() -> None:
    # both raw (mine starts above a raw 0): measured from the raw zeros, as ANL's generator draws
    assert plan_zeros(-0.25, -2 / 3) == (-0.25, -2 / 3)
    # mine rescaled to start at 0 (ANL's tournament) while the opponent's was revealed raw: neither below its lowest
    assert plan_zeros(0.0, -0.546) == (0.0, 0.0)
    assert plan_zeros(0.1, -0.5) == (0.1, 0.0)  # a raw zero above my lowest score stays; theirs stops at its lowest
    assert plan_zeros(0.0, 0.2) == (0.0, 0.2)
