"""read_offer / explain_offer: the model reads and writes, code decides what passes (Scripted brains), and the
bundled model reads simple offers (marked ``model``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from agents import Agent, LlamaCpp, Scripted, SkillContext
from agents.llm import ModelPool
from agents.negotiators import OfferReading, add_language_skills, explain_offer, read_offer
from agents.negotiators.language import ENUM_LIMIT, reading_model, template_sentence
from agents.negotiators.offer_text import mentions, parse_offer_rules
from protocol.negotiation import Issue, Offer

ISSUES = [
    Issue(name="unit_price", values=[11.6, 12.4, 13.1, 14.0], unit="EUR"),
    Issue(name="quantity", values=[400.0, 450.0, 500.0]),
    Issue(name="delivery_day", values=[float(d) for d in range(2, 31)], unit="day"),
]
TEXT = "We can do 450 units at 12.40 each, delivery in 3 weeks."
TRUE = {"unit_price": 12.4, "quantity": 450.0, "delivery_day": 21.0}


def _read(replies: Sequence[Any], text: str = TEXT, *, fallback: bool = True) -> tuple[OfferReading, Scripted]:
    brain = Scripted(replies)
    reading = anyio.run(lambda: read_offer(text, ISSUES, SkillContext(brain), fallback=fallback, order="model-first"))
    return reading, brain


def test_a_correct_model_reading_becomes_the_offer() -> None:
    reading, brain = _read([TRUE])
    assert reading.offer == Offer(values=TRUE)
    assert reading.source == "model" and reading.refused == {}
    assert len(brain.requests) == 1 and brain.requests[0].json_schema is not None


def test_garbage_never_passes_and_the_rules_read_instead() -> None:
    garbage = [
        "not json",
        '{"unit_price": "cheap"}',
        '{"unit_price": 12.4, "quantity": 450, "delivery_day": 21, "x": 1}',
    ]
    reading, brain = _read(garbage, fallback=False)
    assert len(brain.requests) == 3  # the first attempt and two retries, then the model is given up
    assert reading.offer is None and set(reading.values.values()) == {None}
    assert "InvalidModelOutput" in reading.refused["*"]
    reading, _ = _read(garbage)
    assert reading.offer == Offer(values=TRUE) and reading.source == "rules"


def test_a_value_off_the_grid_is_snapped_when_close_and_refused_when_not() -> None:
    text = "We can do 460 units at 12.38 each, delivery in 21 days."
    reading, _ = _read([{"unit_price": 12.38, "quantity": 460, "delivery_day": 21}], text, fallback=False)
    assert reading.values == {"unit_price": 12.4, "quantity": None, "delivery_day": 21.0}
    assert "460 is not within 1 % of an allowed value" in reading.refused["quantity"]
    reading, _ = _read([{"unit_price": 12.38, "quantity": 460, "delivery_day": 21}], text)
    assert reading.offer is None and reading.values["quantity"] is None  # the rules find no grid value either


def test_a_value_the_text_does_not_contain_is_refused_and_the_rules_fill_it() -> None:
    invented = {"unit_price": 12.4, "quantity": 500, "delivery_day": 3}
    reading, _ = _read([invented], fallback=False)
    assert reading.values == {"unit_price": 12.4, "quantity": None, "delivery_day": None}
    assert reading.refused["quantity"] == "500 is not written in the text"
    reading, _ = _read([invented])
    assert reading.offer == Offer(values=TRUE) and reading.source == "mixed"


def test_out_of_range_and_non_numbers_from_the_model_are_refused() -> None:
    reading, _ = _read([{"unit_price": 99.0, "quantity": None, "delivery_day": 400}], fallback=False)
    assert reading.offer is None and set(reading.values.values()) == {None}
    assert set(reading.refused) == {"unit_price", "delivery_day"}


def test_without_a_brain_the_rules_read() -> None:
    reading = anyio.run(lambda: read_offer(TEXT, ISSUES))
    assert reading.offer == Offer(values=TRUE) and reading.source == "rules"


def test_the_schema_lists_small_grids_and_bounds_large_ones() -> None:
    big = Issue(name="quantity", values=[float(q) for q in range(1, ENUM_LIMIT + 2)])
    props = reading_model([ISSUES[0], big]).model_json_schema()["properties"]
    assert props["unit_price"]["anyOf"][0]["enum"] == [11.6, 12.4, 13.1, 14.0]
    assert {"type": "null"} in props["unit_price"]["anyOf"]
    assert props["quantity"]["anyOf"][0] == {"type": "number", "minimum": 1.0, "maximum": ENUM_LIMIT + 1.0}
    assert reading_model(ISSUES).model_config.get("extra") == "forbid"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("four hundred and fifty pieces, EUR 13.10 per unit, within two weeks", (13.1, 450.0, 14.0)),
        ("Last time you asked 11.60. Now: 12.40 each for 500 units, day 9.", (12.4, 500.0, 9.0)),
        ("1,5 dozen? no: 400 units, 14.00 EUR/unit", (14.0, 400.0, None)),
    ],
)
def test_rule_parser(text: str, expected: tuple[float | None, ...]) -> None:
    assert tuple(parse_offer_rules(text, ISSUES).values()) == expected


def test_mentions_read_number_words_thousands_and_weeks() -> None:
    values = [m.value for m in mentions("two thousand and five units, 1,200 more, 1.5k spare, in 3 weeks")]
    assert values == [2005.0, 1200.0, 1500.0, 21.0]


def test_explain_offer_keeps_a_sentence_only_when_it_states_every_value() -> None:
    offer = Offer(values=TRUE)
    good = "We can deliver 450 units at 12.40 EUR each within 21 days."
    brain = Scripted([{"sentence": good}, {"sentence": "A great deal for both of us, trust me."}])
    first = anyio.run(lambda: explain_offer(offer, ISSUES, SkillContext(brain)))
    second = anyio.run(lambda: explain_offer(offer, ISSUES, SkillContext(brain)))
    assert (first.sentence, first.source) == (good, "model")
    assert second.source == "template" and second.sentence == template_sentence(offer, ISSUES)
    assert {m.value for m in mentions(second.sentence)} >= set(TRUE.values())


def test_language_skills_on_any_agent() -> None:
    agent = add_language_skills(Agent("buyer", "Buys parts"))
    assert {"read_offer", "explain_offer"} <= set(agent.skills)
    issues = [i.model_dump() for i in ISSUES]
    result, usage = anyio.run(lambda: agent.call("read_offer", {"text": TEXT, "issues": issues}))
    assert result.model_dump()["offer"] == {"values": TRUE} and usage.calls == 0
    result, _ = anyio.run(lambda: agent.call("explain_offer", {"offer": {"values": TRUE}, "issues": issues}))
    assert result.model_dump()["source"] == "template"


SIMPLE = [
    (
        "We can do 450 units at 12.40 each, delivery in 10 days.",
        {"unit_price": 12.4, "quantity": 450.0, "delivery_day": 10.0},
    ),
    (
        "Our counter: quantity 500, unit price 13.10, delivery day 25.",
        {"unit_price": 13.1, "quantity": 500.0, "delivery_day": 25.0},
    ),
    (
        "14.00 EUR per unit for 400 pieces, delivered on day 7.",
        {"unit_price": 14.0, "quantity": 400.0, "delivery_day": 7.0},
    ),
    (
        "How about 450 units for 11.60 each? Delivery we can discuss.",
        {"unit_price": 11.6, "quantity": 450.0, "delivery_day": None},
    ),
]


@pytest.mark.model
@pytest.mark.timeout(900)
def test_the_bundled_model_reads_simple_offers() -> None:
    brain = LlamaCpp(pool=ModelPool())  # its own engine: no other test's cached prefixes, so greedy output repeats

    async def read_all() -> list[dict[str, float | None]]:
        return [(await read_offer(text, ISSUES, SkillContext(brain), fallback=False)).values for text, _ in SIMPLE]

    readings = anyio.run(read_all)
    fields = [reading[k] == v for reading, (_, truth) in zip(readings, SIMPLE, strict=True) for k, v in truth.items()]
    # measured: 10 of 12 fields (2 offers whole) with flash attention, 3 offers whole without; on bench.skills'
    # 64 labelled read_offer items the model reads 65.6 % whole with it and 67.2 % without
    assert sum(fields) >= 9, readings


def test_rules_first_asks_the_model_only_for_what_the_rules_leave_empty() -> None:
    brain = Scripted([{"unit_price": 12.4, "quantity": 450, "delivery_day": 21}])
    reading = anyio.run(lambda: read_offer(TEXT, ISSUES, SkillContext(brain)))
    assert reading.offer == Offer(values=TRUE) and reading.source == "rules" and brain.requests == []
    vague = "Price as you proposed, 450 units, delivery in three weeks."  # no price written: the rules leave it
    brain = Scripted([{"unit_price": None, "quantity": 450, "delivery_day": 21}])
    reading = anyio.run(lambda: read_offer(vague, ISSUES, SkillContext(brain)))
    assert len(brain.requests) == 1 and reading.values["unit_price"] is None and reading.offer is None
