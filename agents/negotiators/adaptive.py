"""An adaptive negotiation strategy: a hard time-based concession with reciprocity, offers on the estimated Pareto
frontier, AC_combi acceptance and an endgame built on the best offer the opponent made.

The shared instance recomputes everything from the request's history on each move, so it serves any number of
negotiations. ``for_negotiation(opponent)`` gives a per-negotiation instance that caches what it worked out
(scores of the outcome space, the opponent model, my utilities of its offers) and, when the opponent's utility is
known (ANL reveals it), uses it instead of the frequency model's estimate; with ``plan=True`` (the default) such a
negotiation follows a bid plan instead (``bid_plan.py``: backward induction against a prior on the opponent's
reservation value). It works for any ``Utility``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agents.negotiators.acceptance import ac_combi, ac_next, window_best
from agents.negotiators.bid_plan import BidPlan, acceptance_chance, plan_bids, plan_zeros, reservation_bound
from agents.negotiators.opponent import FrequencyModel, nash_row, offers_of, pareto_rows
from agents.negotiators.strategies import Strategy
from agents.negotiators.utility import OutcomeSpace, Utility, outcome_space
from protocol.negotiation import Action, Offer, RespondRequest, Response

__all__ = ["Adaptive", "AdaptiveView"]


@dataclass(frozen=True)
class AdaptiveView:
    """What one move is decided from: my and the opponent's (known or estimated) utilities of every outcome row,
    my utilities of the opponent's offers so far, and rows I have offered already."""

    mine: np.ndarray
    theirs: np.ndarray
    received: np.ndarray
    best_seen: Offer | None
    nash: float
    target: float
    offered_rows: np.ndarray
    last_theirs: float | None = None  # the opponent's own utility of its last offer, when its utility is known


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


@dataclass
class _Memo:
    """What one negotiation's moves share: outcome-space scores and the history read so far (offers are only ever
    appended; anything else starts it afresh)."""

    utility: Utility
    space: OutcomeSpace
    opponent: Utility | None
    caution: float
    risk: float
    mine: np.ndarray = field(init=False)
    known: np.ndarray | None = field(init=False)
    order: np.ndarray = field(init=False)
    sorted_codes: np.ndarray = field(init=False)
    model: FrequencyModel = field(init=False)
    received: list[float] = field(default_factory=list)
    theirs: list[Offer] = field(default_factory=list)
    mine_count: int = 0
    mine_last: tuple[tuple[str, float], ...] | None = None
    offered_rows: np.ndarray = field(init=False)
    their_levels: list[float] = field(default_factory=list)  # with a known opponent utility: its own, per offer
    plan: BidPlan | None = None
    plan_key: float = -1.0

    def __post_init__(self) -> None:
        self.mine = self.utility.scores(self.space.points)
        self.known = None
        if self.opponent is not None:
            self.known = np.clip(np.asarray(self.opponent.scores(self.space.points), dtype=float), 0.0, 1.0)
        codes = _codes(self.space, self.space.points)
        self.order = np.argsort(codes, kind="stable")
        self.sorted_codes = codes[self.order]
        self._reset_history()

    def _reset_history(self) -> None:
        self.model = FrequencyModel(tuple(self.space.issues))
        self.received, self.theirs = [], []
        self.mine_count, self.mine_last = 0, None
        self.offered_rows = np.zeros(len(self.space.points), dtype=bool)
        self.their_levels = []
        self.plan, self.plan_key = None, -1.0

    def _row_of(self, offers: list[Offer]) -> np.ndarray:
        codes = _codes(self.space, _rows(offers, self.space))
        at = np.clip(np.searchsorted(self.sorted_codes, codes), 0, len(self.sorted_codes) - 1)
        found = self.sorted_codes[at] == codes
        return np.asarray(self.order[at[found]])

    def bid_plan(self, offers: int) -> BidPlan:
        """The plan against the prior on the opponent's reservation value (made again when the lowest level it has
        offered moves)."""
        assert self.known is not None
        lowest = min(self.their_levels) if self.their_levels else 1.0
        key = round(lowest, 3)
        if self.plan is None or key != self.plan_key:
            rational = self.mine >= self.utility.reservation - 1e-12
            frontier = pareto_rows(np.where(rational, self.mine, -1.0), self.known)
            frontier = frontier[rational[frontier]]
            if frontier.size == 0:
                frontier = np.flatnonzero(rational)
            assert self.opponent is not None
            zeros = plan_zeros(self.utility.zero, self.opponent.zero)
            bound = reservation_bound(self.mine, self.known, lowest, zeros)
            chance = acceptance_chance(self.known, lowest, bound, self.caution, zeros[1])
            self.plan = plan_bids(frontier, self.mine, chance, self.utility.reservation, offers, self.risk)
            self.plan_key = key
        return self.plan

    def sync(self, req: RespondRequest) -> None:
        """Read the offers the history added since the last move."""
        offered, mine = offers_of(req.history, req.opponent), offers_of(req.history, req.me)
        n, m = len(self.theirs), self.mine_count
        if (
            len(offered) < n
            or len(mine) < m
            or (n and offered[n - 1].key() != self.theirs[-1].key())
            or (m and mine[m - 1].key() != self.mine_last)
        ):
            self._reset_history()
            n = m = 0
        new = offered[n:]
        if new:
            for offer in new:
                self.model.update(offer)
            points = _rows(new, self.space)
            self.received.extend(float(v) for v in self.utility.scores(points))
            self.theirs.extend(new)
            if self.opponent is not None:
                levels = np.clip(np.asarray(self.opponent.scores(points), dtype=float), 0.0, 1.0)
                self.their_levels.extend(float(v) for v in levels)
        if len(mine) > m:
            self.offered_rows[self._row_of(mine[m:])] = True
            self.mine_count, self.mine_last = len(mine), mine[-1].key()


