"""Per-skill statistics: recorded per (agent, skill), shown in records and the API, migrated, used by the router."""

from __future__ import annotations

import threading

import anyio
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, func, inspect, select, text

from agents.testing import serve_in_thread
from orchestrator.router import Router
from orchestrator.spec import TaskSpec
from registry import Registry
from registry.api import create_app
from registry.client import RegistryClient
from registry.db import MIGRATIONS
from registry.tables import skill_stats
from tests.registry.conftest import make_card

TWO_SKILLS = [("classify", ["llm"]), ("lookup", ["rule"])]


def test_calls_count_for_their_skill_and_in_the_totals(registry: Registry) -> None:
    rec = registry.register_card(make_card("mixed", skills=TWO_SKILLS))
    for latency in (2.0, 3.0, 4.0):
        registry.record_call(rec.id, success=False, latency_s=latency, tokens=100, skill="classify")
    registry.record_calls(
        [
            {"agent_id": rec.id, "success": True, "latency_s": ms / 1000, "tokens": 0, "skill": "lookup"}
            for ms in range(1, 21)
        ]
    )
    registry.record_call(rec.id, success=True, latency_s=1.0)  # no skill named: the totals only
    registry.record_call(rec.id, success=True, latency_s=1.0, skill="not-on-the-card")  # the totals only
    stats = registry.get(rec.id).stats
    assert (stats.calls, stats.successes, stats.tokens) == (25, 22, 300)
    assert set(stats.skills) == {"classify", "lookup"}
    llm, rule = stats.skills["classify"], stats.skills["lookup"]
    assert (llm.calls, llm.successes, llm.tokens, llm.latency_p50_ms, llm.latency_p95_ms) == (3, 0, 300, 3000.0, 4000.0)
    assert (rule.calls, rule.successes, rule.tokens, rule.latency_p50_ms, rule.latency_p95_ms) == (
        20,
        20,
        0,
        10.0,
        19.0,
    )
    assert rule.success_rate == 1.0 and llm.success_rate == 0.0
    assert stats.for_skill("lookup") is rule and stats.for_skill("never-called") is stats
    # search returns the same records, per-skill statistics included
    assert registry.search(skill="lookup")[0].stats == stats


def test_the_latency_window_is_bounded_per_skill(db_url: str) -> None:
    with Registry(db_url, latency_window=4) as reg:
        rec = reg.register_card(make_card("windowed", skills=TWO_SKILLS))
        slow = [{"agent_id": rec.id, "success": True, "latency_s": 5.0, "skill": "lookup"}] * 10
        fast = [{"agent_id": rec.id, "success": True, "latency_s": 0.01, "skill": "lookup"}] * 4
        assert reg.record_calls(slow + fast) == 14
        lookup = reg.get(rec.id).stats.skills["lookup"]
        assert lookup.calls == 14 and lookup.latency_p95_ms == 10.0  # only the last 4 calls are in the window
        with reg.engine.connect() as conn:
            window = conn.execute(select(skill_stats.c.latency_window)).scalar_one()
        assert window == [10.0] * 4


def test_skill_statistics_survive_a_card_update_and_leave_with_the_agent(registry: Registry) -> None:
    rec = registry.register_card(make_card("evolving", skills=TWO_SKILLS))
    registry.record_call(rec.id, success=True, latency_s=0.2, skill="lookup")
    registry.record_call(rec.id, success=True, latency_s=0.2, skill="classify")
    registry.register_card(make_card("evolving", version="2.0.0", skills=[("lookup", ["rule"]), ("new", [])]))
    stats = registry.get(rec.id).stats
    assert stats.skills["lookup"].calls == 1  # the skill rows were replaced; its statistics stay
    registry.record_call(rec.id, success=True, latency_s=0.2, skill="classify")  # dropped from the card
    assert registry.get(rec.id).stats.skills["classify"].calls == 1
    registry.deregister(rec.id)
    with registry.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(skill_stats)).scalar_one() == 0


def test_concurrent_reports_of_one_new_skill_lose_nothing(db_url: str) -> None:
    with Registry(db_url) as reg:
        rec = reg.register_card(make_card("busy", skills=TWO_SKILLS))
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def report() -> None:
            try:
                with Registry(db_url, migrate=False) as own:
                    start.wait(timeout=30)
                    for _ in range(10):
                        own.record_calls([{"agent_id": rec.id, "success": True, "latency_s": 0.01, "skill": "lookup"}])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=report) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors and not any(t.is_alive() for t in threads)
        stats = reg.get(rec.id).stats
        assert stats.calls == 40 and stats.skills["lookup"].calls == 40


