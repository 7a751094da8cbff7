"""Negotiation benchmark: a round-robin of our negotiators, and scale runs. Prints figures; asserts nothing.

    python -m bench.negotiation                      # classic round-robin over 24 three-issue scenarios
    python -m bench.negotiation --controls           # the guided negotiator with its pick made by controls
    python -m bench.negotiation --llm 2              # + the model's picks (real model) on 2 scenarios
    python -m bench.negotiation --llm 24 --budget 480  # as many of 24 as start within 8 minutes
    python -m bench.negotiation --scale 1000         # a contract-net round, 1,000 suppliers, with/without signing
    python -m bench.negotiation --model-scale        # the scenario with the real model: 10 suppliers, 10 rounds
    python -m bench.negotiation --league --quick     # NegMAS/Genius/ANL league (bench/league.py; extras needed)

Advantage = (u - reservation) / (max u - reservation), 0 without agreement; utility = u (the reservation value
without agreement). Distances (to the Pareto frontier and the Nash point, in utility space) are averaged over
agreements. ``--llm`` and ``--controls`` compare the model's picks with fixed-position and random controls on the
same scenarios, opponents and seeds (bench/negotiation_picks.py).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from agents.agent import Agent
from agents.llm.base import Brain
from agents.negotiators import (
    LinearUtility,
    Negotiator,
    Preferences,
    negotiator_agent,
    outcome_space,
    set_signing_key,
)
from bench.negotiation_picks import CONTROLS, PickLog, control_agent, guided_agent, print_picks
from orchestrator.ledger import ContractLedger
from orchestrator.negotiation import Ledger, alternating_offers, contract_net, serve_parties
from orchestrator.negotiation.signing import ContractSigning
from orchestrator.runs import RunStore
from protocol.auth import SigningKey
from protocol.negotiation import CallForProposals, Issue, Outcome

CLASSIC = ["boulware", "linear", "conceder", "tit_for_tat"]
ROUND_ROBIN = [*CLASSIC, "adaptive"]  # the classic strategies (the picks' opponents) and the adaptive one
AgentFactory = Callable[[str, str, Preferences], Agent]


@dataclass
class Scenario:
    """A bilateral three-issue scenario: the grid and each side's preferences."""

    name: str
    issues: list[Issue]
    buyer: Preferences
    seller: Preferences


