"""Any NegMAS SAO negotiator served as a scaleout agent (A2A + MCP): its ``respond`` skill takes the same
``RespondRequest`` and answers the same ``Response`` as ``negotiator_agent``, so NegMAS community agents join
scaleout negotiations over the network.

NegMAS negotiators keep state, scaleout requests carry the whole history: each negotiation gets a session, a
NegMAS ``SAOMechanism`` (one offer per step, ``2 * max_rounds`` steps) holding the wrapped negotiator and a stand-in
for the remote party that replays the opponent's offers from the history. A request that does not continue its
session's history (another process served the earlier moves, or the session was evicted) starts a new session that
replays the whole history; a deterministic negotiator then makes the same moves again.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.agent import Agent, SkillContext
from agents.negotiators.agent import Negotiator
from agents.negotiators.negmas_bridge_space import NEGMAS_MISSING, IssueMap, ScaleoutUfun, issue_map
from agents.negotiators.utilities import AdditivePreferences, AnyPreferences, TablePreferences
from agents.negotiators.utility import Preferences, Utility
from protocol.negotiation import Action, Issue, RespondRequest, Response

try:
    from negmas.gb.common import ResponseType
    from negmas.negotiators import Negotiator as NegmasNegotiator
    from negmas.sao import SAOMechanism, SAONegotiator, SAOResponse, SAOState
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(NEGMAS_MISSING) from exc

__all__ = ["negmas_agent", "NegmasSessions", "NegotiatorFactory", "UtilityFor", "load_negotiator_class"]

NegotiatorFactory = Callable[[], Any]
"""Makes a fresh NegMAS SAO negotiator (a class, or any zero-argument callable)."""
UtilityFor = Callable[[str, list[Issue]], Utility | None]
"""My utility for an item over its issues (None when I do not trade the item)."""

MAX_SESSIONS = 1_024


def load_negotiator_class(path: str) -> type:
    """A NegMAS negotiator class from its dotted path, e.g. ``negmas.sao.AspirationNegotiator``."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{path!r} must be a dotted path such as 'negmas.sao.AspirationNegotiator'")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load NegMAS negotiator {path!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, NegmasNegotiator)):
        raise ValueError(f"{path!r} is not a NegMAS negotiator class")
    return cls


class _Remote(SAONegotiator):  # type: ignore[misc]
    """The remote party inside the session's mechanism: plays the offers queued from the request history."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.queued: list[Any] = []

    def __call__(self, state: SAOState, dest: str | None = None) -> SAOResponse:
        if not self.queued:
            return SAOResponse(ResponseType.END_NEGOTIATION, None)
        return SAOResponse(ResponseType.REJECT_OFFER, self.queued.pop(0))

    def propose(self, state: SAOState, dest: str | None = None) -> Any:
        return self.queued.pop(0) if self.queued else None


@dataclass
class _Session:
    mechanism: Any
    mine: Any
    remote: _Remote
    imap: IssueMap
    seen: list[tuple[str, tuple[tuple[str, float], ...]]] = field(default_factory=list)


class NegmasSessions:
    """The live NegMAS sessions of one served negotiator, by negotiation id and party (least recently used
    evicted)."""

    def __init__(self, factory: NegotiatorFactory, max_sessions: int = MAX_SESSIONS) -> None:
        self.factory = factory
        self.max_sessions = max_sessions
        self.sessions: OrderedDict[tuple[str, str], _Session] = OrderedDict()

    def move(self, req: RespondRequest, utility: Utility) -> Response:
        """The wrapped negotiator's move for ``req`` (continuing or replaying its session)."""
        key = (req.negotiation_id, req.me)
        seen = [(r.sender, r.offer.key()) for r in req.history]
        session = self.sessions.get(key)
        if session is None or session.seen != seen[: len(session.seen)] or len(session.seen) >= len(seen) > 0:
            session = self._open(key, req, utility)
        self.sessions.move_to_end(key)
        for record in req.history[len(session.seen) :]:
            if record.sender == req.me:  # replaying my own earlier move
                session.mechanism.step()
            else:
                session.remote.queued.append(session.imap.to_outcome(record.offer))
                session.mechanism.step()
            session.seen.append((record.sender, record.offer.key()))
            if not session.mechanism.state.running:
                break  # the replay ended it (a non-deterministic negotiator); the move below says how
        return self._mine(key, req, session)

    def _mine(self, key: tuple[str, str], req: RespondRequest, session: _Session) -> Response:
        mechanism = session.mechanism
        if mechanism.state.running or not mechanism.state.started:
            mechanism.step()
        state = mechanism.state
        name = type(session.mine).__name__
        if state.agreement is not None:
            self.sessions.pop(key, None)
            return Response(action=Action.ACCEPT, reason=f"NegMAS {name} accepted")
        if state.running and state.current_proposer == session.mine.id and state.current_offer is not None:
            offer = session.imap.to_offer(state.current_offer)
            session.seen.append((req.me, offer.key()))
            return Response(action=Action.COUNTER, offer=offer, reason=f"NegMAS {name}")
        self.sessions.pop(key, None)
        why = "timed out" if state.timedout else "ended the negotiation" if state.broken else "made no offer"
        return Response(action=Action.WALK_AWAY, reason=f"NegMAS {name} {why}")

    def _open(self, key: tuple[str, str], req: RespondRequest, utility: Utility) -> _Session:
        imap = issue_map([_IssueView(i) for i in req.issues])
        ufun = ScaleoutUfun(utility)
        mechanism = SAOMechanism(
            outcome_space=ufun.outcome_space, n_steps=2 * req.max_rounds, one_offer_per_step=True, time_limit=None
        )
        mine, remote = self.factory(), _Remote(name="remote")
        i_open = not req.history or req.history[0].sender == req.me
        for negotiator in (mine, remote) if i_open else (remote, mine):
            mechanism.add(negotiator, ufun=ufun if negotiator is mine else None)
        session = _Session(mechanism, mine, remote, imap)
        self.sessions[key] = session
        while len(self.sessions) > self.max_sessions:
            self.sessions.popitem(last=False)
        return session


