"""Classic negotiation strategies: time-based concession (Boulware, linear, Conceder) and tit-for-tat.

A strategy turns the negotiation state into a target utility; offers are then chosen from the outcome space
just above the target, nearest to the opponent's last offer. Acceptance never goes below the reservation value.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from agents.negotiators.utility import OutcomeSpace, Utility
from protocol.negotiation import Action, Offer, RespondRequest, Response

__all__ = [
    "Strategy",
    "TimeDependent",
    "TitForTat",
    "STRATEGIES",
    "get_strategy",
    "offers_in_band",
    "lowest_at_or_above",
    "BAND",
    "best_received",
]

BAND = 0.03  # offers within this much utility above the target count as "at the target"


def offers_in_band(
    utility: Utility, space: OutcomeSpace, low: float, high: float, near: Offer | None, k: int
) -> list[int]:
    """Up to ``k`` outcome rows with utility in [low, high], nearest to ``near`` first (best for me first when
    there is no opponent offer yet). Ties keep the space's order, so the choice is deterministic."""
    scores = utility.scores(space.points)
    rows = np.flatnonzero((scores >= low - 1e-12) & (scores <= high + 1e-12))
    if rows.size == 0:
        return []
    if near is not None:
        key = space.distance_to(near)[rows] - 1e-6 * scores[rows]
    else:
        key = -scores[rows]
    order = np.argsort(key, kind="stable")
    return [int(r) for r in rows[order[:k]]]


def lowest_at_or_above(scores: np.ndarray, target: float) -> float:
    """The lowest utility among ``scores`` that is at least ``target`` (the highest score if none is)."""
    above = scores[scores >= target - 1e-12]
    return float(above.min()) if above.size else float(scores.max())


class Strategy(ABC):
    """Decides a move from the state; subclasses only say how the target utility moves over time."""

    name: str

    @abstractmethod
    def target(self, req: RespondRequest, utility: Utility) -> float:
        """The utility this strategy aims for now (before clipping to the reservation value)."""

    def for_negotiation(self, opponent: Utility | None = None) -> Strategy:
        """The strategy to play one negotiation with, given the opponent's utility when it is known (ANL reveals
        it). Stateless strategies return themselves; one that caches or uses ``opponent`` returns a fresh copy."""
        return self

    def counter_offer(self, req: RespondRequest, utility: Utility, space: OutcomeSpace) -> Offer | None:
        """The offer at the lowest utility level at or above the target (within ``BAND``), nearest the opponent's
        last offer; None when nothing is acceptable. On a coarse grid this is the next outcome up, never the best."""
        target = max(self.target(req, utility), utility.reservation)
        scores = utility.scores(space.points)
        if float(scores.max()) < utility.reservation:
            return None
        floor = lowest_at_or_above(scores, target)
        last = _last_offer_of(req, req.opponent)
        return space.offer(offers_in_band(utility, space, floor, floor + BAND, last, 1)[0])

    def respond(self, req: RespondRequest, utility: Utility, space: OutcomeSpace) -> Response:
        """Accept, counter or walk away; the hard rule: never accept below the reservation value or limits."""
        if req.round > req.max_rounds:
            return Response(action=Action.WALK_AWAY, reason="the deadline has passed")
        standing = req.standing_offer
        counter = self.counter_offer(req, utility, space)
        if standing is not None and utility.acceptable(standing):
            value = utility(standing)
            target = max(self.target(req, utility), utility.reservation)
            if value >= target - 1e-9 or (counter is not None and value >= utility(counter)) or req.time >= 1.0:
                return Response(action=Action.ACCEPT, reason=f"{self.name}: offer worth {value:.2f} >= {target:.2f}")
        if counter is None:
            return Response(action=Action.WALK_AWAY, reason="no outcome is worth more than my reservation value")
        if req.time >= 1.0:
            return Response(action=Action.WALK_AWAY, reason="last turn and the offer is below my reservation")
        target = self.target(req, utility)
        return Response(action=Action.COUNTER, offer=counter, reason=f"{self.name}: target {target:.2f}")


def best_received(req: RespondRequest, utility: Utility) -> float:
    """My utility of the best offer the opponent has made (-1 before any)."""
    return max((utility(r.offer) for r in req.history if r.sender == req.opponent), default=-1.0)


def _last_offer_of(req: RespondRequest, sender: str) -> Offer | None:
    for record in reversed(req.history):
        if record.sender == sender:
            return record.offer
    return None


def _first_offer_of(req: RespondRequest, sender: str) -> Offer | None:
    for record in req.history:
        if record.sender == sender:
            return record.offer
    return None


class TimeDependent(Strategy):
    """target(t) = r + (1 - r) * (1 - t^(1/e)): e < 1 Boulware (holds out), e = 1 linear, e > 1 Conceder."""

    def __init__(self, name: str, exponent: float) -> None:
        if exponent <= 0:
            raise ValueError("the concession exponent must be > 0 (0.2 Boulware, 1 linear, 3 Conceder)")
        self.name = name
        self.exponent = exponent

    def target(self, req: RespondRequest, utility: Utility) -> float:
        """The concession curve, never below the opponent's best offer to me so far: conceding past what it
        already offered only hands it the difference (hardliners waited for exactly that)."""
        r = utility.reservation
        curve = r + (1.0 - r) * (1.0 - req.time ** (1.0 / self.exponent))
        return max(curve, best_received(req, utility))


class TitForTat(Strategy):
    """Relative tit-for-tat: concede as much (in my utility) as the opponent has conceded, plus a small drift."""

    name = "tit_for_tat"

    def __init__(self, drift: float = 0.1) -> None:
        self.drift = drift

    def target(self, req: RespondRequest, utility: Utility) -> float:
        first, last = _first_offer_of(req, req.opponent), _last_offer_of(req, req.opponent)
        conceded = max(0.0, utility(last) - utility(first)) if first is not None and last is not None else 0.0
        return max(utility.reservation, 1.0 - conceded - self.drift * req.time)


STRATEGIES: dict[str, Strategy] = {
    "boulware": TimeDependent("boulware", 0.2),
    "linear": TimeDependent("linear", 1.0),
    "conceder": TimeDependent("conceder", 3.0),
    "tit_for_tat": TitForTat(),
}

from agents.negotiators.adaptive import Adaptive  # noqa: E402  (it builds on Strategy above)

STRATEGIES["adaptive"] = Adaptive()


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name`` (adaptive, boulware, linear, conceder, tit_for_tat)."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}") from None
