"""An adaptive negotiation strategy: a hard time-based concession with reciprocity, offers on the estimated Pareto
frontier, AC_combi acceptance and an endgame built on the best offer the opponent made.

Everything is recomputed from the request's history on each move (no state between calls), so one instance
serves any number of negotiations. It works for any ``Utility`` (only ``scores`` is used).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.negotiators.acceptance import ac_combi, ac_next, window_best
from agents.negotiators.opponent import FrequencyModel, nash_row, offers_of
from agents.negotiators.strategies import Strategy
from agents.negotiators.utility import OutcomeSpace, Utility, outcome_space
from protocol.negotiation import Action, Offer, RespondRequest, Response

__all__ = ["Adaptive", "AdaptiveView"]


@dataclass(frozen=True)
class AdaptiveView:
    """What one move is decided from: my and the opponent's estimated utilities of every outcome row, and my
    utilities of the opponent's offers so far."""

    mine: np.ndarray
    theirs: np.ndarray
    received: np.ndarray
    best_seen: Offer | None
    nash: float
    target: float


def _codes(space: OutcomeSpace, points: np.ndarray) -> np.ndarray:
    """One integer per row (its grid indices in mixed radix), to find rows of offers fast."""
    code = np.zeros(len(points), dtype=np.int64)
    for k, issue in enumerate(space.issues):
        values = np.asarray(issue.values)
        index = np.clip(np.searchsorted(values, points[:, k]), 0, len(values) - 1)
        code = code * len(values) + index
    return code


def _rows(offers: list[Offer], space: OutcomeSpace) -> np.ndarray:
    return np.array([[o.values[i.name] for i in space.issues] for o in offers], dtype=float).reshape(
        len(offers), len(space.issues)
    )


