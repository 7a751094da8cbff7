"""Start a negotiation from a ``NegotiationSpec``: parties resolved from the registry, reached through the
orchestrator's transports (in-process, A2A over HTTP with its agent credentials and egress guard, MCP), the
protocol run as a negotiation run in the orchestrator's task group.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio

from agents.negotiators.utilities import utility_for
from agents.usage import Usage
from orchestrator.negotiation.alternating import alternating_offers
from orchestrator.negotiation.auction import sealed_bid_auction
from orchestrator.negotiation.calls import Ledger, NegotiationCallError, Party, SkillCaller
from orchestrator.negotiation.contract_net import contract_net
from orchestrator.negotiation.recorder import NegotiationRecorder
from orchestrator.negotiation.runs import NegotiationRuns
from orchestrator.negotiation.spec import REQUIRED_SKILLS, NegotiationSpec, PartySpec
from orchestrator.transports import AgentCallError, Transport
from protocol.a2a import new_id
from protocol.negotiation import AuctionCall, CallForProposals, Proposal
from registry.models import AgentRecord, HealthStatus

if TYPE_CHECKING:
    from orchestrator.service import Orchestrator

__all__ = ["start_negotiation", "resolve_parties", "PartyError", "transport_caller"]


class PartyError(ValueError):
    """A party of the spec cannot take part: not registered, unhealthy, or lacking a skill its role needs."""


def transport_caller(transport: Transport, agent: AgentRecord) -> SkillCaller:
    """Calls ``agent``'s skills through the orchestrator's ``transport`` (a fresh message id per call; a call
    that times out or is cancelled is cancelled on the agent too)."""

    async def call(skill: str, arguments: dict[str, Any]) -> tuple[Any, Usage]:
        attempt_id = new_id()
        try:
            result = await transport.call(agent, skill, arguments, attempt_id=attempt_id)
        except AgentCallError as exc:
            raise NegotiationCallError(f"{agent.name}.{skill} failed: {type(exc).__name__}: {exc}") from None
        except anyio.get_cancelled_exc_class():  # timed out or cancelled: stop the agent's task too (bounded)
            with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                await transport.cancel(agent, attempt_id)
            raise
        return result.output, result.usage

    return call


def _lookup(registry: Any, party: PartySpec) -> AgentRecord:
    finder = getattr(registry, "find", None) or getattr(registry, "get", None)
    if finder is None:
        raise PartyError("this orchestrator's registry cannot look agents up by id")
    try:
        record = finder(party.agent_id)
    except LookupError:
        raise PartyError(f"no agent {party.agent_id!r} in the registry; register it, or fix the id") from None
    if not isinstance(record, AgentRecord):
        raise PartyError(f"the registry answered something that is not an agent for {party.agent_id!r}")
    return record


def resolve_parties(orch: Orchestrator, spec: NegotiationSpec) -> list[Party]:
    """The spec's parties as ``Party``s reached through ``orch``'s transports (synchronous: registry reads);
    raises PartyError naming the first party that cannot take part."""
    parties = []
    for party in spec.parties:
        record = _lookup(orch.registry, party)
        if record.status != HealthStatus.HEALTHY:
            raise PartyError(f"agent {party.agent_id!r} is {record.status.value}; only healthy agents take part")
        served = {s.id for s in record.skills}
        missing = [s for s in REQUIRED_SKILLS[spec.protocol] if s not in served]
        if missing:
            raise PartyError(
                f"agent {party.agent_id!r} does not serve {', '.join(missing)}, which a {party.role} in a "
                f"{spec.protocol} needs"
            )
        name = party.name or record.name
        caller = transport_caller(orch.transport, record)
        parties.append(Party(name, caller=caller, agent_id=record.id, role=party.role))
    names = [p.name for p in parties]
    if len(set(names)) != len(names):
        raise PartyError(f"two parties have the same name in {names}; give them distinct 'name's")
    return parties


def _protocol(
    spec: NegotiationSpec, parties: list[Party], run_id: str, recorder: NegotiationRecorder, ledger: Ledger
) -> Callable[[], Coroutine[Any, Any, Any]]:
    """The protocol call for ``spec`` (the run's body)."""
    timeout = spec.move_timeout_s
    if spec.protocol == "alternating":
        first, second = parties
        known = [p.preferences for p in spec.parties]
        utilities = (
            (utility_for(known[0], spec.issues), utility_for(known[1], spec.issues))
            if known[0] is not None and known[1] is not None
            else None
        )
        return lambda: alternating_offers(
            first,
            second,
            spec.issues,
            item=spec.item,
            max_rounds=spec.max_rounds or 10,
            negotiation_id=run_id,
            timeout_s=timeout,
            deadline_s=spec.deadline_s,
            ledger=ledger,
            recorder=recorder,
            utilities=utilities,
        )
    if spec.protocol == "contract_net":
        terms = spec.contract_net
        assert terms is not None  # NegotiationSpec checks it
        cfp = CallForProposals(
            cfp_id=f"cfp-{run_id}",
            buyer=terms.buyer,
            item=spec.item,
            quantity=terms.quantity,
            due_day=terms.due_day,
            issues=spec.issues,
            deadline_s=spec.deadline_s or 30.0,
        )
        utility = utility_for(terms.preferences, spec.issues)

        def score(proposal: Proposal) -> float:
            return utility(proposal.offer) if proposal.offer is not None else -1.0

        return lambda: contract_net(cfp, parties, score, awards=terms.awards, ledger=ledger, recorder=recorder)
    auction = spec.auction
    assert auction is not None  # NegotiationSpec checks it
    call = AuctionCall(
        auction_id=f"auction-{run_id}",
        item=spec.item,
        origin=auction.origin,
        destination=auction.destination,
        quantity=auction.quantity,
        earliest_day=auction.earliest_day,
        latest_day=auction.latest_day,
        deadline_s=spec.deadline_s or 30.0,
    )
    return lambda: sealed_bid_auction(
        call, parties, pricing=auction.pricing, timeout_s=timeout, ledger=ledger, recorder=recorder
    )


async def start_negotiation(orch: Orchestrator, spec: NegotiationSpec, *, owner: str | None = None) -> str:
    """Resolve the parties, store the run and start the protocol in ``orch``'s task group; returns the run id
    once the run is committed. Raises PartyError, StoreUnavailable, LimitExceeded (429)."""
    parties = await anyio.to_thread.run_sync(resolve_parties, orch, spec)
    runs = NegotiationRuns(orch)
    spec_json = spec.model_dump(mode="json", exclude_none=True)
    recorder = await runs.open(spec.title, protocol=spec.protocol, spec=spec_json, owner=owner)
    ledger = Ledger()
    body = _protocol(spec, parties, recorder.run_id, recorder, ledger)

    async def drive() -> None:
        await runs.drive(recorder, body, ledger=ledger)

    try:
        orch.spawn(drive)
    except RuntimeError:
        await runs.finish(recorder, error="the orchestrator stopped before the negotiation started")
        raise
    return recorder.run_id
