"""Multi-issue alternating offers, bilateral and one-to-many (a buyer in parallel threads with several sellers).

Rules: the first party opens; parties alternate; a round is one move by each. A move accepts the offer on the
table, counters with a complete offer from the issue grid, or walks away. Accepting with nothing on the table,
an offer off the grid, a failed call or a reply later than ``timeout_s`` ends the negotiation without a deal.
After ``max_rounds`` rounds without agreement the deadline has passed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence

import anyio
from pydantic import BaseModel, Field

from agents.negotiators.utility import LinearUtility
from orchestrator.negotiation.analytics import analyse
from orchestrator.negotiation.calls import Ledger, NegotiationCallError, NegotiationTimeout, Party, call_skill
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

__all__ = ["alternating_offers", "one_to_many", "OneToManyResult", "Utilities"]

Utilities = tuple[LinearUtility, LinearUtility]


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
) -> Outcome:
    outcome = Outcome(
        negotiation_id=negotiation_id,
        parties=parties,
        agreement=agreement,
        rounds=rounds,
        reason=reason,
        history=history,
        sources=dict(sources),
    )
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
    return outcome


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
) -> Outcome:
    """Run one bilateral negotiation; ``utilities`` (first's, second's) are only used for the analytics."""
    if not 1 <= max_rounds <= MAX_HISTORY // 2:
        raise ValueError(f"max_rounds must be between 1 and {MAX_HISTORY // 2}, got {max_rounds}")
    nid = negotiation_id or f"neg-{uuid.uuid4().hex[:12]}"
    names = [first.name, second.name]
    history: list[OfferRecord] = []
    sources: Counter[str] = Counter()
    turns = 2 * max_rounds

    def done(reason: str, rnd: int, agreement: Offer | None = None) -> Outcome:
        return _outcome(nid, names, history, reason, rnd, agreement, issues, utilities, sources)

    for turn in range(turns):
        mover, other = (first, second) if turn % 2 == 0 else (second, first)
        rnd = turn // 2 + 1
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
            return done(f"accepted by {mover.name}", rnd, standing)
        if reply.action is Action.WALK_AWAY:
            return done(f"{mover.name} walked away: {reply.reason}", rnd)
        assert reply.offer is not None  # a counter always carries an offer (Response validates it)
        problem = validate_offer(reply.offer, issues)
        if problem is not None:
            return done(f"protocol violation: {mover.name} offered off the grid: {problem}", rnd)
        history.append(OfferRecord(sender=mover.name, round=rnd, offer=reply.offer))
    return done(f"deadline: no agreement after {max_rounds} rounds", max_rounds)


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
    utilities: dict[str, Utilities] | None = None,
    timeout_s: float = 60.0,
    ledger: Ledger | None = None,
    id_prefix: str | None = None,
) -> OneToManyResult:
    """Negotiate with every seller at once (buyer opens each thread); the buyer keeps the agreement that
    ``select`` scores highest (default: its own utility when known, else the fewest rounds); ties go to the
    alphabetically first seller."""
    prefix = id_prefix or f"neg-{uuid.uuid4().hex[:8]}"
    outcomes: dict[str, Outcome] = {}

    async def thread(seller: Party) -> None:
        outcomes[seller.name] = await alternating_offers(
            buyer,
            seller,
            issues,
            item=item,
            max_rounds=max_rounds,
            negotiation_id=f"{prefix}-{seller.name}",
            timeout_s=timeout_s,
            utilities=(utilities or {}).get(seller.name),
            ledger=ledger,
        )

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
