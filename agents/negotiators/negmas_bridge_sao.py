"""A scaleout negotiator (a ``Strategy`` over a ``Utility``) playing inside NegMAS as an ``SAONegotiator``.

NegMAS gives it a ufun and an outcome space; it sees them as a ``NegmasUtility`` over our issues (numeric values,
categorical indices), keeps the offer history, and answers each NegMAS call with the strategy's move under the
same guardrail as ``negotiator_agent`` (``enforce``). Rounds are NegMAS steps; ``time`` is the protocol's
``turn / (turns - 1)`` over both parties' moves (NegMAS's relative time when there is no step limit).
"""

from __future__ import annotations

from typing import Any

from agents.negotiators.guided import enforce
from agents.negotiators.negmas_bridge_space import CONTINUOUS_LEVELS, NEGMAS_MISSING, IssueMap, NegmasUtility, issue_map
from agents.negotiators.strategies import STRATEGIES, Strategy, get_strategy
from protocol.negotiation import MAX_HISTORY, Action, Offer, OfferRecord, RespondRequest, Response

try:
    from negmas.gb.common import ResponseType
    from negmas.sao import SAONegotiator, SAOResponse, SAOState
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(NEGMAS_MISSING) from exc

__all__ = ["ScaleoutNegotiator", "negmas_negotiator_class", "negmas_negotiator_classes"]

ME, OPPONENT = "me", "opponent"
MAX_ROUNDS = 1_000  # RespondRequest's bound; longer NegMAS negotiations keep their own count


