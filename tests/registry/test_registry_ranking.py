"""The stored ranking key: its order, that every write keeps it current, search walking it, the 0002 migration."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, select, text

from registry import CostHints, HealthStatus, Registry
from registry.db import MIGRATIONS
from registry.ranking import SUCCESS_STEPS, rank_key
from registry.tables import agents

HEALTHY, UNHEALTHY, DRAINING = (s.value for s in HealthStatus)


def names(records) -> list[str]:
    return [r.name for r in records]


def test_key_orders_health_then_success_then_latency_then_cost() -> None:
    best = rank_key(HEALTHY, 10, 10, 50.0, 0.0)
    assert best < rank_key(UNHEALTHY, 10, 10, 50.0, 0.0) == rank_key(DRAINING, 10, 10, 50.0, 0.0)
    assert rank_key(HEALTHY, 0, 0, None, 99.0) < rank_key(UNHEALTHY, 10, 10, 1.0, 0.0)  # health dominates
    assert rank_key(HEALTHY, 10, 9, 1.0, 0.0) > best  # lower success rate ranks later, whatever the latency
    assert rank_key(HEALTHY, 10, 0, None, 0.0) < rank_key(HEALTHY, 0, 0, 1.0, 0.0)  # unmeasured success is last
    assert rank_key(HEALTHY, 10, 10, 49.0, 5.0) < best < rank_key(HEALTHY, 10, 10, None, 0.0)  # None latency last
    assert rank_key(HEALTHY, 10, 10, 50.0, 0.001) > best  # then cost
    assert 0 <= best and rank_key(UNHEALTHY, 0, 0, None, float("inf")) < 2**63  # fits a signed 64-bit column


def test_key_agrees_with_the_lexicographic_rule_on_random_agents() -> None:
    rng = random.Random(3)

    def agent() -> tuple[str, int, int, float | None, float]:
        calls = rng.choice([0, rng.randint(1, 500)])
        latency = rng.choice([None, round(rng.uniform(0.5, 5000.0), 3)])
        return rng.choice([HEALTHY, UNHEALTHY]), calls, rng.randint(0, calls), latency, round(rng.uniform(0, 10), 2)

    def rule(a: tuple[str, int, int, float | None, float]) -> tuple[object, ...]:
        status, calls, successes, latency, cost = a
        rate = round((1 - successes / calls) * SUCCESS_STEPS) if calls else SUCCESS_STEPS + 1
        return (status != HEALTHY, rate, latency is None, latency or 0.0, cost)

    fleet = [agent() for _ in range(2000)]
    for a, b in zip(fleet, fleet[1:], strict=False):
        ra, rb = rule(a), rule(b)
        ka, kb = rank_key(*a), rank_key(*b)
        close = ra[:3] == rb[:3] and abs(ra[3] - rb[3]) <= max(ra[3], rb[3]) * 2**-12  # type: ignore[operator]
        if ra != rb and not close:
            assert (ka < kb) == (ra < rb), (a, b)


@pytest.fixture
def ranked(registry: Registry, card) -> Registry:
    for name, cost in [("e", 0.5), ("d", 0.1), ("c", 0.1), ("b", 2.0), ("a", 9.0)]:
        registry.register_card(card(name, skills=[("work", ["shared"])]), cost=CostHints(per_call=cost))
    return registry


def test_search_follows_the_rule_and_ties_break_by_name(ranked: Registry, card) -> None:
    assert names(ranked.search(skill="work")) == ["c", "d", "e", "b", "a"]  # no calls yet: cost, then name
    a, b = ranked.find("a"), ranked.find("b")
    ranked.record_calls([{"agent_id": a.id, "success": True, "latency_s": 0.9}])
    ranked.record_calls([{"agent_id": b.id, "success": True, "latency_s": 0.1}])
    assert names(ranked.search(tags=["shared"])) == ["b", "a", "c", "d", "e"]  # measured success first
    ranked.record_call(b.id, success=False, latency_s=0.1)
    assert names(ranked.search(text="agent")) == ["a", "b", "c", "d", "e"]  # 1/1 beats 1/2
    ranked.set_status(a.id, HealthStatus.DRAINING)
    ranked.record_probe(ranked.find("c").id, False, failures_to_unhealthy=1)
    assert names(ranked.search(skill="work")) == ["b", "d", "e"]
    assert names(ranked.search(skill="work", status=None)) == ["b", "d", "e", "a", "c"]  # healthy, then the rest
    assert names(ranked.search(skill="work", status={HealthStatus.DRAINING, HealthStatus.UNHEALTHY})) == ["a", "c"]
    ranked.heartbeat(ranked.find("c").id)
    assert names(ranked.search(skill="work")) == ["b", "c", "d", "e"]
    ranked.register_card(card("e", skills=[("work", ["shared"])]), cost=CostHints(per_call=0.0))
    assert names(ranked.search(skill="work")) == ["b", "e", "c", "d"]  # a cost change re-ranks


def test_pages_over_several_statuses_concatenate(ranked: Registry) -> None:
    ranked.set_status(ranked.find("d").id, HealthStatus.UNHEALTHY)
    ranked.set_status(ranked.find("a").id, HealthStatus.DRAINING)
    everyone = names(ranked.search(tags=["shared"], status=None))
    assert everyone == ["c", "e", "b", "d", "a"]  # the healthy first, then the others (draining or not) by cost
    pages = [names(ranked.search(tags=["shared"], status=None, limit=2, offset=o)) for o in (0, 2, 4)]
    assert sum(pages, []) == everyone
    assert ranked.search(tags=["shared"], status=set()) == []


def test_stored_key_matches_the_rows_after_every_kind_of_write(ranked: Registry, card) -> None:
    ids = {r.name: r.id for r in ranked.list()}
    ranked.record_calls(
        [{"agent_id": ids[n], "success": i % 3 != 0, "latency_s": i / 7} for i, n in enumerate("abcdeabcde")]
    )
    ranked.set_status(ids["a"], HealthStatus.DRAINING)
    ranked.record_probe(ids["b"], False, failures_to_unhealthy=1)
    ranked.heartbeat(ids["b"])
    ranked.register_card(card("c", skills=[("work", ["shared"])]), cost=CostHints(per_call=7.0))
    ranked.register_many([card("d", version="2", skills=[("work", ["shared"])]), card("f")])
    with ranked.engine.connect() as conn:
        rows = conn.execute(select(agents)).all()
    assert len(rows) == 6
    for r in rows:
        assert r.rank_key == rank_key(r.status, r.calls, r.successes, r.latency_p50_ms, r.cost_per_call), r.name


def test_sqlite_walks_the_rank_index_without_sorting(tmp_path: Path, card) -> None:
    with Registry(f"sqlite:///{tmp_path}/r.db") as reg:
        reg.register_many([card(f"a{i}", skills=[("s", ["t", f"u{i % 3}"])]) for i in range(50)])
        seen: list[tuple[str, object]] = []
        event.listen(reg.engine, "before_cursor_execute", lambda *a: seen.append((a[2], a[3])))
        reg.search(tags=["t", "u1"], text="agent")
        sql, params = next(s for s in seen if "rank_key" in s[0])
        with reg.engine.connect() as conn:
            plan = " | ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))
    walk = plan.split("SCAN ranked")[0]  # what follows only reads and orders the page of at most `limit` rows
    assert "ix_registry_agents_rank" in walk and "TEMP B-TREE" not in walk, plan


def test_migration_0002_backfills_the_key(db_url: str, card) -> None:
    with Registry(db_url) as reg:
        first = reg.register_card(card("x"), cost=CostHints(per_call=0.25))
        reg.register_card(card("y"))
        reg.record_call(first.id, success=True, latency_s=0.2)
        reg.set_status(reg.find("y").id, HealthStatus.UNHEALTHY)
    engine = create_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    with engine.connect() as conn:
        assert "rank_key" not in conn.execute(text("SELECT * FROM registry_agents")).keys()
    with Registry(db_url) as reg:  # migrates to head again, computing the key of the existing rows
        assert names(reg.search(status=None)) == ["x", "y"]
        with reg.engine.connect() as conn:
            for r in conn.execute(select(agents)):
                assert r.rank_key == rank_key(r.status, r.calls, r.successes, r.latency_p50_ms, r.cost_per_call)
    engine.dispose()
