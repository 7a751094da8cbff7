"""Smart manufacturing: a customer order becomes supplier contracts and a delivery schedule, by negotiation.

Order -> bill of materials -> contract net among the suppliers of each component -> alternating-offers
negotiations with the best bidders -> contracts -> sealed-bid auctions among distributors for every delivery
-> a schedule. Every agent is an A2A agent reached in-process or over HTTP. A contract worth more than
``--approval-threshold`` EUR waits for the purchasing manager: ``--approve auto`` (default) approves it, ``ask``
asks on the terminal, ``reject`` refuses it (a refused contract is not executed: its component is not delivered).

Run: ``python -m scenarios.smart_manufacturing`` (``--help`` for options). Importable: ``run(ScenarioConfig())``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import replace
from functools import partial
from typing import Literal

import anyio

from agents.llm.base import Brain
from agents.negotiators import Utility, utility_for
from orchestrator.energy import EnergyModel
from orchestrator.negotiation import (
    Ledger,
    NegotiationRecorder,
    NegotiationRuns,
    Party,
    award_best,
    collect_proposals,
    one_to_many,
    sealed_bid_auction,
)
from orchestrator.negotiation.runs import record_with, recording_runs
from orchestrator.negotiation.signing import ContractSigning
from orchestrator.negotiation.transport import serve_parties
from protocol.negotiation import AuctionCall, CallForProposals, Contract, Outcome
from registry import Registration, Registry
from scenarios.manufacturing_report import format_report, write_outputs
from scenarios.manufacturing_result import (
    AgentReport,
    AgentTiming,
    ComponentSummary,
    Delivery,
    NegotiationSummary,
    OfferPoint,
    ScenarioResult,
    Timing,
)
from scenarios.manufacturing_trust import ScenarioTrust
from scenarios.manufacturing_world import (
    ASSEMBLY_DAYS,
    BOMS,
    MANUFACTURER,
    MANUFACTURER_LLM,
    MAX_TRANSIT_DAYS,
    ScenarioConfig,
    World,
    build_world,
    buyer_preferences,
    component_issues,
)

__all__ = [
    "ScenarioConfig",
    "ScenarioResult",
    "run",
    "arun",
    "main",
    "source_component",
    "ship_delivery",
    "scenario_result",
    "purchasing_approval",
]


def _say(config: ScenarioConfig, text: str) -> None:
    if config.progress:
        print(text, file=sys.stderr, flush=True)


def _trace(outcome: Outcome, buyer: Utility, seller: Utility) -> list[OfferPoint]:
    return [
        OfferPoint(
            round=r.round,
            sender=r.sender,
            buyer_utility=round(buyer(r.offer), 4),
            seller_utility=round(seller(r.offer), 4),
        )
        for r in outcome.history
    ]


@contextmanager
def _fleet_registry(world: World, parties: dict[str, Party]) -> Iterator[Registry]:
    """A registry (SQLite, for this run) holding every agent's card at the URL it is reached on."""
    transport: Literal["local", "a2a"] = "local" if world.config.transport == "local" else "a2a"
    with tempfile.TemporaryDirectory(prefix="scaleout-scenario-") as tmp, Registry(f"sqlite:///{tmp}/fleet.db") as reg:
        reg.register_many(
            Registration(card=agent.card(_url(parties[agent.name])), transport=transport) for agent in world.agents
        )
        yield reg


def _url(party: Party) -> str:
    assert party.client is not None  # serve_parties reaches every agent through an A2A client
    return party.client.url


def _suppliers_of(registry: Registry, component: str, limit: int) -> list[str]:
    """Names of the healthy agents that answer calls for proposals for ``component``, found in the registry."""
    return sorted(r.name for r in registry.search(skill="propose", tags=[component], limit=limit))


async def source_component(
    world: World,
    parties: dict[str, Party],
    suppliers: list[str],
    component: str,
    needed: int,
    llm_left: int,
    ledger: Ledger,
    runs: NegotiationRuns | None = None,
    signing: ContractSigning | None = None,
) -> tuple[ComponentSummary, list[NegotiationSummary], Contract | None]:
    """Contract net + negotiations + award for one component; with ``runs``, each negotiation is recorded as a
    run (the contract net, and every alternating-offers thread); with ``signing``, the award is a signed contract."""
    async with record_with(runs, f"contract net: {component}", protocol="contract_net") as recorder:
        return await _source(world, parties, suppliers, component, needed, llm_left, ledger, runs, recorder, signing)


