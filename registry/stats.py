"""Small statistics helpers for observed latencies."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["percentiles"]


def percentiles(values: Sequence[float], qs: Iterable[float]) -> tuple[float | None, ...]:
    """Nearest-rank percentiles of ``values`` (None for each when there are no values)."""
    ordered = sorted(values)
    if not ordered:
        return tuple(None for _ in qs)
    n = len(ordered)
    return tuple(ordered[min(n - 1, max(0, math.ceil(q / 100.0 * n) - 1))] for q in qs)
