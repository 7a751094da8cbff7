"""Measured skill quality: the bundled small model, rules and the small-first cascade on a labelled set.

    python -m bench.skills                 # every item (4 types x 64), at most --budget seconds (default 540)
    python -m bench.skills --quick         # 5 items per type: a smoke run
    python -m bench.skills --limit 20 --types read_offer,choose_move

Per skill type and method: validity (an answer inside the type's schema), accuracy against the labels (exact:
every field), mean tokens, latency p50, and energy per correct answer (orchestrator/energy.py: busy-core seconds
times watts per core). The cascade asks the model once, checks its answer in code and lets the rules answer what
the check refuses; ``rules>model`` answers with the rules and asks the model only for fields they leave empty.
Both replay the model's own completions (same requests, same usage), so their tokens and energy are the model
calls they make plus their own CPU time, and their latency likewise. Prints figures; asserts nothing.
The labelled set: bench/skills_data.py, bench/data/skills/*.jsonl; docs/skills.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import ValidationError

from agents.agent import SkillContext
from agents.errors import AgentError
from agents.examples import Classification
from agents.llm.base import Brain, Completion, GenerationRequest
from agents.usage import Usage
from bench.skills_data import TYPES, SkillItem, load_items
from bench.skills_methods import METHODS, MoveAnswer, OrderLine
from orchestrator.energy import EnergyModel

__all__ = ["MethodScore", "Replay", "run_bench", "format_report", "verdict", "main"]

METHOD_NAMES = ["model", "rules", "cascade", "rules>model"]
ENOUGH = 0.02  # within 2 points of the best accuracy is "enough quality"


@dataclass
class MethodScore:
    """Per-item results of one method on one skill type."""

    valid: list[bool] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    joules: list[float] = field(default_factory=list)

    def add(self, valid: bool, correct: bool, tokens: int, latency_s: float, joules: float) -> None:
        self.valid.append(valid)
        self.correct.append(correct)
        self.tokens.append(tokens)
        self.latency_s.append(latency_s)
        self.joules.append(joules)

    @property
    def items(self) -> int:
        return len(self.valid)

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / max(1, self.items)

    @property
    def joules_per_correct(self) -> float:
        """Energy of every item divided by the correct answers (inf when none is correct)."""
        return sum(self.joules) / sum(self.correct) if any(self.correct) else float("inf")


class Replay:
    """A brain that answers a request it has seen with the completion it got then (usage included), and asks
    the wrapped brain otherwise: the cascade pays for the model's calls without making them twice."""

    def __init__(self, brain: Brain) -> None:
        self.brain = brain
        self.seen: dict[str, Completion] = {}

    @property
    def model_name(self) -> str:
        return self.brain.model_name

    async def generate(self, request: GenerationRequest) -> Completion:
        key = request.model_dump_json()
        if key not in self.seen:
            self.seen[key] = await self.brain.generate(request)
        return self.seen[key]


def _valid(kind: str, answer: dict[str, Any]) -> bool:
    try:
        if kind == "classify":
            Classification.model_validate(answer)
        elif kind == "extract_order":
            OrderLine.model_validate(answer)
        elif kind == "choose_move":
            MoveAnswer.model_validate(answer)
        else:
            return all(v is None or isinstance(v, float) for v in answer.values())
    except ValidationError:
        return False
    return True


def _same(answer: dict[str, Any], label: dict[str, Any]) -> bool:
    def equal(a: Any, b: Any) -> bool:
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
            return abs(float(a) - float(b)) < 1e-6
        return bool(a == b)

    return set(answer) == set(label) and all(equal(answer[k], label[k]) for k in label)


async def _score_item(
    kind: str, item: SkillItem, brain: Brain, energy: EnergyModel, scores: dict[str, MethodScore]
) -> None:
    methods = METHODS[kind]
    replay = Replay(brain)
    ctx = SkillContext(replay)
    started = time.perf_counter()
    try:
        answer: dict[str, Any] | None = await methods.model(ctx, item)
    except AgentError:
        answer = None
    model_s = time.perf_counter() - started
    ok = answer is not None and _valid(kind, answer)
    correct = ok and answer is not None and _same(answer, item.label)
    scores["model"].add(ok, correct, ctx.usage.total_tokens, model_s, energy.joules(ctx.usage))

    cpu, wall = time.thread_time(), time.perf_counter()
    ruled = methods.rules(item)
    rule_usage = Usage(cpu_seconds=time.thread_time() - cpu, wall_seconds=time.perf_counter() - wall)
    ok = _valid(kind, ruled)
    scores["rules"].add(ok, ok and _same(ruled, item.label), 0, rule_usage.wall_seconds, energy.joules(rule_usage))

    cascade_ctx = SkillContext(replay)
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        chosen: dict[str, Any] | None = await methods.cascade(cascade_ctx, item)
    except AgentError:
        chosen = None
    own = Usage(cpu_seconds=time.thread_time() - cpu, wall_seconds=time.perf_counter() - wall)
    ok = chosen is not None and _valid(kind, chosen)
    scores["cascade"].add(
        ok,
        ok and chosen is not None and _same(chosen, item.label),
        cascade_ctx.usage.total_tokens,
        model_s + own.wall_seconds,
        energy.joules(cascade_ctx.usage) + energy.joules(own),
    )

    first_ctx = SkillContext(replay)
    cpu, wall = time.thread_time(), time.perf_counter()
    answer = await methods.rules_first(first_ctx, item)
    own = Usage(cpu_seconds=time.thread_time() - cpu, wall_seconds=time.perf_counter() - wall)
    ok = _valid(kind, answer)
    scores["rules>model"].add(
        ok,
        ok and _same(answer, item.label),
        first_ctx.usage.total_tokens,
        own.wall_seconds + (model_s if first_ctx.usage.calls else 0.0),
        energy.joules(first_ctx.usage) + energy.joules(own),
    )