class Adaptive(Strategy):
    """Concedes on target(t) = lo + (max - lo) * (1 - t^(1/e)), lo = max(reservation, the opponent's best offer
    to me), pulled down by ``reciprocity`` times the opponent's own concession; offers the outcome of my target
    band the opponent model rates highest (one I have not offered yet when there is one); accepts by AC_combi.
    Endgame (my last ``endgame_moves`` moves): ``endgame_hold`` of the way from the opponent's best offer up to my
    target, then that best offer itself; on my last move it accepts only an offer keeping at least
    ``1 - slack`` of the gain over my reservation value that the opponent's best offer gave."""

    name = "adaptive"

    def __init__(
        self,
        exponent: float = 0.05,
        reciprocity: float = 0.2,
        band: float = 0.05,
        accept_from: float = 0.9,
        window: int = 4,
        endgame_moves: int = 2,
        slack: float = 0.3,
        endgame_hold: float = 0.5,
    ) -> None:
        if exponent <= 0:
            raise ValueError("the concession exponent must be > 0 (0.1 holds out, 1 is linear)")
        self.exponent = exponent
        self.reciprocity = reciprocity
        self.band = band
        self.accept_from = accept_from
        self.window = window
        self.endgame_moves = endgame_moves
        self.slack = slack
        self.endgame_hold = endgame_hold

    def view(self, req: RespondRequest, utility: Utility, space: OutcomeSpace) -> AdaptiveView:
        """Model the opponent from the history and work out my target for this move."""
        mine = utility.scores(space.points)
        offered = offers_of(req.history, req.opponent)
        model = FrequencyModel.from_offers(space.issues, offered)
        theirs = model.scores(space.points)
        received = utility.scores(_rows(offered, space)) if offered else np.zeros(0)
        r, top = utility.reservation, float(mine.max())
        best_seen = offered[int(np.argmax(received))] if offered else None
        lo = max(r, float(received.max())) if offered else r
        row = nash_row(mine, theirs, r)
        nash = float(mine[row]) if row is not None else r
        curve = lo + (top - lo) * (1.0 - req.time ** (1.0 / self.exponent))
        conceded = float(received.max() - received[0]) if offered else 0.0
        target = max(lo, min(curve, top - self.reciprocity * conceded))
        return AdaptiveView(mine, theirs, received, best_seen, nash, min(target, top))

    def target(self, req: RespondRequest, utility: Utility) -> float:
        """My target utility now (see the class docstring)."""
        return self.view(req, utility, outcome_space(req.issues)).target

    def _moves_left(self, req: RespondRequest) -> int:
        return req.max_rounds - req.round

    def choose(self, req: RespondRequest, view: AdaptiveView, utility: Utility, space: OutcomeSpace) -> Offer | None:
        """My counter-offer: the opponent's best offer in the endgame, else the band's outcome it rates highest."""
        r = utility.reservation
        if float(view.mine.max()) < r:
            return None
        level = max(view.target, r)
        left = self._moves_left(req)
        if view.best_seen is not None and left < self.endgame_moves:
            best = float(view.received.max())
            if best >= r and left == 0:
                return view.best_seen  # they offered it, so they are likely to accept it
            if best >= r:
                level = best + (level - best) * self.endgame_hold  # part of the way (half by default) first
            else:
                row = nash_row(view.mine, view.theirs, r)
                if row is not None:
                    return space.offer(row)  # nothing of theirs clears my reservation: the estimated Nash point
        above = view.mine >= level - 1e-12
        if not above.any():
            above = view.mine >= float(view.mine.max()) - 1e-12
        floor = float(view.mine[above].min())
        band = above & (view.mine <= floor + self.band + 1e-12)
        mine_offers = offers_of(req.history, req.me)
        unseen = np.ones(len(band), dtype=bool)
        if mine_offers:
            unseen = ~np.isin(_codes(space, space.points), _codes(space, _rows(mine_offers, space)))
        # a new outcome when there is one (reciprocal opponents such as MiCRO concede only for new offers)
        for candidates in (band & unseen, above & unseen, band):
            if candidates.any():
                break
        rows = np.flatnonzero(candidates)
        key = view.theirs[rows] + 1e-6 * view.mine[rows]
        return space.offer(int(rows[int(np.argmax(key))]))

    def counter_offer(self, req: RespondRequest, utility: Utility, space: OutcomeSpace) -> Offer | None:
        """The counter-offer I would send now (None when no outcome clears my reservation value)."""
        return self.choose(req, self.view(req, utility, space), utility, space)

    def respond(self, req: RespondRequest, utility: Utility, space: OutcomeSpace) -> Response:
        """Accept by AC_combi (last move: only near the opponent's best offer), counter, or walk away; never
        below the reservation value or outside the limits."""
        if req.round > req.max_rounds:
            return Response(action=Action.WALK_AWAY, reason="the deadline has passed")
        view = self.view(req, utility, space)
        counter = self.choose(req, view, utility, space)
        standing = req.standing_offer
        if standing is not None and utility.acceptable(standing):
            value = utility(standing)
            my_next = utility(counter) if counter is not None else float("inf")
            previous = view.received[:-1]
            if self._moves_left(req) <= 0:
                best = float(view.received.max())
                accept = value >= best - self.slack * (best - utility.reservation) - 1e-12
                why = "last move, within reach of their best offer"
            else:
                floor = max(utility.reservation, min(view.nash, view.target))
                recent = window_best(previous.tolist(), self.window)
                accept = ac_combi(value, my_next, req.time, self.accept_from, recent, floor)
                why = "AC_next" if ac_next(value, my_next) else "AC_combi"
            if accept:
                return Response(action=Action.ACCEPT, reason=f"{self.name}: {why}, offer worth {value:.2f}")
        if counter is None:
            return Response(action=Action.WALK_AWAY, reason="no outcome is worth more than my reservation value")
        if req.time >= 1.0:
            return Response(action=Action.WALK_AWAY, reason="last turn and the offer is not good enough")
        return Response(action=Action.COUNTER, offer=counter, reason=f"{self.name}: target {view.target:.2f}")
