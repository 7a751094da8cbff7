"""Head to head against the ANL 2024 finalists, for tuning: each of our negotiators against each finalist on the
scenarios of ``--part anl`` (same seed, same generator), once per scenario, side (ufun) and opening order. As in
``anl2024_tournament``, each side is told the other's ufun as generated, and then every ufun is rescaled to [0, 1]
(NegMAS's cartesian tournament normalises them), so a revealed ufun need not be on its owner's scale.

    python -m bench.negotiation --league --part anl-pairs --anl-scenarios 10 --seeds 1 --steps 20 100 --ours adaptive

Unlike the tournament it plays no finalist against another, so it takes a fraction of the time (400 negotiations
for one negotiator against the 10 finalists on 10 scenarios) and gives figures per opponent. Prints, for each of
ours, mean advantage ((u - r) / (max u - r), 0 without agreement) and agreement rate overall and per finalist,
and how many agreements fell below our reservation value. Needs the ``league`` extra.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.league import anl_field, quiet

__all__ = ["Outcome", "head_to_head"]

_GLOBALS: dict[str, Any] = {}  # per worker process: the scenarios and the finalists' classes


@dataclass(frozen=True)
class Outcome:
    """One negotiation: ours against ``opponent``, agreed or not, our advantage and whether we went below
    reservation."""

    ours: str
    opponent: str
    agreed: bool
    advantage: float
    below_reservation: bool


def _load(seed: int, n_scenarios: int, quick: bool) -> None:
    raw, finalists = anl_field(seed, n_scenarios, quick)
    # as ``anl2024_tournament``: each side learns the other's ufun as generated, then every ufun is rescaled to
    # [0, 1] (NegMAS's cartesian tournament normalises; reservation values move with it) before anyone plays
    revealed = [[_revealed(u) for u in s.ufuns] for s in raw]
    scenarios = [
        s
        if s.is_normalized(common_range=False)
        else copy.deepcopy(s).normalize(
            guarantee_max=True, guarantee_min=True, common_range=False, recalculate_stats=True
        )
        for s in raw
    ]
    tops = [[max(float(u(o)) for o in s.outcome_space.enumerate_or_sample()) for u in s.ufuns] for s in scenarios]
    _GLOBALS.update(scenarios=scenarios, revealed=revealed, finalists=finalists, tops=tops)


def _revealed(u: Any) -> Any:
    """What ANL tells each side of the other: its ufun without the reservation value."""
    from negmas.preferences import LinearAdditiveUtilityFunction

    return LinearAdditiveUtilityFunction(
        values=u.values, weights=u.weights, bias=u._bias, reserved_value=0, outcome_space=u.outcome_space
    )


def _negotiate(job: tuple[type, int, int, int, bool, int]) -> Outcome:
    """One negotiation in a worker: ``(our class, scenario, finalist, our ufun's side, we open, steps)``."""
    from negmas.sao import SAOMechanism

    ours_class, scenario_index, finalist, side, we_open, steps = job
    scenario, theirs_class = _GLOBALS["scenarios"][scenario_index], _GLOBALS["finalists"][finalist]
    mine, theirs = scenario.ufuns[side], scenario.ufuns[1 - side]
    about = _GLOBALS["revealed"][scenario_index]  # what each side was told of the other's ufun
    about_mine, about_theirs = about[side], about[1 - side]

    random.seed(hash(job[1:]) % 2**31)
    np.random.seed(hash(job[1:]) % 2**31)
    mechanism = SAOMechanism(outcome_space=scenario.outcome_space, n_steps=steps)
    with quiet():  # some finalists load pickled models (scikit-learn warns) when they are made
        ours = ours_class(name="ours", private_info={"opponent_ufun": about_theirs})
        other = theirs_class(name="other", private_info={"opponent_ufun": about_mine})
        pairs = [(ours, mine), (other, theirs)] if we_open else [(other, theirs), (ours, mine)]
        for negotiator, ufun in pairs:
            mechanism.add(negotiator, ufun=ufun)
        mechanism.run()
    r, top = float(mine.reserved_value), _GLOBALS["tops"][scenario_index][side]
    agreement = mechanism.agreement
    u = float(mine(agreement)) if agreement is not None else r
    return Outcome(
        ours=ours_class.__name__,
        opponent=theirs_class.__name__,
        agreed=agreement is not None,
        advantage=(u - r) / max(top - r, 1e-9) if agreement is not None else 0.0,
        below_reservation=agreement is not None and u < r - 1e-9,
    )


def head_to_head(
    seeds: Sequence[int], n_scenarios: int, steps: tuple[int, int], ours: dict[str, type], quick: bool
) -> float:
    """Every one of ``ours`` against every finalist (the top five with ``quick``); prints the figures; returns
    seconds."""
    total = 0.0
    for seed in seeds:
        _load(seed, n_scenarios, quick)
        finalists = _GLOBALS["finalists"]
        rng = np.random.default_rng(seed)
        draws = rng.integers(steps[0], steps[1] + 1, size=(n_scenarios, len(finalists), 2))
        jobs = [
            (cls, s, f, side, we_open, int(draws[s, f, side]))
            for cls in ours.values()
            for s in range(n_scenarios)
            for f in range(len(finalists))
            for side in (0, 1)
            for we_open in (True, False)
        ]
        start = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:  # workers inherit _GLOBALS
            outcomes = pool.map(_negotiate, jobs, chunksize=4)
        secs = time.perf_counter() - start
        total += secs
        print(
            f"\nANL 2024 head to head: {n_scenarios} generated scenarios (seed {seed}), {steps[0]}-{steps[1]} steps, "
            f"{len(finalists)} finalists, {len(jobs)} negotiations ({secs:.0f} s)"
        )
        for name in sorted({o.ours for o in outcomes}):
            mine = [o for o in outcomes if o.ours == name]
            below = sum(o.below_reservation for o in mine)
            print(
                f"{name}: advantage {_mean(mine, 'advantage'):.3f}, agreement {_mean(mine, 'agreed'):.1%}, {below} <res"
            )
            for opponent in dict.fromkeys(o.opponent for o in mine):
                rows = [o for o in mine if o.opponent == opponent]
                print(
                    f"  {opponent:<26} advantage {_mean(rows, 'advantage'):.3f}  agreement {_mean(rows, 'agreed'):.0%}"
                )
    return total


def _mean(outcomes: list[Outcome], attr: str) -> float:
    return float(np.mean([float(getattr(o, attr)) for o in outcomes]))