async def _source(
    world: World,
    parties: dict[str, Party],
    suppliers: list[str],
    component: str,
    needed: int,
    llm_left: int,
    ledger: Ledger,
    runs: NegotiationRuns | None,
    recorder: NegotiationRecorder,
    signing: ContractSigning | None = None,
) -> tuple[ComponentSummary, list[NegotiationSummary], Contract | None]:
    config = world.config
    issues = component_issues(component, needed, config.due_day)
    buyer_u = utility_for(buyer_preferences(config.due_day), issues)
    cfp = CallForProposals(
        cfp_id=f"cfp-{component}",
        buyer=MANUFACTURER,
        item=component,
        quantity=needed,
        due_day=config.due_day,
        issues=issues,
        deadline_s=60.0,
    )
    bidders = [parties[n] for n in suppliers]
    cn = await collect_proposals(
        cfp, bidders, lambda p: buyer_u(p.offer) if p.offer else -1.0, ledger=ledger, recorder=recorder
    )
    top = cn.ranked[: config.bidders]
    use_llm = config.brain == "llm" or (config.brain == "mixed" and 0 < len(top) <= llm_left)
    buyer = replace(parties[MANUFACTURER_LLM if use_llm else MANUFACTURER], role="buyer")
    seller_u = {p.bidder: utility_for(world.supplier_preferences[p.bidder][component], issues) for p in top}

    def thread_run(seller: Party) -> AbstractAsyncContextManager[NegotiationRecorder]:
        name = f"negotiation: {component}, {buyer.name} and {seller.name}"
        return record_with(runs, name, protocol="alternating")

    talks = await one_to_many(
        buyer,
        [replace(parties[p.bidder], role="seller") for p in top],
        issues,
        item=component,
        max_rounds=config.rounds,
        utilities={s: (buyer_u, u) for s, u in seller_u.items()},
        id_prefix=f"neg-{component}",
        ledger=ledger,
        recorders=thread_run,
    )
    summaries = [
        NegotiationSummary(
            item=component,
            buyer=buyer.name,
            seller=o.parties[1],
            brain="llm" if use_llm else "rule",
            outcome=o,
            trace=_trace(o, buyer_u, seller_u[o.parties[1]]),
            seller_preferences=world.supplier_profiles[o.parties[1]],
        )
        for o in talks.outcomes
    ]
    # award order: negotiated agreements (best for the buyer first), then untouched proposals on their own terms
    agreed = sorted(
        (o for o in talks.outcomes if o.agreement is not None), key=lambda o: (-o.utilities[buyer.name], o.parties[1])
    )
    terms = {o.parties[1]: o.agreement for o in agreed if o.agreement is not None}
    proposals = len(cn.ranked)
    by_bidder = {p.bidder: p for p in cn.ranked}
    rest = [p for p in cn.ranked if p.bidder not in terms and p.offer and buyer_u.acceptable(p.offer)]
    cn.ranked = [by_bidder[o.parties[1]] for o in agreed] + rest
    cn = await award_best(cn, parties, terms=terms, ledger=ledger, recorder=recorder, signing=signing)
    winner = cn.awarded[0] if cn.awarded else None
    contract = None
    if winner is not None and winner.offer is not None:
        negotiation = next((o.negotiation_id for o in agreed if o.parties[1] == winner.bidder), "")
        contract = Contract(
            contract_id=f"contract-{component}",
            buyer=MANUFACTURER,
            seller=winner.bidder,
            item=component,
            terms=winner.offer,
            negotiation_id=negotiation,
        )
    note = "" if contract else "no acceptable terms from any supplier"
    if contract and not contract.negotiation_id:
        note = "no negotiation agreed; awarded on proposed terms"
    summary = ComponentSummary(
        component=component,
        quantity=needed,
        asked=len(bidders),
        proposals=proposals,
        refusals=len(cn.refusals),
        late=len(cn.late),
        failed=len(cn.failed),
        invalid=len(cn.invalid),
        negotiated_with=[p.bidder for p in top],
        winner=winner.bidder if winner else None,
        withdrawn=cn.withdrawn,
        note=note,
    )
    return summary, summaries, contract