class ScaleoutNegotiator(SAONegotiator):  # type: ignore[misc]
    """Any scaleout strategy as a NegMAS SAO negotiator: ``ScaleoutNegotiator(strategy="boulware")``."""

    def __init__(
        self, *args: Any, strategy: str | Strategy = "boulware", levels: int = CONTINUOUS_LEVELS, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.strategy = get_strategy(strategy) if isinstance(strategy, str) else strategy
        self._playing: Strategy | None = None  # this negotiation's instance (``Strategy.for_negotiation``)
        self.levels = levels
        self._utility: NegmasUtility | None = None
        self._map: IssueMap | None = None
        self._opponent: NegmasUtility | None = None
        self.history: list[OfferRecord] = []

    def on_preferences_changed(self, changes: Any) -> None:
        """A new or changed ufun: rebuild the utility at the next move."""
        super().on_preferences_changed(changes)
        self._utility = self._opponent = self._playing = None

    def on_negotiation_start(self, state: Any) -> None:
        """A fresh history for each negotiation."""
        super().on_negotiation_start(state)
        self.history = []
        self._utility = self._opponent = self._playing = None

    def _view(self) -> tuple[NegmasUtility, IssueMap]:
        if self._utility is None or self._map is None:
            if self.ufun is None or self.nmi is None:
                raise RuntimeError("a ScaleoutNegotiator needs a ufun and a running negotiation")
            self._map = issue_map(self.nmi.outcome_space.issues, levels=self.levels)
            self._utility = NegmasUtility(self.ufun, self._map)
        return self._utility, self._map

    @property
    def opponent_utility(self) -> NegmasUtility | None:
        """The opponent's utility when NegMAS reveals it (ANL gives every agent ``opponent_ufun`` in its private
        information), over the same issues; None otherwise. Passed to ``Strategy.for_negotiation``."""
        theirs = self.opponent_ufun
        if theirs is None:
            return None
        if self._opponent is None or self._opponent.ufun is not theirs:
            self._opponent = NegmasUtility(theirs, self._view()[1])
        return self._opponent

    def request(self, state: SAOState) -> RespondRequest:
        """The negotiation state as the ``RespondRequest`` a scaleout negotiator reads (records the standing
        offer in the history first)."""
        utility, imap = self._view()
        step = int(state.step)
        n_steps = self.nmi.n_steps
        index = self._index()
        if state.current_offer is not None and state.current_proposer != self.id:
            offer = imap.to_offer(state.current_offer)
            last = self.history[-1] if self.history else None
            if last is None or last.sender != OPPONENT or last.offer.key() != offer.key():
                self.history.append(OfferRecord(sender=OPPONENT, round=max(1, step + (index > 0)), offer=offer))
        if n_steps and not getattr(self.nmi, "one_offer_per_step", False):
            time = min(1.0, (2 * step + min(index, 1)) / max(1, 2 * int(n_steps) - 1))
            max_rounds = int(n_steps)
        else:
            time = min(1.0, float(state.relative_time))
            max_rounds = max(int(n_steps or MAX_ROUNDS), step + 1)
        req = RespondRequest(
            negotiation_id=str(self.nmi.id)[:200],
            me=ME,
            opponent=OPPONENT,
            issues=utility.issues,
            round=min(step + 1, MAX_ROUNDS),
            max_rounds=min(max_rounds, MAX_ROUNDS),
            time=time,
            history=self.history[-MAX_HISTORY:],
        )
        if len(self.history) > MAX_HISTORY or step + 1 > MAX_ROUNDS or max_rounds > MAX_ROUNDS:
            # a long NegMAS negotiation: the whole history and true counts (wire bounds do not apply in-process)
            req = req.model_copy(update={"history": list(self.history), "round": step + 1, "max_rounds": max_rounds})
        return req

    def _index(self) -> int:
        try:
            return int(self.nmi.negotiator_index(self.id))
        except (ValueError, AttributeError, KeyError):
            return 0

    def move(self, state: SAOState) -> Response:
        """The strategy's move now, under the guardrail."""
        utility, _ = self._view()
        req = self.request(state)
        space = utility.space
        if self._playing is None:
            self._playing = self.strategy.for_negotiation(self.opponent_utility)
        return enforce(self._playing.respond(req, utility, space), req, utility, space, self._playing)

    def __call__(self, state: SAOState, dest: str | None = None) -> SAOResponse:
        """Accept, counter (reject with an offer) or end the negotiation, as the strategy says."""
        move = self.move(state)
        _, imap = self._view()
        if move.action is Action.ACCEPT and state.current_offer is not None:
            return SAOResponse(ResponseType.ACCEPT_OFFER, state.current_offer)
        if move.action is Action.COUNTER and move.offer is not None:
            self._record_own(state, move.offer)
            return SAOResponse(ResponseType.REJECT_OFFER, imap.to_outcome(move.offer))
        return SAOResponse(ResponseType.END_NEGOTIATION, None)

    def _record_own(self, state: SAOState, offer: Offer) -> None:
        self.history.append(OfferRecord(sender=ME, round=int(state.step) + 1, offer=offer))

    def propose(self, state: SAOState, dest: str | None = None) -> Any:
        """The strategy's counter-offer (for mechanisms that ask for a proposal alone)."""
        move = self.move(state)
        if move.offer is None:
            return None
        self._record_own(state, move.offer)
        return self._view()[1].to_outcome(move.offer)

    def respond(self, state: SAOState, source: str | None = None) -> ResponseType:
        """Accept, reject or end, as the strategy says (for mechanisms that ask for a response alone)."""
        move = self.move(state)
        if move.action is Action.ACCEPT:
            return ResponseType.ACCEPT_OFFER
        return ResponseType.REJECT_OFFER if move.action is Action.COUNTER else ResponseType.END_NEGOTIATION


_CLASSES: dict[str, type[ScaleoutNegotiator]] = {}


def negmas_negotiator_class(strategy: str) -> type[ScaleoutNegotiator]:
    """A named ``ScaleoutNegotiator`` subclass for one registered strategy (``ScaleoutBoulware``, ...), so NegMAS
    tournaments list each strategy under its own name."""
    get_strategy(strategy)  # an unknown name fails here, saying which exist
    if strategy not in _CLASSES:
        title = "Scaleout" + "".join(part.title() for part in strategy.split("_"))

        def init(self: ScaleoutNegotiator, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("strategy", strategy)
            ScaleoutNegotiator.__init__(self, *args, **kwargs)

        cls = type(title, (ScaleoutNegotiator,), {"__init__": init, "__module__": __name__})
        globals()[title] = cls  # importable by its qualified name, as NegMAS may need it to be
        _CLASSES[strategy] = cls
    return _CLASSES[strategy]


def negmas_negotiator_classes() -> dict[str, type[ScaleoutNegotiator]]:
    """One NegMAS negotiator class per registered strategy, by strategy name."""
    return {name: negmas_negotiator_class(name) for name in STRATEGIES}


def __getattr__(name: str) -> type[ScaleoutNegotiator]:
    """``ScaleoutBoulware`` and the like, made on first use: a worker process that unpickles a tournament's
    negotiator finds its class by name here."""
    for strategy in STRATEGIES:
        if name == "Scaleout" + "".join(part.title() for part in strategy.split("_")):
            return negmas_negotiator_class(strategy)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