async def run_bench(
    brain: Brain,
    items: dict[str, list[SkillItem]],
    *,
    limit: int | None = None,
    budget_s: float | None = None,
    energy: EnergyModel | None = None,
    progress: bool = False,
) -> dict[str, dict[str, MethodScore]]:
    """Score every method on up to ``limit`` items of each type; each type gets an equal share of ``budget_s``
    (no item is started after its share is spent). Returns type -> method -> scores."""
    energy = energy or EnergyModel.from_env()
    results: dict[str, dict[str, MethodScore]] = {}
    share = budget_s / len(items) if budget_s else None
    for kind, kind_items in items.items():
        scores = {name: MethodScore() for name in METHOD_NAMES}
        started = time.perf_counter()
        for item in kind_items[:limit]:
            if share is not None and time.perf_counter() - started > share:
                break
            await _score_item(kind, item, brain, energy, scores)
        results[kind] = scores
        if progress:
            print(f"  {kind}: {scores['model'].items} items in {time.perf_counter() - started:.0f} s", flush=True)
    return results


def _joules(value: float) -> str:
    if value == float("inf"):
        return "-"
    return f"{value:.3g}"


def verdict(kind: str, scores: dict[str, MethodScore]) -> str:
    """One line: whether a method that calls the model beats the rules by more than ``ENOUGH`` (and at what energy),
    and the cheapest method within ``ENOUGH`` of the best accuracy."""
    rules = scores["rules"]
    best = max(s.accuracy for s in scores.values())
    enough = [n for n in METHOD_NAMES if scores[n].accuracy >= best - ENOUGH - 1e-9]
    cheapest = min(enough, key=lambda n: scores[n].joules_per_correct)
    if cheapest == "rules>model" and "rules" in enough and not any(scores[cheapest].tokens):
        cheapest = "rules"  # rules>model made no model call: the same answers as the rules
    with_model = [n for n in METHOD_NAMES if n != "rules" and sum(scores[n].tokens) > 0]
    top = max(with_model, key=lambda n: scores[n].accuracy, default=None)
    if top is not None and scores[top].accuracy - rules.accuracy > ENOUGH:
        ratio = scores[top].joules_per_correct / max(rules.joules_per_correct, 1e-12)
        gain = (scores[top].accuracy - rules.accuracy) * 100
        why = (
            f"the model earns its place: {top} {scores[top].accuracy:.0%} vs rules {rules.accuracy:.0%} "
            f"(+{gain:.0f} points) at {ratio:,.0f}x the energy per correct answer"
        )
    else:
        shown = ", ".join(f"{n} {scores[n].accuracy:.0%}" for n in with_model) or "no model call made"
        why = f"rules win: {rules.accuracy:.0%} with no model call ({shown})"
    return f"{kind}: {why}; cheapest within {ENOUGH * 100:.0f} points of the best ({best:.0%}): {cheapest}"


def format_report(results: dict[str, dict[str, MethodScore]]) -> str:
    """The table (per type and method) and one verdict line per type."""
    header = (
        f"{'type':<14} {'method':<11} {'items':>5} {'valid':>7} {'accuracy':>8} {'tokens':>7} {'p50 ms':>9} "
        f"{'J/correct':>10}"
    )
    lines = [header, "-" * len(header)]
    for kind, scores in results.items():
        for name in METHOD_NAMES:
            s = scores[name]
            p50 = statistics.median(s.latency_s) * 1000 if s.latency_s else 0.0
            tokens = statistics.fmean(s.tokens) if s.tokens else 0.0
            lines.append(
                f"{kind if name == 'model' else '':<14} {name:<11} {s.items:>5} "
                f"{sum(s.valid) / max(1, s.items):>7.1%} {s.accuracy:>8.1%} {tokens:>7.0f} {p50:>9.2f} "
                f"{_joules(s.joules_per_correct):>10}"
            )
    lines.append("")
    lines += [verdict(kind, scores) for kind, scores in results.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="items per type (default: all 64)")
    parser.add_argument("--quick", action="store_true", help="5 items per type (smoke)")
    parser.add_argument("--types", default=",".join(TYPES), help=f"comma-separated, of {','.join(TYPES)}")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds in all; each type gets an equal share")
    parser.add_argument("--model", default=None, help="a GGUF path (default: the bundled Gemma 3 270M)")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.types.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(TYPES))
    if unknown:
        parser.error(f"unknown types {unknown}; choose from {TYPES}")
    from agents.llm import LlamaCpp

    brain = LlamaCpp(args.model)
    items = {k: v for k, v in load_items().items() if k in kinds}
    limit = 5 if args.quick else args.limit
    energy = EnergyModel.from_env()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"model {brain.model_name}; {os.cpu_count()} cores, load {load:.1f} at start; "
        f"energy {energy.watts_per_core:g} W per busy core; budget {args.budget:.0f} s",
        flush=True,
    )
    started = time.perf_counter()
    results = anyio.run(lambda: run_bench(brain, items, limit=limit, budget_s=args.budget, progress=True))
    print(format_report(results))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