async def ship_delivery(
    parties: dict[str, Party],
    carriers: Sequence[str],
    shipment: str,
    item: str,
    origin: str,
    destination: str,
    quantity: int,
    earliest: int,
    latest: int,
    ledger: Ledger,
    runs: NegotiationRuns | None = None,
    signing: ContractSigning | None = None,
) -> Delivery:
    """A sealed-bid auction among ``carriers`` for one delivery (recorded as a run with ``runs``; a signed
    contract with ``signing``, the key of ``destination``)."""
    call = AuctionCall(
        auction_id=shipment,
        item=item,
        origin=origin,
        destination=destination,
        quantity=quantity,
        earliest_day=earliest,
        latest_day=max(latest, earliest),
        deadline_s=60.0,
    )
    async with record_with(runs, f"auction: {shipment}", protocol="auction") as recorder:
        auction = await sealed_bid_auction(
            call, [parties[c] for c in carriers], ledger=ledger, recorder=recorder, signing=signing
        )
    win = auction.winner
    if win is None or win.day is None:
        return Delivery(
            shipment=shipment,
            item=item,
            origin=origin,
            destination=destination,
            quantity=quantity,
            carrier=None,
            pickup_day=None,
            arrival_day=None,
            price=None,
            bids=len(auction.ranked),
            note="no carrier had room in the time window",
        )
    return Delivery(
        shipment=shipment,
        item=item,
        origin=origin,
        destination=destination,
        quantity=quantity,
        carrier=win.bidder,
        pickup_day=win.day,
        arrival_day=win.day + win.days,
        price=auction.payment,
        bids=len(auction.ranked),
    )


async def arun(
    config: ScenarioConfig,
    brain: Brain | None = None,
    runs: NegotiationRuns | None = None,
    *,
    trust: ScenarioTrust | None = None,
) -> ScenarioResult:
    """Run the scenario; ``brain`` defaults to the bundled model (``LlamaCpp()``) unless ``brain='rule'``.
    With ``runs`` (or ``config.record_runs``, a database) every negotiation is recorded as an orchestrator run,
    and every contract is signed by both parties and appended to the ledger in that database (``trust`` holds
    the keys, and the ledger's check after the run; one is made when not given). With ``trust`` and no run store,
    contracts are signed but kept in no ledger."""
    if runs is None and config.record_runs is not None:
        async with recording_runs(config.record_runs) as recorded:
            result = await arun(config, brain, recorded, trust=trust or ScenarioTrust(config.seed))
            _say_runs(config, recorded)
            return result
    if trust is None and runs is not None:
        trust = ScenarioTrust(config.seed)
    if config.brain != "rule" and brain is None:
        from agents.llm import LlamaCpp

        brain = LlamaCpp()
    started = time.perf_counter()
    world = build_world(config, brain if config.brain != "rule" else None)
    if trust is not None:
        trust.arm(world.agents)
        trust.open(runs)
    ledger = Ledger()
    bom = BOMS[config.product]
    components, negotiations, contracts, schedule = [], [], [], []
    llm_left = config.llm_negotiations
    _say(config, f"starting {len(world.agents)} agents ({config.transport} transport, brain={config.brain})")
    async with serve_parties(world.agents, config.transport) as parties:
        with _fleet_registry(world, parties) as registry:
            found = {c: _suppliers_of(registry, c, config.suppliers) for c in bom}
        for i, (component, per_unit) in enumerate(bom.items(), 1):
            _say(
                config,
                f"[{i}/{len(bom)}] sourcing {component}: contract net among {len(found[component])} suppliers "
                "found in the registry",
            )
            summary, talks, contract = await source_component(
                world,
                parties,
                found[component],
                component,
                config.quantity * per_unit,
                llm_left,
                ledger,
                runs,
                trust.signing(MANUFACTURER) if trust is not None else None,
            )
            if contract is not None:
                refusal = await purchasing_approval(config, contract)
                if refusal is not None:
                    contract, summary = None, summary.model_copy(update={"note": refusal})
            llm_left -= sum(1 for t in talks if t.brain == "llm")
            components.append(summary)
            negotiations += talks
            if contract is not None:
                contracts.append(contract)
        _say(config, f"scheduling {len(contracts) + 1} deliveries by auction among {len(world.carriers)} carriers")
        last_in = config.due_day - ASSEMBLY_DAYS - MAX_TRANSIT_DAYS
        for c in contracts:
            day = int(c.terms.values["delivery_day"])
            schedule.append(
                await ship_delivery(
                    parties,
                    world.carriers,
                    f"ship-{c.item}",
                    c.item,
                    c.seller,
                    "factory",
                    int(c.terms.values["quantity"]),
                    day,
                    min(day + 4, last_in),
                    ledger,
                    runs,
                    trust.signing("factory") if trust is not None else None,
                )
            )
        arrivals = [d.arrival_day for d in schedule]
        complete = len(contracts) == len(bom) and all(a is not None for a in arrivals)
        assembly_day = max(a for a in arrivals if a is not None) + ASSEMBLY_DAYS if complete else None
        if assembly_day is not None:
            schedule.append(
                await ship_delivery(
                    parties,
                    world.carriers,
                    f"ship-{config.product}",
                    config.product,
                    "factory",
                    "customer",
                    config.quantity,
                    assembly_day,
                    max(config.due_day, assembly_day + 1),
                    ledger,
                    runs,
                    trust.signing("customer") if trust is not None else None,
                )
            )
    if trust is not None:
        await anyio.to_thread.run_sync(trust.verify)
    result = scenario_result(
        config, components, contracts, negotiations, schedule, assembly_day, ledger, time.perf_counter() - started
    )
    if config.out is not None:
        for path in write_outputs(result, config.out):
            _say(config, f"wrote {path}")
    return result


