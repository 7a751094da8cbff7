"""Store operations on SQLite and PostgreSQL: register, update, history, deregister, heartbeat, stats."""

from __future__ import annotations

import pytest

from registry import (
    AgentNotFound,
    CardValidationError,
    CostHints,
    HealthStatus,
    InvalidQuery,
    ModelInfo,
    NameConflict,
    Registration,
    Registry,
)


def test_register_is_idempotent_and_keeps_fields(registry: Registry, card) -> None:
    model = ModelInfo(name="gemma3-270m", parameters=270_000_000, quantisation="Q4_K_M", file_size=253_000_000)
    first = registry.register_card(card("a"), model=model, cost=CostHints(per_call=0.5, per_1k_tokens=0.1))
    again = registry.register_card(card("a"))
    assert again.id == first.id and registry.count() == 1
    assert again.model == model and again.cost.per_call == 0.5
    assert [s.id for s in again.skills] == ["echo"] and again.tags == ["test"]
    assert again.status is HealthStatus.HEALTHY and again.last_heartbeat is not None
    assert len(registry.history(first.id)) == 1


def test_new_version_updates_in_place_and_keeps_history(registry: Registry, card) -> None:
    first = registry.register_card(card("a", version="1.0", skills=[("old", ["x"])]))
    second = registry.register_card(card("a", version="2.0", skills=[("new", ["y"])]))
    assert second.id == first.id and second.version == "2.0" and registry.count() == 1
    assert [s.id for s in second.skills] == ["new"]
    assert [v.version for v in registry.history(first.id)] == ["1.0", "2.0"]
    assert registry.history(first.id)[0].card["skills"][0]["id"] == "old"
    assert registry.search(skill="old") == [] and [r.id for r in registry.search(skill="new")] == [first.id]
    assert registry.search(tags=["x"]) == []


def test_same_name_under_another_id_is_refused(registry: Registry, card) -> None:
    registry.register_card(card("a"), agent_id="agent-1")
    with pytest.raises(NameConflict, match="already registered under id 'agent-1'"):
        registry.register_card(card("a"), agent_id="agent-2")
    assert registry.count() == 1 and registry.get("agent-1").name == "a"


def test_explicit_id_lets_an_agent_be_renamed(registry: Registry, card) -> None:
    registry.register_card(card("old-name"), agent_id="x1")
    renamed = registry.register_card(card("new-name"), agent_id="x1")
    assert renamed.id == "x1" and renamed.name == "new-name" and registry.count() == 1
    assert registry.find("new-name").id == "x1"
    with pytest.raises(AgentNotFound):
        registry.find("old-name")


def test_schemas_local_transport_and_validation(registry: Registry, card) -> None:
    schema_in = {"type": "object", "properties": {"text": {"type": "string"}}}
    rec = registry.register_card(card("loc"), transport="local", skill_schemas={"echo": (schema_in, None)})
    assert rec.url == "local://loc" and rec.transport == "local"
    assert rec.skills[0].input_schema == schema_in and rec.skills[0].output_schema is None
    with pytest.raises(CardValidationError, match="does not have"):
        registry.register_card(card("loc"), skill_schemas={"nope": (None, None)})
    assert registry.get(rec.id).skills[0].input_schema == schema_in  # failed call wrote nothing


def test_deregister_get_and_not_found(registry: Registry, card) -> None:
    rec = registry.register_card(card("a"))
    registry.deregister(rec.id)
    assert registry.count() == 0
    for op in (registry.get, registry.deregister, registry.heartbeat, registry.history):
        with pytest.raises(AgentNotFound, match="scaleout registry list"):
            op(rec.id)
    again = registry.register_card(card("a"))
    assert again.id == rec.id and [v.version for v in registry.history(again.id)] == ["1.0.0"]


def test_heartbeat_status_and_probes(registry: Registry, card) -> None:
    rec = registry.register_card(card("a"))
    assert registry.record_probe(rec.id, False, failures_to_unhealthy=2) is HealthStatus.HEALTHY
    assert registry.record_probe(rec.id, False, failures_to_unhealthy=2) is HealthStatus.UNHEALTHY
    assert registry.get(rec.id).consecutive_failures == 2
    before = registry.get(rec.id).last_heartbeat
    registry.heartbeat(rec.id)
    after = registry.get(rec.id)
    assert after.status is HealthStatus.HEALTHY and after.consecutive_failures == 0
    assert before is not None and after.last_heartbeat is not None and after.last_heartbeat >= before
    registry.set_status(rec.id, HealthStatus.DRAINING)
    registry.heartbeat(rec.id)
    registry.register_card(card("a"))
    assert registry.get(rec.id).status is HealthStatus.DRAINING
    assert registry.record_probe(rec.id, True) is HealthStatus.DRAINING


def test_record_call_statistics(registry: Registry, card) -> None:
    rec = registry.register_card(card("a"))
    for i in range(1, 21):
        registry.record_call(rec.id, success=i % 4 != 0, latency_s=i / 100, tokens=10)
    stats = registry.get(rec.id).stats
    assert (stats.calls, stats.successes, stats.tokens) == (20, 15, 200)
    assert stats.latency_p50_ms == pytest.approx(100.0) and stats.latency_p95_ms == pytest.approx(190.0)
    with pytest.raises(InvalidQuery):
        registry.record_call(rec.id, success=True, latency_s=-1)


def test_latency_window_is_bounded(db_url: str, card) -> None:
    with Registry(db_url, latency_window=10) as reg:
        rec = reg.register_card(card("a"))
        for i in range(30):
            reg.record_call(rec.id, success=True, latency_s=1.0 if i < 20 else 0.001)
        assert reg.get(rec.id).stats.latency_p95_ms == pytest.approx(1.0)
        assert reg.get(rec.id).stats.calls == 30


def test_list_pages_and_bounds(registry: Registry, card) -> None:
    registry.register_many([card(f"agent-{i:02d}") for i in range(25)])
    page1, page2 = registry.list(limit=10), registry.list(limit=10, offset=10)
    assert [r.name for r in page1] == [f"agent-{i:02d}" for i in range(10)]
    assert [r.name for r in page2][0] == "agent-10" and len(registry.list(limit=100)) == 25
    with pytest.raises(InvalidQuery):
        registry.list(limit=0)
    with pytest.raises(InvalidQuery):
        registry.list(offset=-1)


def test_register_many_bulk_updates_and_duplicates(registry: Registry, card) -> None:
    registry.register_card(card("b", version="1"), cost=CostHints(per_call=2.0))
    items = [card("a"), card("b", version="2"), Registration(card=card("c"), transport="local"), card("a")]
    assert registry.register_many(items, batch_size=2) == 4
    assert sorted(r.name for r in registry.list()) == ["a", "b", "c"]
    b = registry.find("b")
    assert b.version == "2" and b.cost.per_call == 2.0 and [v.version for v in registry.history(b.id)] == ["1", "2"]
    assert registry.find("c").url == "local://c"
    assert len(registry.search(skill="echo")) == 3


def test_register_many_is_atomic_per_batch(registry: Registry, card) -> None:
    registry.register_card(card("taken"), agent_id="one")
    bad = Registration(card=card("taken"), agent_id="two")
    with pytest.raises(NameConflict):
        registry.register_many([card("fresh"), bad], batch_size=10)
    assert [r.name for r in registry.list()] == ["taken"]
