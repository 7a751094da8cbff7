"""Multi-issue alternating offers, bilateral and one-to-many (a buyer in parallel threads with several sellers).

Rules: the first party opens; parties alternate; a round is one move by each. A move accepts the offer on the
table, counters with a complete offer from the issue grid, or walks away. Accepting with nothing on the table,
an offer off the grid, a failed call or a reply later than ``timeout_s`` ends the negotiation without a deal.
After ``max_rounds`` rounds without agreement the deadline has passed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

import anyio
from pydantic import BaseModel, Field

from agents.negotiators.utility import Utility
from orchestrator.negotiation.analytics import Analysis, analyse
from orchestrator.negotiation.calls import Ledger, NegotiationCallError, NegotiationTimeout, Party, call_skill
from orchestrator.negotiation.recorder import (
    NO_RECORDER,
    Ended,
    NashPoint,
    NegotiationRecorder,
    OfferStep,
    PartyInfo,
    Started,
    frontier_points,
    move_of,
    outcome_kind,
)
from orchestrator.negotiation.signing import AgreementSigning
from protocol.negotiation import (
    MAX_HISTORY,
    Action,
    Issue,
    Offer,
    OfferRecord,
    Outcome,
    RespondRequest,
    Response,
    validate_offer,
)

__all__ = ["alternating_offers", "one_to_many", "OneToManyResult", "Utilities", "RecorderFactory"]

Utilities = tuple[Utility, Utility]
RecorderFactory = Callable[[Party], AbstractAsyncContextManager[NegotiationRecorder]]
"""Opens the recorder of one one-to-many thread (e.g. a run per seller: ``NegotiationRuns.recording``)."""


def _outcome(
    negotiation_id: str,
    parties: list[str],
    history: list[OfferRecord],
    reason: str,
    rounds: int,
    agreement: Offer | None,
    issues: list[Issue],
    utilities: Utilities | None,
    sources: Counter[str],
) -> tuple[Outcome, Analysis | None]:
    outcome = Outcome(
        negotiation_id=negotiation_id,
        parties=parties,
        agreement=agreement,
        rounds=rounds,
        reason=reason,
        history=history,
        sources=dict(sources),
    )
    analysis = None
    if utilities is not None:
        analysis = analyse(agreement, issues, *utilities)
        a, b = utilities
        if analysis.utilities is not None:
            outcome.utilities = dict(zip(parties, analysis.utilities, strict=True))
        else:
            outcome.utilities = {parties[0]: a.reservation, parties[1]: b.reservation}
        outcome.social_welfare = analysis.social_welfare
        outcome.pareto_distance = analysis.pareto_distance
        outcome.nash_distance = analysis.nash_distance
    return outcome, analysis


def _ended(outcome: Outcome, analysis: Analysis | None) -> Ended:
    """``negotiation.ended`` for one bilateral negotiation (Pareto and Nash when both utilities are known)."""
    names = outcome.parties
    nash = None
    if analysis is not None and analysis.nash is not None and analysis.nash_offer is not None:
        utilities = {n: round(u, 4) for n, u in zip(names, analysis.nash, strict=True)}
        nash = NashPoint(offer=analysis.nash_offer.values, utilities=utilities)
    return Ended(
        outcome=outcome_kind(outcome),
        agreement=outcome.agreement.values if outcome.agreement is not None else None,
        utilities={n: round(u, 4) for n, u in outcome.utilities.items()},
        rounds=outcome.rounds,
        pareto=frontier_points(analysis.frontier) if analysis is not None else [],
        nash=nash,
        parties_order=list(names),
        reason=outcome.reason,
    )


async def alternating_offers(
    first: Party,
    second: Party,
    issues: list[Issue],
    *,
    item: str = "",
    max_rounds: int = 10,
    negotiation_id: str | None = None,
    timeout_s: float = 60.0,
    utilities: Utilities | None = None,
    ledger: Ledger | None = None,
    deadline_s: float | None = None,
    recorder: NegotiationRecorder = NO_RECORDER,
    signing: AgreementSigning | None = None,
) -> Outcome:
    """Run one bilateral negotiation; ``utilities`` (first's, second's) are only used for the analytics.

    ``deadline_s`` bounds the whole negotiation (then it ends without a deal); ``recorder`` hears every step.
    With ``signing``, an accept becomes an agreement only once both parties signed it (``first`` as buyer,
    ``second`` as seller; see ``AgreementSigning``); otherwise it ends without one, saying why."""
    if not 1 <= max_rounds <= MAX_HISTORY // 2:
        raise ValueError(f"max_rounds must be between 1 and {MAX_HISTORY // 2}, got {max_rounds}")
    nid = negotiation_id or f"neg-{uuid.uuid4().hex[:12]}"
    names = [first.name, second.name]
    recorder.started(
        Started(
            protocol="alternating",
            parties=[_info(first, "first"), _info(second, "second")],
            issues=issues,
            max_rounds=max_rounds,
            deadline_s=deadline_s,
        )
    )
    offers = _OfferSteps(recorder, utilities, first, second)
    outcome: Outcome | None = None
    with anyio.move_on_after(deadline_s if deadline_s else float("inf")):
        outcome = await _negotiate(
            first, second, issues, nid, item, max_rounds, timeout_s, utilities, ledger, offers, signing
        )
    if outcome is None:  # the deadline passed mid-move
        reason = f"deadline: the negotiation passed its deadline of {deadline_s:g} s"
        history, sources = offers.history, offers.sources
        outcome, analysis = _outcome(nid, names, history, reason, offers.last_round, None, issues, utilities, sources)
        offers.flush(None)
        recorder.ended(_ended(outcome, analysis))
    return outcome


def _info(party: Party, role: str) -> PartyInfo:
    return PartyInfo(name=party.name, agent_id=party.agent_id, role=party.role or role)


class _OfferSteps:
    """The history and move counts of one negotiation, and its offers as recorded steps: an offer is recorded
    when its receiver answers it (that answer is its ``response``), or at the end."""

    def __init__(self, recorder: NegotiationRecorder, utilities: Utilities | None, first: Party, second: Party) -> None:
        self.recorder = recorder
        self.utilities = utilities
        self.names = (first.name, second.name)
        self.history: list[OfferRecord] = []
        self.sources: Counter[str] = Counter()
        self.pending: OfferStep | None = None
        self.last_round = 1

    def made(self, rnd: int, sender: str, receiver: str, reply: Response) -> None:
        assert reply.offer is not None
        self.history.append(OfferRecord(sender=sender, round=rnd, offer=reply.offer))
        move, overruled = move_of(reply.source)
        values = {}
        if self.utilities is not None:
            values = {n: round(u(reply.offer), 4) for n, u in zip(self.names, self.utilities, strict=True)}
        self.pending = OfferStep(
            round=rnd,
            sender=sender,
            receiver=receiver,
            offer=reply.offer.values,
            utilities=values,
            move=move,
            overruled=overruled,
            reason=reply.reason or None,
        )

    def flush(self, response: Literal["counter", "accept", "reject"] | None) -> None:
        if self.pending is not None:
            self.recorder.offer(self.pending.model_copy(update={"response": response}))
            self.pending = None


async def _negotiate(
    first: Party,
    second: Party,
    issues: list[Issue],
    nid: str,
    item: str,
    max_rounds: int,
    timeout_s: float,
    utilities: Utilities | None,
    ledger: Ledger | None,
    offers: _OfferSteps,
    signing: AgreementSigning | None = None,
) -> Outcome:
    names = [first.name, second.name]
    history, sources = offers.history, offers.sources
    turns = 2 * max_rounds

    def done(
        reason: str, rnd: int, agreement: Offer | None = None, response: Literal["accept", "reject"] | None = None
    ) -> Outcome:
        offers.flush(response)
        outcome, analysis = _outcome(nid, names, history, reason, rnd, agreement, issues, utilities, sources)
        offers.recorder.ended(_ended(outcome, analysis))
        return outcome

    for turn in range(turns):
        mover, other = (first, second) if turn % 2 == 0 else (second, first)
        rnd = turn // 2 + 1
        offers.last_round = rnd
        req = RespondRequest(
            negotiation_id=nid,
            me=mover.name,
            opponent=other.name,
            item=item,
            issues=issues,
            round=rnd,
            max_rounds=max_rounds,
            time=turn / (turns - 1),
            history=history,
        )
        try:
            reply = await call_skill(mover, "respond", req, Response, timeout_s=timeout_s, ledger=ledger)
        except NegotiationTimeout as exc:
            return done(f"timeout: {exc}", rnd)
        except NegotiationCallError as exc:
            return done(f"failed: {exc}", rnd)
        sources[reply.source] += 1
        if reply.action is Action.ACCEPT:
            standing = req.standing_offer
            if standing is None:
                return done(f"protocol violation: {mover.name} accepted with no offer on the table", rnd)
            if signing is not None:
                contract = await signing.confirm(req, other, mover, first.name, ledger, offers.recorder)
                if contract is None:
                    why = signing.refused.get(nid, "not signed")
                    return done(f"accepted by {mover.name}, but no contract: {why}"[:2000], rnd, response="accept")
            return done(f"accepted by {mover.name}", rnd, standing, "accept")
        if reply.action is Action.WALK_AWAY:
            return done(f"{mover.name} walked away: {reply.reason}", rnd, response="reject")
        assert reply.offer is not None  # a counter always carries an offer (Response validates it)
        problem = validate_offer(reply.offer, issues)
        if problem is not None:
            return done(f"protocol violation: {mover.name} offered off the grid: {problem}", rnd)
        offers.flush("counter")
        offers.made(rnd, mover.name, other.name, reply)
    return done(f"deadline: no agreement after {max_rounds} rounds", max_rounds)


@asynccontextmanager
async def _no_recording(_seller: Party) -> AsyncIterator[NegotiationRecorder]:
    yield NO_RECORDER


class OneToManyResult(BaseModel):
    """Every thread's outcome and the one the buyer chose (None when no thread agreed)."""

    best: Outcome | None = None
    outcomes: list[Outcome] = Field(default_factory=list)