async def purchasing_approval(config: ScenarioConfig, contract: Contract) -> str | None:
    """The purchasing manager's decision on ``contract`` when it is worth more than the approval threshold:
    None when it goes ahead, else why it was refused (``config.approve``: auto, ask on the terminal, reject)."""
    value = contract.terms.values["unit_price"] * contract.terms.values["quantity"]
    limit = config.approval_threshold
    if value <= limit:
        return None
    what = f"{contract.contract_id} with {contract.seller}: EUR {value:,.2f}, above the threshold of EUR {limit:,.2f}"
    if config.approve == "auto":
        _say(config, f"  approved automatically (--approve auto): {what}")
        return None
    if config.approve == "reject":
        return f"refused by the purchasing manager (--approve reject): {what}"
    answer = await anyio.to_thread.run_sync(_ask_terminal, f"Purchasing manager: approve {what}? [y/N] ")
    if answer.strip().lower() in ("y", "yes"):
        return None
    return f"refused by the purchasing manager (answered {answer.strip()[:40]!r}): {what}"


def _ask_terminal(prompt: str) -> str:
    print(prompt, end="", file=sys.stderr, flush=True)
    try:
        return sys.stdin.readline(200)
    except (OSError, ValueError):  # no terminal to ask: nobody approved
        return ""


def _say_runs(config: ScenarioConfig, runs: NegotiationRuns | None) -> None:
    """Name the negotiation runs recorded (always printed: the ids are what recording is for)."""
    if runs is None:
        return
    print(f"recorded {len(runs.opened)} negotiation runs in {config.record_runs}:", file=sys.stderr)
    for run_id in runs.opened:
        print(f"  {run_id}", file=sys.stderr)
    print(
        f"  see them: scaleout orchestrator serve --db {config.record_runs} & scaleout runs list --kind negotiation",
        file=sys.stderr,
        flush=True,
    )


