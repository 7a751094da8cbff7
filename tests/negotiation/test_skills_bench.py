"""bench/skills.py cannot rot: the shipped labelled set is the generator's, and the bench runs end to end on a few
items with a Scripted brain (model calls made once; the cascade replays them)."""

from __future__ import annotations

import anyio

from agents import Scripted
from agents.llm.base import GenerationRequest
from bench.skills import format_report, run_bench
from bench.skills_data import TYPES, build_items, load_items
from bench.skills_methods import METHODS


def test_the_shipped_set_is_the_seeded_generator_output() -> None:
    shipped = load_items()
    assert shipped == build_items()
    assert list(shipped) == TYPES
    assert all(len(items) >= 60 for items in shipped.values())
    assert sum(len(items) for items in shipped.values()) >= 200
    ids = [item.id for items in shipped.values() for item in items]
    assert len(ids) == len(set(ids))


def test_labels_cover_every_answer() -> None:
    shipped = load_items()
    assert {item.label["department"] for item in shipped["classify"]} == {"sales", "support", "billing"}
    assert {item.label["urgent"] for item in shipped["classify"]} == {True, False}
    assert {item.label["move"] for item in shipped["choose_move"]} == {"accept", "counter", "walk_away"}
    assert any(None in item.label.values() for item in shipped["read_offer"])  # missing and off-grid terms


def _reply(request: GenerationRequest) -> str:
    """A fixed plausible answer per skill type (wrong on many items), and garbage for read_offer."""
    properties = (request.json_schema or {}).get("properties", {})
    if "department" in properties:
        return '{"department": "billing", "urgent": false}'
    if "due_days" in properties:
        return '{"item": "pump", "quantity": 50, "due_days": 14}'
    if "move" in properties:
        return '{"move": "counter"}'
    return "no offer here"


def test_the_bench_runs_and_prints_every_type_and_method() -> None:
    items = {kind: build_items(per_type=3)[kind] for kind in TYPES}
    # read_offer garbage is retried twice: 3 calls per item; every other item is one call; never a second time
    brain = Scripted([_reply] * (3 * 3 + 3 * 3))
    results = anyio.run(lambda: run_bench(brain, items, limit=3))
    assert len(brain.requests) == 3 * 3 + 3 * 3
    for kind, scores in results.items():
        assert {name: s.items for name, s in scores.items()} == {"model": 3, "rules": 3, "cascade": 3, "rules>model": 3}
        rules_right = sum(METHODS[kind].rules(item) == item.label for item in items[kind])
        assert scores["rules"].accuracy == rules_right / 3
    assert results["read_offer"]["model"].valid == [False] * 3  # garbage is invalid, never an answer
    assert results["read_offer"]["cascade"].accuracy == results["read_offer"]["rules"].accuracy
    assert results["classify"]["rules>model"].tokens == [0, 0, 0]  # the rules always answer: no model call
    report = format_report(results)
    for kind in TYPES:
        assert f"{kind}: " in report
    assert "J/correct" in report and "cascade" in report