async def one_to_many(
    buyer: Party,
    sellers: Sequence[Party],
    issues: list[Issue],
    *,
    item: str = "",
    max_rounds: int = 10,
    select: Callable[[Outcome], float] | None = None,
    utilities: Mapping[str, Utilities] | None = None,
    timeout_s: float = 60.0,
    ledger: Ledger | None = None,
    id_prefix: str | None = None,
    recorders: RecorderFactory | None = None,
) -> OneToManyResult:
    """Negotiate with every seller at once (buyer opens each thread); the buyer keeps the agreement that
    ``select`` scores highest (default: its own utility when known, else the fewest rounds); ties go to the
    alphabetically first seller. ``recorders`` opens a recorder per thread (each thread is its own negotiation)."""
    prefix = id_prefix or f"neg-{uuid.uuid4().hex[:8]}"
    outcomes: dict[str, Outcome] = {}

    async def thread(seller: Party) -> None:
        nid = f"{prefix}-{seller.name}"
        async with (recorders or _no_recording)(seller) as recorder:
            outcomes[seller.name] = await alternating_offers(
                buyer,
                seller,
                issues,
                item=item,
                max_rounds=max_rounds,
                negotiation_id=nid,
                timeout_s=timeout_s,
                utilities=(utilities or {}).get(seller.name),
                ledger=ledger,
                recorder=recorder,
            )
        if seller.name not in outcomes:  # its recording was cancelled (e.g. the run was cancelled)
            outcomes[seller.name] = Outcome(negotiation_id=nid, parties=[buyer.name, seller.name], reason="cancelled")

    async with anyio.create_task_group() as tg:
        for seller in sellers:
            tg.start_soon(thread, seller)

    def default_score(o: Outcome) -> float:
        return o.utilities.get(buyer.name, -float(o.rounds))

    score = select or default_score
    ordered = [outcomes[s.name] for s in sorted(sellers, key=lambda s: s.name)]
    agreed = [o for o in ordered if o.agreement is not None]
    best = max(agreed, key=score) if agreed else None  # max keeps the first of equals: alphabetical ties
    return OneToManyResult(best=best, outcomes=[outcomes[s.name] for s in sellers])