def test_migration_adds_the_table_and_keeps_totals(db_url: str) -> None:
    with Registry(db_url) as reg:
        old = reg.register_card(make_card("old", skills=TWO_SKILLS), agent_id="old-1")
        reg.record_call(old.id, success=True, latency_s=0.2, tokens=5)
    engine = create_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    assert "registry_skill_stats" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM registry_alembic_version")).scalar_one() == "0003"
    with Registry(db_url) as reg:  # upgrades to head
        assert "registry_skill_stats" in inspect(engine).get_table_names()
        before = reg.get("old-1").stats
        assert (before.calls, before.tokens, before.skills) == (1, 5, {})
        reg.record_call("old-1", success=True, latency_s=0.4, skill="lookup")
        after = reg.get("old-1").stats
        assert after.calls == 2 and after.skills["lookup"].latency_p50_ms == 400.0
    engine.dispose()


@pytest.mark.anyio
async def test_the_api_shows_skill_statistics(registry: Registry) -> None:
    rec = registry.register_card(make_card("shown", skills=TWO_SKILLS))
    registry.record_call(rec.id, success=True, latency_s=0.05, tokens=2, skill="lookup")
    with serve_in_thread(create_app(registry)) as api, anyio.fail_after(30):
        async with RegistryClient(api) as client:
            fetched = await client.get(rec.id)
            found = await client.search(skill="lookup")
    assert fetched.stats.skills["lookup"].latency_p50_ms == 50.0 and fetched.stats.skills["lookup"].tokens == 2
    assert found[0].stats == fetched.stats


def test_router_ranks_by_the_skill_it_would_call(registry: Registry) -> None:
    """A slow, failing LLM skill no longer drags down the same agent's fast rule skill."""
    mixed = registry.register_card(make_card("mixed", skills=TWO_SKILLS))
    plain = registry.register_card(make_card("plain", skills=[("lookup", ["rule"])]))
    llm = [{"agent_id": mixed.id, "success": i % 5 == 0, "latency_s": 3.0, "skill": "classify"} for i in range(30)]
    rule = [{"agent_id": mixed.id, "success": True, "latency_s": 0.005, "skill": "lookup"} for _ in range(10)]
    other = [{"agent_id": plain.id, "success": True, "latency_s": 0.2, "skill": "lookup"} for _ in range(10)]
    registry.record_calls(llm + rule + other)
    totals = registry.get(mixed.id).stats
    assert totals.calls == 40 and totals.successes / totals.calls < 0.5 and totals.latency_p50_ms == 3000.0
    router = Router(registry, cache_ttl_s=0)
    for prefer in ("smallest", "best"):
        task = TaskSpec(skill="lookup", constraints={"prefer": prefer})
        ranked = router.rank(task, router._search(task)).candidates
        assert [c.agent.name for c in ranked] == ["mixed", "plain"], prefer
        assert "record of skill 'lookup': 10 calls" in ranked[0].reason and "demoted" not in ranked[0].reason
        assert ranked[0].summary()["stats_of"] == "skill"
        assert ranked[0].parts["success"] == ranked[1].parts["success"]  # both perfect at this skill
        assert ranked[0].parts["latency"] > ranked[1].parts["latency"]


def test_router_falls_back_to_the_agents_totals(registry: Registry) -> None:
    """A skill without calls yet is judged by the agent's record: a poor agent stays demoted."""
    poor = registry.register_card(make_card("poor", skills=TWO_SKILLS))
    fresh = registry.register_card(make_card("fresh", skills=[("lookup", ["rule"])]))
    registry.record_calls([{"agent_id": poor.id, "success": False, "latency_s": 0.1, "skill": "classify"}] * 6)
    router = Router(registry, cache_ttl_s=0)
    task = TaskSpec(skill="lookup")
    ranked = router.rank(task, router._search(task)).candidates
    assert [c.agent.name for c in ranked] == ["fresh", "poor"]
    assert "record of the agent: 6 calls" in ranked[1].reason and "demoted" in ranked[1].reason
    assert ranked[1].summary()["stats_of"] == "agent" and fresh.stats.calls == 0
