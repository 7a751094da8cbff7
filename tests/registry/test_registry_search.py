"""Ranked search by skill, tags and free text (FTS5 / tsvector), filters, and hostile query strings."""

from __future__ import annotations

import pytest

from registry import CostHints, HealthStatus, InvalidQuery, Registry


@pytest.fixture
def fleet(registry: Registry, card) -> Registry:
    registry.register_card(
        card(
            "invoice-reader",
            description="Reads scanned invoices",
            skills=[("parse_invoice", ["finance", "ocr"])],
            examples=["extract the total from this invoice"],
        ),
        cost=CostHints(per_call=1.0),
    )
    registry.register_card(
        card(
            "translator",
            description="Translates German text to English",
            skills=[("translate", ["nlp", "language"])],
            examples=["übersetze: guten Morgen"],
        ),
        cost=CostHints(per_call=0.2),
    )
    registry.register_card(
        card("ledger", description="Keeps the books; reconciles invoice totals", skills=[("reconcile", ["finance"])]),
        cost=CostHints(per_call=3.0),
    )
    registry.register_card(card("scheduler", description="Plans machine schedules", skills=[("schedule", ["ops"])]))
    return registry


def names(records) -> list[str]:
    return [r.name for r in records]


def test_by_skill(fleet: Registry) -> None:
    assert names(fleet.search(skill="translate")) == ["translator"]
    assert fleet.search(skill="nope") == []


def test_by_tags_ranked_by_overlap(fleet: Registry) -> None:
    assert names(fleet.search(tags=["finance", "ocr"])) == ["invoice-reader", "ledger"]
    assert names(fleet.search(tags=["FINANCE", "ocr"], all_tags=True)) == ["invoice-reader"]


def test_free_text_ranked_name_first(fleet: Registry) -> None:
    assert names(fleet.search(text="invoice")) == ["invoice-reader", "ledger"]
    assert names(fleet.search(text="translat")) == ["translator"]  # prefix of the last word
    assert names(fleet.search(text="guten morgen")) == ["translator"]  # examples are indexed
    assert names(fleet.search(text="invoices books")) == ["ledger"]  # all words must match (stemmed)
    assert fleet.search(text="zebra") == []


@pytest.mark.parametrize(
    "hostile",
    [
        '"foo" OR * NEAR(',
        "'; DROP TABLE registry_agents; --",
        "a:* & !b | (",
        "NEAR(invoice ledger, 2)",
        '"',
        "*",
        "^invoice",
        "invoice AND NOT",
        "\x00",
        "-",
        "x" * 5000,
        "col:invoice",
        "{name}:invoice",
    ],
)
def test_hostile_text_is_harmless(fleet: Registry, hostile: str) -> None:
    results = fleet.search(text=hostile)
    assert isinstance(results, list)
    assert fleet.count() == 4


def test_hostile_words_still_match_as_words(fleet: Registry) -> None:
    assert names(fleet.search(text='"invoice" OR * NEAR(')) == []  # "or", "near" are plain words, not operators
    assert names(fleet.search(text="invoice*")) == ["invoice-reader", "ledger"]


def test_filters_on_health_cost_and_latency(fleet: Registry) -> None:
    reader, ledger = fleet.find("invoice-reader"), fleet.find("ledger")
    assert names(fleet.search(tags=["finance"], max_cost=2.0)) == ["invoice-reader"]
    fleet.set_status(reader.id, HealthStatus.UNHEALTHY)
    assert names(fleet.search(tags=["finance"])) == ["ledger"]
    assert names(fleet.search(tags=["finance"], status=None)) == ["ledger", "invoice-reader"]  # healthy first
    assert names(fleet.search(tags=["finance"], status={HealthStatus.UNHEALTHY})) == ["invoice-reader"]
    fleet.set_status(reader.id, HealthStatus.HEALTHY)
    fleet.record_call(ledger.id, success=True, latency_s=2.0)
    assert names(fleet.search(tags=["finance"], max_latency_ms=500)) == ["invoice-reader"]  # unmeasured passes


def test_observed_behaviour_breaks_ties(fleet: Registry) -> None:
    reader, ledger = fleet.find("invoice-reader"), fleet.find("ledger")
    fleet.record_call(reader.id, success=False, latency_s=0.1)
    fleet.record_call(ledger.id, success=True, latency_s=0.5)
    assert names(fleet.search(skill=None, tags=["finance"])) == ["ledger", "invoice-reader"]
    fleet.record_call(reader.id, success=True, latency_s=0.1)
    fleet.record_call(reader.id, success=True, latency_s=0.1)
    fleet.record_call(ledger.id, success=False, latency_s=0.5)
    assert names(fleet.search(tags=["finance"])) == ["invoice-reader", "ledger"]


def test_combined_criteria_and_paging(fleet: Registry) -> None:
    assert names(fleet.search(skill="reconcile", tags=["finance"], text="books")) == ["ledger"]
    everyone = names(fleet.search(limit=10))
    assert len(everyone) == 4 and names(fleet.search(limit=2, offset=2)) == everyone[2:]
    with pytest.raises(InvalidQuery):
        fleet.search(limit=0)
    with pytest.raises(InvalidQuery):
        fleet.search(skill="")


def test_update_reindexes_text(fleet: Registry, card) -> None:
    fleet.register_card(
        card("scheduler", version="2", description="Negotiates delivery slots", skills=[("negotiate", ["ops"])])
    )
    assert fleet.search(text="machine schedules") == []
    assert names(fleet.search(text="delivery slots")) == ["scheduler"]
    fleet.deregister(fleet.find("scheduler").id)
    assert fleet.search(text="delivery") == []