class _IssueView:
    """Our issue with the attributes ``issue_map`` reads from a NegMAS issue (grid values as floats)."""

    def __init__(self, issue: Issue) -> None:
        self.name, self.all = issue.name, tuple(issue.values)

    def is_continuous(self) -> bool:
        return False


def _utility_for(preferences: AnyPreferences | Mapping[str, AnyPreferences] | UtilityFor) -> UtilityFor:
    if isinstance(preferences, Preferences | TablePreferences | AdditivePreferences | Mapping):
        negotiator = Negotiator(preferences)  # the same preferences-per-item rules as negotiator_agent
        return negotiator.utility
    return preferences


def negmas_agent(
    name: str,
    negotiator: str | NegotiatorFactory,
    preferences: AnyPreferences | Mapping[str, AnyPreferences] | UtilityFor,
    *,
    description: str = "",
    tags: list[str] | None = None,
    items: list[str] | None = None,
    max_sessions: int = MAX_SESSIONS,
) -> Agent:
    """An agent whose ``respond`` skill is played by a NegMAS negotiator: ``negotiator`` is its class, a dotted
    path (``"negmas.sao.AspirationNegotiator"``) or a zero-argument factory; ``preferences`` (any model:
    linear, table, additive; one, or one per item, or a function of the item and issues) become its NegMAS ufun.
    Serve it like any agent (A2A + MCP)."""
    factory: NegotiatorFactory = load_negotiator_class(negotiator) if isinstance(negotiator, str) else negotiator
    kind = getattr(factory, "__name__", type(factory).__name__)
    utility_for = _utility_for(preferences)
    sessions = NegmasSessions(factory, max_sessions)
    agent = Agent(
        name,
        description or f"NegMAS negotiator ({kind})",
        tags=["negotiation", "negmas", *(tags or [])],
        metadata={"strategy": f"negmas:{kind}", "guided": False},
    )

    @agent.skill(tags=["negotiation", "alternating-offers", *(items or [])])
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        """Answer the offer on the table as the NegMAS negotiator does: accept, counter, or walk away."""
        if req.contract is not None:
            return Response(action=Action.ACCEPT, reason="agreed, but I hold no signing key")
        utility = utility_for(req.item, req.issues)
        if utility is None:
            return Response(action=Action.WALK_AWAY, reason=f"{name} does not trade {req.item!r}")
        move = sessions.move(req, utility)
        if move.action is Action.ACCEPT and (req.standing_offer is None or not utility.acceptable(req.standing_offer)):
            return Response(action=Action.WALK_AWAY, reason="guardrail: the offer is below my reservation value")
        if move.action is Action.COUNTER and move.offer is not None and not utility.acceptable(move.offer):
            return Response(action=Action.WALK_AWAY, reason="guardrail: my counter-offer is below my reservation")
        return move

    return agent
