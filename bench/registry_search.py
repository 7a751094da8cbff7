"""Registry benchmark: bulk registration rate and search latency (skill, tag, free text) on SQLite and PostgreSQL.

Prints figures, asserts nothing. Targets: skill/tag search p50 < 5 ms, free-text p50 < 20 ms, bulk >= 2,000/s.
    .venv/bin/python bench/registry_search.py [--n 100000] [--pg postgresql+psycopg://...] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text

from protocol.a2a import AgentCard, AgentInterface, AgentSkill
from registry import Registry

VERBS = [
    "parse",
    "translate",
    "summarise",
    "classify",
    "extract",
    "schedule",
    "negotiate",
    "plan",
    "price",
    "inspect",
    "forecast",
    "route",
    "audit",
    "reconcile",
    "detect",
    "rank",
    "tag",
    "answer",
    "quote",
    "bid",
]
NOUNS = [
    "invoice",
    "order",
    "machine",
    "shipment",
    "contract",
    "sensor",
    "defect",
    "ticket",
    "email",
    "report",
    "supplier",
    "part",
    "batch",
    "schedule",
    "capacity",
    "energy",
    "quality",
    "price",
    "demand",
    "route",
]
DOMAINS = [
    "finance",
    "logistics",
    "manufacturing",
    "support",
    "sales",
    "legal",
    "maintenance",
    "procurement",
    "quality",
    "energy",
    "hr",
    "planning",
]


def cards(n: int, seed: int = 7) -> Iterator[AgentCard]:
    """``n`` deterministic generated agent cards with 1-3 skills each."""
    rng = random.Random(seed)
    for i in range(n):
        skills = []
        for _ in range(rng.randint(1, 3)):
            verb, noun = rng.choice(VERBS), rng.choice(NOUNS)
            skills.append(
                AgentSkill(
                    id=f"{verb}_{noun}",
                    name=f"{verb.title()} {noun}",
                    description=f"{verb.title()}s a {noun} for the {rng.choice(DOMAINS)} team",
                    tags=rng.sample(DOMAINS, 2) + [noun],
                    examples=[f"{verb} this {noun} #{rng.randint(1, 999)}"],
                )
            )
        yield AgentCard(
            name=f"agent-{i:06d}",
            description=f"Agent {i} that can {skills[0].name.lower()} in {rng.choice(DOMAINS)}",
            version="1.0",
            supported_interfaces=[AgentInterface(url=f"http://10.0.{i // 250 % 250}.{i % 250}:8000/")],
            skills=list({s.id: s for s in skills}.values()),
        )


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """p50 and p95 milliseconds of ``fn`` over ``runs`` calls."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def bench(url: str, n: int, queries: int) -> dict[str, str]:
    """Run the benchmark against ``url`` (an empty database or schema)."""
    rng = random.Random(1)
    with Registry(url) as reg:
        generated = list(cards(n))
        t0 = time.perf_counter()
        reg.register_many(generated, batch_size=2000)
        rate = n / (time.perf_counter() - t0)
        assert reg.count() == n
        skill_ids = [f"{v}_{o}" for v in VERBS for o in NOUNS]
        words = VERBS + NOUNS + DOMAINS
        s = timed(lambda: reg.search(skill=rng.choice(skill_ids), limit=20), queries)
        t = timed(lambda: reg.search(tags=[rng.choice(DOMAINS)], limit=20), queries)
        t2 = timed(lambda: reg.search(tags=rng.sample(NOUNS, 2), limit=20), queries)
        f1 = timed(lambda: reg.search(text=rng.choice(words), limit=20), queries)
        f2 = timed(lambda: reg.search(text=f"{rng.choice(VERBS)} {rng.choice(NOUNS)}", limit=20), queries)
        g = timed(lambda: reg.find(f"agent-{rng.randrange(n):06d}"), queries)
    fmt = "{:.2f} / {:.2f}".format
    return {
        "bulk register (agents/s)": f"{rate:,.0f}",
        "search skill p50/p95 ms": fmt(*s),
        "search 1 tag p50/p95 ms": fmt(*t),
        "search 2 tags p50/p95 ms": fmt(*t2),
        "text 1 word p50/p95 ms": fmt(*f1),
        "text 2 words p50/p95 ms": fmt(*f2),
        "get by name p50/p95 ms": fmt(*g),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="generated agents (default 100000)")
    parser.add_argument("--queries", type=int, default=200, help="queries per search kind")
    parser.add_argument("--pg", default=os.environ.get("SCALEOUT_TEST_PG_URL"), help="PostgreSQL URL (optional)")
    args = parser.parse_args()
    columns: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        columns["SQLite"] = bench(f"sqlite:///{Path(tmp) / 'bench.db'}", args.n, args.queries)
    if args.pg:
        base = args.pg.replace("postgresql://", "postgresql+psycopg://", 1)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        engine = create_engine(base)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            sep = "&" if "?" in base else "?"
            columns["PostgreSQL"] = bench(
                f"{base}{sep}options={quote(f'-csearch_path={schema}')}", args.n, args.queries
            )
        finally:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    rows = list(next(iter(columns.values())))
    print(
        f"registry benchmark, N = {args.n:,} agents, {args.queries} queries per kind, python {sys.version.split()[0]}"
    )
    print(f"{'':28}" + "".join(f"{name:>18}" for name in columns))
    for row in rows:
        print(f"{row:28}" + "".join(f"{col[row]:>18}" for col in columns.values()))


if __name__ == "__main__":
    main()