def scenarios(n: int, seed: int) -> list[Scenario]:
    """``n`` generated scenarios: price, quantity, delivery day; random weights and reservation values."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        base = rng.choice([10, 50, 100, 400])
        issues = [
            Issue(name="unit_price", values=[round(base * (0.8 + 0.1 * i), 2) for i in range(9)]),
            Issue(name="quantity", values=[float(q) for q in range(100, 150, 10)]),
            Issue(name="delivery_day", values=[float(d) for d in range(1, 11)]),
        ]

        def prefs(price_up: bool) -> Preferences:
            w = [rng.uniform(0.1, 1.0) for _ in range(3)]
            return Preferences(
                weights=dict(zip(["unit_price", "quantity", "delivery_day"], w, strict=True)),
                increasing={"unit_price": price_up, "quantity": rng.random() < 0.5, "delivery_day": price_up},
                reservation=round(rng.uniform(0.1, 0.45), 3),
            )

        out.append(Scenario(f"s{k:02d}", issues, prefs(False), prefs(True)))
    return out


@dataclass
class Score:
    """Accumulated figures for one negotiator."""

    runs: int = 0
    deals: int = 0
    advantage: list[float] = field(default_factory=list)
    utility: list[float] = field(default_factory=list)
    pareto: list[float] = field(default_factory=list)
    nash: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)

    def add(self, outcome: Outcome, me: str, utility: LinearUtility) -> None:
        self.runs += 1
        best = float(utility.scores(outcome_space(utility.issues).points).max())
        u = outcome.utilities[me] if outcome.agreement is not None else utility.reservation
        self.advantage.append((u - utility.reservation) / (best - utility.reservation))
        self.utility.append(u)
        if outcome.agreement is not None:
            self.deals += 1
            self.pareto.append(outcome.pareto_distance or 0.0)
            self.nash.append(outcome.nash_distance or 0.0)
            self.rounds.append(outcome.rounds)

    def row(self, name: str) -> str:
        def mean(xs: list[float] | list[int]) -> str:
            return f"{statistics.fmean(xs):.3f}" if xs else "  -  "

        return (
            f"{name:<13} {self.runs:>5} {self.deals / max(1, self.runs):>9.1%} {mean(self.advantage):>9} "
            f"{mean(self.utility):>8} {mean(self.pareto):>8} {mean(self.nash):>8} {mean(self.rounds):>7}"
        )


HEADER = (
    f"{'negotiator':<13} {'runs':>5} {'agreement':>9} {'advantage':>9} {'utility':>8} {'pareto':>8} {'nash':>8} "
    f"{'rounds':>7}"
)


def _agent(name: str, kind: str, prefs: Preferences, brain: Brain | None) -> Agent:
    if kind == "llm":
        return negotiator_agent(name, Negotiator(prefs, "boulware"), brain=brain, guided=True)
    return negotiator_agent(name, Negotiator(prefs, kind))


async def round_robin(
    cases: list[Scenario],
    kinds: list[str],
    rounds: int,
    brain: Brain | None,
    opponents: list[str] | None = None,
    make: AgentFactory | None = None,
    progress: bool = False,
    budget_s: float | None = None,
) -> tuple[dict[str, Score], dict[str, int], float]:
    """Every kind against every opponent (default: every kind), in both roles, on every scenario. ``make``
    builds the agents of ``kinds`` (default: the classic and LLM-guided negotiators); no scenario is started
    after ``budget_s`` seconds."""

    def default(name: str, kind: str, prefs: Preferences) -> Agent:
        return _agent(name, kind, prefs, brain)

    scores: dict[str, Score] = defaultdict(Score)
    tokens: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    for case in cases:
        if budget_s is not None and time.perf_counter() - started > budget_s:
            break
        bu, su = LinearUtility(case.buyer, case.issues), LinearUtility(case.seller, case.issues)
        build = {k: make or default for k in kinds} | {k: default for k in opponents or []}
        agents = [build[k](f"buyer-{k}", k, case.buyer) for k in build]
        agents += [build[k](f"seller-{k}", k, case.seller) for k in build]
        unique = list({a.name: a for a in agents}.values())
        games: list[tuple[str, str, tuple[str, ...]]]
        if opponents is None:  # every kind meets every kind, as buyer and as seller; both sides scored
            games = [(a, b, ("buyer", "seller")) for a in kinds for b in kinds]
        else:  # each kind under test meets each opponent in both roles; only the kind under test is scored
            games = [g for a in kinds for b in opponents for g in ((a, b, ("buyer",)), (b, a, ("seller",)))]
        async with serve_parties(unique) as p:
            for buyer_kind, seller_kind, roles in games:
                buyer, seller = p[f"buyer-{buyer_kind}"], p[f"seller-{seller_kind}"]
                ledger = Ledger()
                outcome = await alternating_offers(
                    buyer, seller, case.issues, max_rounds=rounds, utilities=(bu, su), ledger=ledger
                )
                if "buyer" in roles:
                    scores[buyer_kind].add(outcome, buyer.name, bu)
                if "seller" in roles:
                    scores[seller_kind].add(outcome, seller.name, su)
                for name, entry in ledger.agents.items():
                    tokens[name.split("-", 1)[1]] += entry.usage.total_tokens
        if progress:
            print(f"  {case.name} done at {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return scores, tokens, time.perf_counter() - started


def print_table(title: str, scores: dict[str, Score]) -> None:
    print(f"\n{title}\n{HEADER}")
    for name in sorted(scores, key=lambda n: -statistics.fmean(scores[n].advantage or [0.0])):
        print(scores[name].row(name))


async def scale(suppliers: int, transport: str, signed: bool = False) -> float:
    """One full contract-net round (CFP, proposals, award, rejections) among ``suppliers`` rule agents; with
    ``signed``, the award is a contract signed by both parties and appended to a ledger (SQLite, counter-signed).
    Returns the round's seconds."""
    issues = [
        Issue(name="unit_price", values=[float(p) for p in range(80, 130, 5)]),
        Issue(name="quantity", values=[100.0, 110.0]),
        Issue(name="delivery_day", values=[float(d) for d in range(2, 15)]),
    ]
    rng = random.Random(5)
    agents = [
        negotiator_agent(
            f"supplier-{i:04d}",
            Negotiator(
                Preferences(
                    weights={"unit_price": 0.7, "delivery_day": 0.3},
                    reservation=0.1,
                    limits={"unit_price": (float(rng.randrange(80, 110, 5)), 999.0)},
                ),
                "linear",
                capacity=1000,
            ),
        )
        for i in range(suppliers)
    ]
    signing = None
    with tempfile.TemporaryDirectory() as tmp:
        if signed:
            for agent in agents:
                set_signing_key(agent, SigningKey.generate())
            store = RunStore(f"sqlite:///{tmp}/ledger.db")
            signing = ContractSigning(
                "manufacturer", SigningKey.generate(), ledger=ContractLedger(store.engine, SigningKey.generate())
            )
        try:
            return await _scale_round(agents, suppliers, transport, issues, signing)
        finally:
            if signing is not None and signing.ledger is not None:
                signing.ledger.engine.dispose()


