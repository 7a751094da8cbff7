"""Acceptance conditions (Baarslag et al.): AC_next, AC_time and AC_combi, as pure functions of utilities.

They decide only whether an offer is good enough; the guardrail (never below the reservation value or outside
the limits) is applied by the strategy on top of them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ac_next", "ac_time", "ac_combi", "window_best"]


def ac_next(offered: float, my_next: float, alpha: float = 1.0, beta: float = 0.0) -> bool:
    """Accept when the offer is worth at least ``alpha`` times my next offer plus ``beta``."""
    return offered >= alpha * my_next + beta - 1e-12


def ac_time(time: float, deadline: float) -> bool:
    """Accept anything once relative time reaches ``deadline`` (used only below a floor: see ``ac_combi``)."""
    return time >= deadline


def window_best(offered: Sequence[float], size: int) -> float:
    """The best of the opponent's last ``size`` offers to me (-inf before any)."""
    recent = list(offered)[-size:] if size > 0 else []
    return max(recent) if recent else float("-inf")


def ac_combi(offered: float, my_next: float, time: float, deadline: float, recent_best: float, floor: float) -> bool:
    """AC_combi(MAX^W): AC_next, or, from ``deadline`` on, an offer at least as good as the best the opponent
    made recently (``recent_best``: it is not improving on it) and at least ``floor`` (my endgame floor, e.g. the
    best offer it ever made, or what the opponent model says it would still give)."""
    late = ac_time(time, deadline) and offered >= max(recent_best, floor) - 1e-12
    return ac_next(offered, my_next) or late