def scenario_result(
    config: ScenarioConfig,
    components: list[ComponentSummary],
    contracts: list[Contract],
    negotiations: list[NegotiationSummary],
    schedule: list[Delivery],
    assembly_day: int | None,
    ledger: Ledger,
    seconds: float,
) -> ScenarioResult:
    """The run's report: contracts, schedule, completion and cost, and each agent's calls, time and energy."""
    final = schedule[-1] if assembly_day is not None else None
    completion = final.arrival_day if final is not None else None
    cost = sum(c.terms.values["unit_price"] * c.terms.values["quantity"] for c in contracts)
    cost += sum(d.price or 0.0 for d in schedule)
    energy = EnergyModel.from_env()
    timings = {
        n: AgentTiming(
            seconds=round(e.seconds, 4),
            cpu_seconds=round(e.usage.cpu_seconds, 4),
            energy_j=round(energy.joules(e.usage, observed_wall_s=e.seconds), 3),
        )
        for n, e in sorted(ledger.agents.items())
    }
    return ScenarioResult(
        config=config.model_dump(mode="json"),
        components=components,
        contracts=contracts,
        negotiations=negotiations,
        schedule=schedule,
        assembly_day=assembly_day,
        completion_day=completion,
        on_time=completion is not None and completion <= config.due_day,
        total_cost=round(cost, 2),
        agents={
            n: AgentReport(calls=e.calls, model_calls=e.usage.calls, tokens=e.usage.total_tokens)
            for n, e in sorted(ledger.agents.items())
        },
        timing=Timing(
            wall_seconds=round(seconds, 3), agents=timings, energy_j=round(sum(t.energy_j for t in timings.values()), 3)
        ),
    )


def run(
    config: ScenarioConfig | None = None, brain: Brain | None = None, *, trust: ScenarioTrust | None = None
) -> ScenarioResult:
    """Synchronous entry point: ``run(ScenarioConfig(suppliers=100, brain="rule"))``."""
    return anyio.run(partial(arun, config or ScenarioConfig(), brain, trust=trust))


def parse_args(argv: Sequence[str] | None = None) -> ScenarioConfig:
    """Command-line flags -> ``ScenarioConfig`` (validated; a bad value exits with the reason)."""
    d = ScenarioConfig()
    p = argparse.ArgumentParser(prog="python -m scenarios.smart_manufacturing", description=__doc__.split("\n")[0])
    p.add_argument("--product", choices=sorted(BOMS), default=d.product)
    p.add_argument("--quantity", type=int, default=d.quantity, help="units ordered by the customer")
    p.add_argument("--due-day", type=int, default=d.due_day, help="day the customer wants the order")
    p.add_argument("--suppliers", type=int, default=d.suppliers, help="10 to 1,000")
    p.add_argument("--distributors", type=int, default=d.distributors, help="carriers bidding for deliveries")
    p.add_argument(
        "--brain",
        choices=["llm", "rule", "mixed"],
        default=d.brain,
        help="mixed: the model guides the manufacturer in --llm-negotiations negotiations",
    )
    p.add_argument("--llm-negotiations", type=int, default=d.llm_negotiations)
    p.add_argument("--bidders", type=int, default=d.bidders, help="best proposals negotiated per component")
    p.add_argument("--rounds", type=int, default=d.rounds, help="alternating-offers rounds per negotiation")
    p.add_argument("--strategy", default=d.strategy, help="boulware, linear, conceder or tit_for_tat")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--transport", choices=["local", "http"], default=d.transport)
    p.add_argument("--out", default="scenario-out", help="directory for result.json and the picture ('' for none)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--approve",
        choices=["auto", "ask", "reject"],
        default=d.approve,
        help="contracts above --approval-threshold: approve (auto), ask on the terminal, or reject them",
    )
    p.add_argument(
        "--approval-threshold",
        type=float,
        default=d.approval_threshold,
        metavar="EUR",
        help=f"contract value above which the purchasing manager decides (default {d.approval_threshold:,.0f})",
    )
    p.add_argument(
        "--record-runs",
        metavar="DB",
        help="record every negotiation as an orchestrator run in this database (URL or SQLite path)",
    )
    a = p.parse_args(argv)
    try:
        return ScenarioConfig(
            product=a.product,
            quantity=a.quantity,
            due_day=a.due_day,
            suppliers=a.suppliers,
            distributors=a.distributors,
            brain=a.brain,
            llm_negotiations=a.llm_negotiations,
            bidders=a.bidders,
            rounds=a.rounds,
            strategy=a.strategy,
            seed=a.seed,
            transport=a.transport,
            out=a.out or None,
            progress=not a.quiet,
            record_runs=a.record_runs,
            approve=a.approve,
            approval_threshold=a.approval_threshold,
        )
    except ValueError as exc:
        p.error(str(exc))
        raise  # unreachable: p.error exits


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line and print the report."""
    config = parse_args(argv)
    trust = ScenarioTrust(config.seed)
    result = run(config, trust=trust)
    print(format_report(result, trust.report_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
