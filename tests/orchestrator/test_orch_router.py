"""Router ranking against a real registry: smallest capable first, constraints, load, record, explanations."""

from __future__ import annotations

import pytest

from orchestrator.router import Router
from orchestrator.spec import TaskSpec
from registry import CostHints, ModelInfo, Registry
from tests.orchestrator.conftest import worker


@pytest.fixture
def registry(db_url: str) -> Registry:
    reg = Registry(db_url)
    for name, params, cost in (("mid", 1_000_000_000, 0.0), ("tiny", 270_000_000, 0.5), ("huge", 7_000_000_000, 2.0)):
        card = worker(name).card(f"local://{name}")
        reg.register_card(
            card,
            model=ModelInfo(name=name, parameters=params),
            cost=CostHints(per_call=cost),
            transport="local",
            url=f"local://{name}",
        )
    return reg


def names(router: Router, task: TaskSpec) -> list[str]:
    return [c.agent.name for c in router.rank(task, router._search(task)).candidates]


def test_smallest_first_then_largest_then_best(registry: Registry) -> None:
    router = Router(registry, cache_ttl_s=0)
    assert names(router, TaskSpec(skill="work")) == ["tiny", "mid", "huge"]
    assert names(router, TaskSpec(skill="work", constraints={"prefer": "largest"})) == ["huge", "mid", "tiny"]
    best = names(router, TaskSpec(skill="work", constraints={"prefer": "best"}))
    assert best[0] == "mid"  # same fit and record, cheapest wins on score


def test_constraints_exclude_with_reasons(registry: Registry) -> None:
    router = Router(registry, cache_ttl_s=0)
    task = TaskSpec(skill="work", constraints={"max_parameters": 2_000_000_000, "max_cost": 1.0})
    routing = router.rank(task, router._search(task))
    assert [c.agent.name for c in routing.candidates] == ["tiny", "mid"]
    explained = routing.explain()
    assert explained["ranked"][0]["reason"].startswith("#1 (smallest capable first): 270,000,000 parameters")
    # huge is filtered by the registry's own max_cost, or excluded here with the reason
    assert all(e["name"] == "huge" for e in explained["excluded"])


def test_load_and_poor_record_reorder(registry: Registry) -> None:
    router = Router(registry, cache_ttl_s=0)
    task = TaskSpec(skill="work", constraints={"prefer": "best"})
    mid = next(r for r in registry.search(skill="work") if r.name == "mid")
    router.load[mid.id] = 10
    assert names(router, task)[0] != "mid"
    tiny = next(r for r in registry.search(skill="work") if r.name == "tiny")
    for _ in range(5):
        registry.record_call(tiny.id, success=False, latency_s=0.1)
    assert names(router, TaskSpec(skill="work"))[-1] == "tiny"
    assert (
        "demoted" in router.rank(TaskSpec(skill="work"), router._search(TaskSpec(skill="work"))).candidates[-1].reason
    )


def test_tags_and_text_needs(registry: Registry) -> None:
    router = Router(registry, cache_ttl_s=0)
    assert names(router, TaskSpec(tags=["work"])) == ["tiny", "mid", "huge"]
    assert names(router, TaskSpec(tags=["nothing-has-this"])) == []
    by_text = router.rank(TaskSpec(text="upper-cases text"), registry.search(text="upper-cases text"))
    assert by_text.candidates and by_text.candidates[0].skill == "work"
    assert not router.serves(TaskSpec(skill="missing"))
