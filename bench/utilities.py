"""How fast utilities and analytics are on a 10^6-point outcome space. Prints figures; asserts nothing.

    python -m bench.utilities              # 4 issues of 32 values: 1,048,576 outcomes, best of 3 runs
    python -m bench.utilities --values 20  # a smaller grid (20^4 = 160,000 outcomes)

An additive utility (a piecewise-linear function, a penalty box) faces a 1,024-entry outcome table; ``analyse`` runs
over every outcome (``space=outcome_space(issues, limit=...)``) and over the default, sampled outcome space.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agents.negotiators import (
    AdditivePreferences,
    AdditiveUtility,
    Box,
    LinearUtility,
    PiecewiseValue,
    Preferences,
    TableEntry,
    TablePreferences,
    TableUtility,
    outcome_space,
)
from orchestrator.negotiation import analyse, pareto_frontier
from protocol.negotiation import Issue, Offer

__all__ = ["main"]


def _best_of(repeats: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    """Time scoring, the Pareto frontier and ``analyse`` on the grid; print one line each."""
    p = argparse.ArgumentParser(prog="python -m bench.utilities", description=__doc__.split("\n")[0])
    p.add_argument("--values", type=int, default=32, help="values per issue (4 issues)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    n = a.values
    issues = [Issue(name=f"i{k}", values=[float(v) for v in range(n)]) for k in range(4)]
    additive = AdditiveUtility(
        AdditivePreferences(
            weights={f"i{k}": 1.0 for k in range(4)},
            functions={"i0": PiecewiseValue(points=[(0, 0), (n // 2, 1), (n - 1, 0.5)])},
            boxes=[Box(bounds={"i1": (n * 0.6, n), "i2": (n * 0.6, n)}, bonus=-0.3)],
            reservation=0.2,
        ),
        issues,
    )
    entries = [TableEntry(outcome={"i0": v, "i3": w}, value=(v * w) % 17) for v in range(n) for w in range(n)]
    table = TableUtility(TablePreferences(entries=entries, reservation=0.1), issues)
    linear = LinearUtility(Preferences(weights={f"i{k}": 1.0 for k in range(4)}, increasing={"i0": False}), issues)
    deal = Offer(values={"i0": float(n // 2), "i1": 0.0, "i2": 0.0, "i3": float(n // 2)})
    full = outcome_space(issues, limit=n**4)
    pairs = np.stack([additive.scores(full.points), table.scores(full.points)], axis=1)
    print(
        f"{len(full.points):,} outcomes (4 issues of {n} values), {len(entries):,} table entries, best of {a.repeats}"
    )
    timings = {
        "score, additive (piecewise + box)": lambda: additive.scores(full.points),
        "score, table": lambda: table.scores(full.points),
        "score, linear": lambda: linear.scores(full.points),
        "Pareto frontier of the utility pairs": lambda: pareto_frontier(pairs),
        "analyse additive x table, every outcome": lambda: analyse(deal, issues, additive, table, space=full),
        "analyse linear x table, every outcome": lambda: analyse(deal, issues, linear, table, space=full),
        "analyse additive x table, default space": lambda: analyse(deal, issues, additive, table),
    }
    for label, work in timings.items():
        print(f"  {label:<42} {_best_of(a.repeats, work) * 1000:>8.1f} ms")
    every, sampled = analyse(deal, issues, additive, table, space=full), analyse(deal, issues, additive, table)
    for label, r in (("every outcome", every), (f"default ({'all' if sampled.complete else 'sampled'})", sampled)):
        print(
            f"  {label:<22} frontier {len(r.frontier):>3} points, nash {r.nash}, "
            f"pareto distance {r.pareto_distance:.4f}, nash distance {r.nash_distance:.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