async def _scale_round(
    agents: list[Agent], suppliers: int, transport: str, issues: list[Issue], signing: ContractSigning | None
) -> float:
    built = time.perf_counter()
    async with serve_parties(agents, transport) as parties:  # type: ignore[arg-type]
        ready = time.perf_counter()
        cfp = CallForProposals(
            cfp_id="cfp-scale",
            buyer="manufacturer",
            item="motor",
            quantity=100,
            due_day=20,
            issues=issues,
            deadline_s=60,
        )
        result = await contract_net(
            cfp, list(parties.values()), lambda p: -p.offer.values["unit_price"] if p.offer else -1e9, signing=signing
        )
        done = time.perf_counter()
    kind = f"signed, {len(result.contracts)} contract in the ledger" if signing is not None else "unsigned"
    print(
        f"Scale ({transport}, {kind}): {suppliers} suppliers; start {ready - built:.2f} s; contract-net round "
        f"{done - ready:.2f} s ({len(result.ranked)} proposals, winner {result.awarded[0].bidder}, "
        f"{suppliers - 1} rejections sent)"
    )
    return done - ready


def scale_signing(suppliers: int, transport: str, repeats: int = 3) -> None:
    """The contract-net round with and without signing + ledger, alternated ``repeats`` times in one process;
    prints the median of each and the overhead."""
    print(f"\nScale: {suppliers} suppliers, {repeats} rounds each way, alternated")
    plain, signed = [], []
    for _ in range(repeats):
        plain.append(anyio.run(scale, suppliers, transport, False))
        signed.append(anyio.run(scale, suppliers, transport, True))
    a, b = statistics.median(plain), statistics.median(signed)
    print(
        f"  median round: unsigned {a:.3f} s, signed + ledger {b:.3f} s: signing and the ledger add "
        f"{100 * (b - a) / a:+.1f}% (round to round noise included)"
    )
    cost = anyio.run(contract_cost)
    print(
        f"  one signed contract, measured alone (median of 20): {1000 * cost:.2f} ms (buyer signs, seller checks "
        f"and signs, buyer verifies, ledger append): {100 * cost / a:.2f}% of the unsigned round"
    )


async def contract_cost(repeats: int = 20) -> float:
    """Median seconds of the work signing adds to one award: the buyer's signature, the seller's guardrail and
    signature, the buyer's check of it, and the ledger append (with its checks) on SQLite."""
    from agents.negotiators import signed_reply, terms_problem
    from protocol.negotiation import Award, Offer

    seller_key = SigningKey.generate()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(f"sqlite:///{tmp}/ledger.db")
        signing = ContractSigning(
            "buyer", SigningKey.generate(), ledger=ContractLedger(store.engine, SigningKey.generate())
        )
        try:
            for i in range(repeats):
                offer = Offer(values={"unit_price": 100.0, "quantity": 100.0, "delivery_day": 5.0})
                started = time.perf_counter()
                terms, mine = signing.terms(
                    contract_id=f"c{i}",
                    negotiation_id=f"n{i}",
                    protocol="contract_net",
                    seller="s",
                    item="motor",
                    values=offer.values,
                )
                award = Award(cfp_id=f"n{i}", bidder="s", accepted=True, offer=offer, contract=terms, signature=mine)
                assert terms_problem("s", award, {"unit_price": (90.0, 999.0)}) is None
                reply = signed_reply("s", award, seller_key)
                contract = signing.countersigned(terms, mine, reply.signature)
                assert contract is not None
                await signing.record(contract)
                times.append(time.perf_counter() - started)
        finally:
            store.close()
    return statistics.median(times)