class Adaptive(Strategy):
    """Concedes on target(t) = lo + (max - lo) * (1 - max(t^(1/e), ramp)), lo = max(reservation, the opponent's
    best offer to me), ramp = (1 - k / ``ramp_moves``)^2 with k my answerable offers left (so a 20-step negotiation
    concedes over its last rounds, not its last two), pulled down by ``reciprocity`` times the opponent's own
    concession; offers the outcome of my target band the opponent rates highest (one I have not offered yet when
    there is one); accepts by AC_combi. Moves are counted as offers the opponent can still answer (when it opened,
    my move in the last round cannot be answered). Endgame (my last ``endgame_moves`` answerable offers):
    ``endgame_hold`` of the way from the opponent's best offer up to my target, then that best offer itself (with
    a known opponent utility: the outcome best for me among those the opponent values at least as much as its own
    last offer); when no offer of theirs clears my reservation value, the estimated Nash point instead (never my
    best outcome, and a new outcome up to ``band`` below it once I have offered it); on my last move it accepts
    only an offer keeping at least ``1 - slack`` of the gain over my reservation value that the opponent's best
    offer gave. With a known opponent utility it also accepts, from ``accept_from`` on, any offer at least as good
    as the Nash point.
    With a known opponent utility and ``plan`` on, all of that gives way to a ``BidPlan``: offer the plan's
    outcome for the offers I have left, accept what is worth at least the plan's value; ``caution`` shapes the
    plan's acceptance model (``bid_plan.acceptance_chance``) and ``risk`` its aversion to a refused offer
    (``bid_plan.plan_bids``)."""

    name = "adaptive"

    def __init__(
        self,
        exponent: float = 0.05,
        reciprocity: float = 0.0,
        band: float = 0.05,
        accept_from: float = 0.9,
        window: int = 4,
        endgame_moves: int = 2,
        slack: float = 0.3,
        endgame_hold: float = 0.5,
        opponent: Utility | None = None,
        plan: bool = True,
        caution: float = 3.0,
        risk: float = 0.1,
        ramp_moves: int = 6,
    ) -> None:
        if exponent <= 0:
            raise ValueError("the concession exponent must be > 0 (0.1 holds out, 1 is linear)")
        if caution <= 0:
            raise ValueError("caution must be > 0 (1: the plan's acceptance model as is, 3: refusals weigh more)")
        if ramp_moves < 0:
            raise ValueError("ramp_moves must be >= 0 (0: concede on time alone, 6: over my last 6 offers)")
        if not 0 < risk <= 1:
            raise ValueError("risk must be in (0, 1] (1: the plan maximises expected utility, lower: surer deals)")
        self.exponent = exponent
        self.reciprocity = reciprocity
        self.band = band
        self.accept_from = accept_from
        self.window = window
        self.endgame_moves = endgame_moves
        self.slack = slack
        self.endgame_hold = endgame_hold
        self.opponent = opponent
        self.plan = plan
        self.caution = caution
        self.risk = risk
        self.ramp_moves = ramp_moves
        self._memo: _Memo | None = None
        self._per_negotiation = False

    def for_negotiation(self, opponent: Utility | None = None) -> Adaptive:
        """A fresh instance for one negotiation: it caches between moves, and uses ``opponent`` (the opponent's
        utility, when known) instead of the frequency model's estimate."""
        fresh = Adaptive(
            self.exponent,
            self.reciprocity,
            self.band,
            self.accept_from,
            self.window,
            self.endgame_moves,
            self.slack,
            self.endgame_hold,
            opponent=opponent if opponent is not None else self.opponent,
            plan=self.plan,
            caution=self.caution,
            risk=self.risk,
            ramp_moves=self.ramp_moves,
        )
        fresh._per_negotiation = True
        return fresh

    def _memo_for(self, req: RespondRequest, utility: Utility, space: OutcomeSpace) -> _Memo:
        memo = self._memo
        if memo is None or memo.utility is not utility or memo.space is not space:
            memo = _Memo(utility, space, self.opponent, self.caution, self.risk)
            if self._per_negotiation:
                self._memo = memo
        memo.sync(req)
        return memo

    def view(self, req: RespondRequest, utility: Utility, space: OutcomeSpace) -> AdaptiveView:
        """Model the opponent (or read its known utility) and work out my target for this move."""
        memo = self._memo_for(req, utility, space)
        mine = memo.mine
        theirs = memo.known if memo.known is not None else memo.model.scores(space.points)
        received = np.asarray(memo.received, dtype=float)
        offered = memo.theirs
        r, top = utility.reservation, float(mine.max())
        best_seen = offered[int(np.argmax(received))] if offered else None
        lo = max(r, float(received.max())) if offered else r
        row = nash_row(mine, theirs, r)
        nash = float(mine[row]) if row is not None else r
        conceded_share = max(req.time ** (1.0 / self.exponent), self._ramp(req))
        curve = lo + (top - lo) * (1.0 - conceded_share)
        conceded = float(received.max() - received[0]) if offered else 0.0
        target = max(lo, min(curve, top - self.reciprocity * conceded))
        last_theirs = None
        if self.opponent is not None and offered:
            last_theirs = float(np.clip(self.opponent.scores(_rows(offered[-1:], space))[0], 0.0, 1.0))
        return AdaptiveView(mine, theirs, received, best_seen, nash, min(target, top), memo.offered_rows, last_theirs)

    def target(self, req: RespondRequest, utility: Utility) -> float:
        """My target utility now (see the class docstring)."""
        return self.view(req, utility, outcome_space(req.issues)).target

    def _moves_left(self, req: RespondRequest) -> int:
        return req.max_rounds - req.round

    def _ramp(self, req: RespondRequest) -> float:
        """The least share of the way to ``lo`` conceded by now, counted in offers: quadratic over my last
        ``ramp_moves`` answerable offers, so a short negotiation leaves reciprocal opponents time to answer."""
        if self.ramp_moves <= 0:
            return 0.0
        return max(0.0, 1.0 - self._answerable_left(req) / self.ramp_moves) ** 2

    def _answerable_left(self, req: RespondRequest) -> int:
        """My offers after this one that the opponent can still answer (-1: not even this one). When it opens
        the rounds, my move in the last round ends the negotiation (time 1), so my last answerable offer is the
        round before."""
        left = self._moves_left(req)
        if left <= 0:
            return 0 if req.time < 1.0 else -1
        first = not req.history or req.history[0].sender == req.me
        return left - (0 if first else 1)

    def _their_level(self, view: AdaptiveView, space: OutcomeSpace, r: float) -> Offer | None:
        """The outcome best for me among those the opponent values at least as much as its own last offer."""
        if view.last_theirs is None:
            return None
        ok = (view.theirs >= view.last_theirs - 1e-9) & (view.mine >= r - 1e-12)
        if not ok.any():
            return None
        rows = np.flatnonzero(ok)
        return space.offer(int(rows[int(np.argmax(view.mine[rows] + 1e-6 * view.theirs[rows]))]))

    def choose(self, req: RespondRequest, view: AdaptiveView, utility: Utility, space: OutcomeSpace) -> Offer | None:
        """My counter-offer: the opponent's best offer in the endgame, else the band's outcome it rates highest."""
        r = utility.reservation
        if float(view.mine.max()) < r:
            return None
        level = max(view.target, r)
        left = self._answerable_left(req)
        if view.best_seen is not None and left < self.endgame_moves:
            best = float(view.received.max())
            if best >= r and left == 0:
                at_their_level = self._their_level(view, space, r)
                if at_their_level is not None and utility(at_their_level) >= best - 1e-12:
                    return at_their_level  # as good for them as what they last asked, at least their best for me
                return view.best_seen  # they offered it, so they are likely to accept it
            if best >= r:
                level = best + (level - best) * self.endgame_hold  # part of the way (half by default) first
            else:
                # nothing of theirs clears my reservation: the estimated Nash point, but not my best outcome (they
                # have refused it from the start), and once I have offered it a new outcome worth up to a band less
                # (reciprocal opponents such as MiCRO concede only for new offers)
                row = nash_row(view.mine, view.theirs, r)
                if row is not None and float(view.mine[row]) < float(view.mine.max()) - 1e-12:
                    if not view.offered_rows[row]:
                        return space.offer(row)
                    level = float(view.mine[row]) - self.band
        above = view.mine >= level - 1e-12
        if not above.any():
            above = view.mine >= float(view.mine.max()) - 1e-12
        floor = float(view.mine[above].min())
        band = above & (view.mine <= floor + self.band + 1e-12)
        unseen = ~view.offered_rows
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
        if self.plan and self.opponent is not None:
            return self._planned(req, utility, space)
        view = self.view(req, utility, space)
        counter = self.choose(req, view, utility, space)
        standing = req.standing_offer
        if standing is not None and utility.acceptable(standing):
            value = utility(standing)
            my_next = utility(counter) if counter is not None else float("inf")
            previous = view.received[:-1]
            nash_late = self.opponent is not None and req.time >= self.accept_from and value >= view.nash - 1e-12
            if self._moves_left(req) <= 0:
                best = float(view.received.max())
                accept = value >= best - self.slack * (best - utility.reservation) - 1e-12 or nash_late
                why = "last move, within reach of their best offer"
            else:
                floor = max(utility.reservation, min(view.nash, view.target))
                recent = window_best(previous.tolist(), self.window)
                accept = ac_combi(value, my_next, req.time, self.accept_from, recent, floor) or nash_late
                why = "AC_next" if ac_next(value, my_next) else "AC_combi"
            if accept:
                return Response(action=Action.ACCEPT, reason=f"{self.name}: {why}, offer worth {value:.2f}")
        if counter is None:
            return Response(action=Action.WALK_AWAY, reason="no outcome is worth more than my reservation value")
        if req.time >= 1.0:
            return Response(action=Action.WALK_AWAY, reason="last turn and the offer is not good enough")
        return Response(action=Action.COUNTER, offer=counter, reason=f"{self.name}: target {view.target:.2f}")

    def _planned(self, req: RespondRequest, utility: Utility, space: OutcomeSpace) -> Response:
        """With the opponent's utility known: accept what beats the plan's expected value, else offer the plan's
        outcome for the offers left (never asking more than my previous offer)."""
        memo = self._memo_for(req, utility, space)
        first = not req.history or req.history[0].sender == req.me
        offers_left = self._moves_left(req) + (1 if first else 0)
        if float(memo.mine.max()) < utility.reservation:
            return Response(action=Action.WALK_AWAY, reason="no outcome is worth more than my reservation value")
        plan = memo.bid_plan(max(offers_left, 1))
        expected = plan.value(offers_left)
        standing = req.standing_offer
        if standing is not None and utility.acceptable(standing):
            value = utility(standing)
            if value >= expected - 1e-12:
                return Response(
                    action=Action.ACCEPT, reason=f"{self.name}: offer worth {value:.2f} beats the plan's {expected:.2f}"
                )
        if offers_left <= 0 or req.time >= 1.0:
            return Response(action=Action.WALK_AWAY, reason="last turn and the offer is not good enough")
        row = plan.row(offers_left)
        mine = offers_of(req.history, req.me)
        if mine and float(memo.mine[row]) > utility(mine[-1]) + 1e-12:
            return Response(action=Action.COUNTER, offer=mine[-1], reason=f"{self.name}: holding my last offer")
        return Response(
            action=Action.COUNTER, offer=space.offer(row), reason=f"{self.name}: planned, expecting {expected:.2f}"
        )
