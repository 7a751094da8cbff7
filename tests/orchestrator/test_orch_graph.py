"""Task graph validation and reference resolution."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.graph import GraphError, TaskGraph, resolve_input
from orchestrator.spec import GraphSpec, TaskSpec, as_graph, parse_ref


def graph(*tasks: dict, **extra: object) -> TaskGraph:
    return TaskGraph(GraphSpec.model_validate({"tasks": list(tasks), **extra}))


def test_refs_make_edges_and_order() -> None:
    g = graph(
        {"id": "c", "skill": "s", "input": {"x": {"$ref": "a.output.text"}, "y": [{"$ref": "b.output"}]}},
        {"id": "a", "skill": "s"},
        {"id": "b", "skill": "s", "input": {"$ref": "a.output"}},
    )
    order = g.order()
    assert order.index("a") < order.index("b") < order.index("c")
    assert sorted(g.predecessors("c")) == ["a", "b"]


def test_cycle_is_rejected_with_its_path() -> None:
    with pytest.raises(GraphError, match="cycle: .*a.*b"):
        graph(
            {"id": "a", "skill": "s", "input": {"$ref": "b.output"}},
            {"id": "b", "skill": "s", "input": {"$ref": "a.output"}},
        )


def test_cycle_through_after_edges() -> None:
    with pytest.raises(GraphError, match="cycle"):
        graph({"id": "a", "skill": "s"}, {"id": "b", "skill": "s"}, after={"a": ["b"], "b": ["a"]})


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([{"id": "a", "skill": "s", "input": {"$ref": "zz.output"}}], "references 'zz'"),
        ([{"id": "a", "skill": "s", "input": {"$ref": "a.output"}}], "its own output"),
        ([{"id": "a", "skill": "s"}, {"id": "a", "skill": "s"}], "used twice"),
        ([{"id": "a", "skill": "s", "input": {"$ref": "a.result"}}], "must look like"),
        ([{"id": "a", "skill": "s", "input": {"$ref": "b.output", "more": 1}}, {"id": "b", "skill": "s"}], "alone"),
    ],
)
def test_bad_references(tasks: list[dict], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        graph(*tasks)


def test_task_needs_a_capability_and_a_valid_id() -> None:
    with pytest.raises(ValidationError, match="must name a skill"):
        TaskSpec(id="a")
    with pytest.raises(ValidationError, match="task id"):
        TaskSpec(id="bad id", skill="s")


def test_unserved_skill_is_named() -> None:
    g = graph({"id": "a", "skill": "known"}, {"id": "b", "skill": "unknown"})
    with pytest.raises(GraphError, match=r"'b' \(skill 'unknown'\)"):
        g.check_served(lambda t: t.skill == "known")


def test_resolve_paths_and_errors() -> None:
    outputs = {"a": {"items": [{"name": "x"}], "n": 2}}
    value = {"first": {"$ref": "a.output.items.0.name"}, "all": {"$ref": "a.output"}, "k": [1, {"$ref": "a.output.n"}]}
    assert resolve_input(value, outputs) == {"first": "x", "all": outputs["a"], "k": [1, 2]}
    with pytest.raises(GraphError, match="has no 'items.5'"):
        resolve_input({"$ref": "a.output.items.5"}, outputs)


def test_single_task_becomes_a_graph() -> None:
    g = as_graph({"skill": "echo", "input": {"text": "hi"}})
    assert len(g.tasks) == 1 and g.tasks[0].id == "task"
    assert parse_ref({"text": "plain"}) is None