async def picks(
    cases: list[Scenario], rounds: int, seed: int, brain: Brain | None, budget_s: float | None = None
) -> tuple[dict[str, Score], dict[str, int], dict[str, PickLog], float]:
    """The guided negotiator with the model's picks (when ``brain`` is given) and with each control's, against
    the classic strategies in both roles, on the same scenarios with the same seed (every row plays the same
    scenarios: a budget stops between scenarios)."""
    kinds = (["llm"] if brain is not None else []) + CONTROLS
    logs = {k: PickLog() for k in kinds}

    def make(name: str, kind: str, prefs: Preferences) -> Agent:
        if kind == "llm":
            return guided_agent(name, prefs, brain, seed=seed, log=logs[kind])
        return control_agent(name, kind, prefs, seed=seed, log=logs[kind])

    scores, tokens, secs = await round_robin(cases, kinds, rounds, brain, CLASSIC, make, brain is not None, budget_s)
    return scores, tokens, logs, secs


def print_picks_table(title: str, scores: dict[str, Score], logs: dict[str, PickLog]) -> None:
    """The comparison in a fixed order (model first, then the controls), then what each picked."""
    print(f"\n{title}\n{HEADER}")
    for name in logs:
        print(scores[name].row(name))
    print_picks(logs)


def model_scale(rounds: int) -> None:
    """The manufacturing scenario with the real model guiding the manufacturer in every negotiation."""
    from scenarios.smart_manufacturing import ScenarioConfig, run

    config = ScenarioConfig(
        suppliers=10, distributors=4, brain="mixed", llm_negotiations=100, rounds=rounds, bidders=2, seed=7
    )
    result = run(config)
    llm = [n for n in result.negotiations if n.brain == "llm"]
    tokens = sum(a.tokens for a in result.agents.values())
    calls = sum(a.model_calls for a in result.agents.values())
    deals = sum(1 for n in llm if n.outcome.agreement is not None)
    overruled = sum(n.outcome.sources.get("guardrail", 0) + n.outcome.sources.get("fallback", 0) for n in llm)
    print(
        f"\nReal model: 10 suppliers, {rounds} rounds, {len(llm)} LLM-guided negotiations ({deals} deals): "
        f"{result.timing.wall_seconds:.1f} s wall, {calls} model calls, {tokens} tokens, "
        f"{overruled} fallbacks/overrules, energy {result.timing.energy_j:.0f} J"
    )


def main() -> None:
    if "--league" in sys.argv[1:]:  # the league has options of its own (bench/league.py)
        from bench.league import main as league

        league([arg for arg in sys.argv[1:] if arg != "--league"])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenarios", type=int, default=24)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--llm", type=int, default=0, help="scenarios on which to compare the model's picks")
    p.add_argument("--controls", action="store_true", help="the pick controls alone on every scenario (no model)")
    p.add_argument("--budget", type=float, default=None, help="--llm: start no scenario after this many seconds")
    p.add_argument("--scale", type=int, default=0, help="suppliers in the contract-net scale run")
    p.add_argument("--transport", choices=["local", "http"], default="local")
    p.add_argument("--model-scale", action="store_true")
    p.add_argument("--skip-round-robin", action="store_true")
    a = p.parse_args()
    cases = scenarios(a.scenarios, a.seed)
    if not a.skip_round_robin:
        scores, _, secs = anyio.run(round_robin, cases, ROUND_ROBIN, a.rounds, None)
        print_table(f"Round-robin: {len(cases)} scenarios x 3 issues, {a.rounds} rounds ({secs:.1f} s)", scores)
    if a.controls:
        scores, _, logs, secs = anyio.run(picks, cases, a.rounds, a.seed, None)
        print_picks_table(
            f"Pick controls against the classic strategies on {len(cases)} scenarios, both roles ({secs:.1f} s)",
            scores,
            logs,
        )
    if a.llm:
        from agents.llm import LlamaCpp

        subset = cases[: a.llm]
        scores, tokens, logs, secs = anyio.run(picks, subset, a.rounds, a.seed, LlamaCpp(), a.budget)
        played = scores["llm"].runs // (2 * len(CLASSIC))
        print_picks_table(
            f"Model vs controls against the classic strategies on {played} scenarios, both roles, seed "
            f"{a.seed} ({secs:.1f} s, {tokens['llm']} model tokens)",
            scores,
            logs,
        )
    if a.scale:
        scale_signing(a.scale, a.transport)
    if a.model_scale:
        model_scale(a.rounds)


if __name__ == "__main__":
    main()
