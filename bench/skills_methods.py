"""The three ways bench/skills.py answers each labelled item: the model, rules, and the small-first cascade.

Per skill type: ``model(ctx, item)`` asks the brain (schema-constrained) and raises ``AgentError`` on invalid
output; ``rules(item)`` answers without a model; ``cascade(ctx, item)`` takes the model's answer, checks it in code
and lets the rules answer what the check refuses (or everything, when the model's output is invalid).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.agent import SkillContext
from agents.errors import AgentError
from agents.examples import triage_agent
from agents.negotiators.language import read_offer
from agents.negotiators.offer_text import mentions, parse_offer_rules, read_terms
from bench.skills_data import PRODUCTS, SkillItem
from protocol.negotiation import Issue

__all__ = ["Methods", "METHODS", "issues_of"]

Answer = dict[str, Any]


@dataclass(frozen=True)
class Methods:
    """The model, rule and cascade answers for one skill type; ``rules_first`` asks the model only for what the
    rules leave unanswered (None fields)."""

    model: Callable[[SkillContext, SkillItem], Awaitable[Answer]]
    rules: Callable[[SkillItem], Answer]
    cascade: Callable[[SkillContext, SkillItem], Awaitable[Answer]]
    rules_first: Callable[[SkillContext, SkillItem], Awaitable[Answer]]


# ---- classify: the existing triage agent (agents.examples) beside keyword rules ----

_DEPARTMENT_WORDS = {
    "billing": ("invoice", "billed", "payment", "credit note", "vat", "owe", "paid", "overdue", "charge"),
    "support": ("noise", "reset", "error", "leak", "manual", "start", "breaker", "lubricant", "configure", "firmware"),
    "sales": ("quote", "price list", "order", "buy", "discount", "stock", "sales", "interested"),
}
_URGENT_WORDS = ("urgent", "asap", "down", "stopped", "today", "stands still", "blocking", "time-critical", "!")


async def _classify_model(ctx: SkillContext, item: SkillItem) -> Answer:
    agent = triage_agent(ctx.brain)  # type: ignore[arg-type]
    result, _ = await agent.call("classify", {"text": item.text}, ctx=ctx)
    return result.model_dump()


def _classify_rules(item: SkillItem) -> Answer:
    text = item.text.lower()
    hits = {d: sum(w in text for w in words) for d, words in _DEPARTMENT_WORDS.items()}
    department = max(hits, key=lambda d: hits[d])  # ties: billing, then support, then sales
    return {"department": department, "urgent": any(w in text for w in _URGENT_WORDS)}


async def _classify_cascade(ctx: SkillContext, item: SkillItem) -> Answer:
    try:
        return await _classify_model(ctx, item)
    except AgentError:
        return _classify_rules(item)


# ---- extract_order: product, quantity, due days ----

_ITEM = Literal["pump", "gearbox", "valve", "motor", "bearing", "controller"]


class OrderLine(BaseModel):
    """An order read from a message."""

    model_config = ConfigDict(extra="forbid")

    item: _ITEM
    quantity: int = Field(ge=1, le=100_000)
    due_days: int = Field(ge=1, le=365)


_ORDER_SYSTEM = "\n".join(
    [
        "Extract the order in the message as JSON: item (one of pump, gearbox, valve, motor, bearing, controller), "
        "quantity (units ordered now), due_days (days until delivery; a week is 7 days).",
        'Message: "Please ship 30 motors in 12 days."',
        'JSON: {"item": "motor", "quantity": 30, "due_days": 12}',
        'Message: "We need two hundred valves within 3 weeks (our old order of 150 is closed)."',
        'JSON: {"item": "valve", "quantity": 200, "due_days": 21}',
        'Message: "Ref 512: 1,500 bearings at 4.20 EUR each, needed in 45 days."',
        'JSON: {"item": "bearing", "quantity": 1500, "due_days": 45}',
    ]
)


async def _extract_model(ctx: SkillContext, item: SkillItem) -> Answer:
    line = await ctx.generate(f'Message: "{item.text}"\nJSON:', OrderLine, system=_ORDER_SYSTEM, max_tokens=40)
    return line.model_dump()


def _product(text: str) -> str | None:
    words = re.findall(r"[a-z]+", text.lower())
    names = {**{p: p for p in PRODUCTS}, **{plural: p for p, plural in PRODUCTS.items()}}
    for word in words:
        match = difflib.get_close_matches(word, list(names), n=1, cutoff=0.8)
        if match:
            return names[match[0]]
    return None


_QUANTITY_WORDS = {"quantity": {*PRODUCTS, *PRODUCTS.values(), "units", "of"}}


def _extract_rules(item: SkillItem) -> Answer:
    terms = read_terms(item.text, ("days", "quantity"), _QUANTITY_WORDS)
    quantity, days = terms["quantity"], terms["days"]
    return {
        "item": _product(item.text),
        "quantity": int(quantity) if quantity is not None else None,
        "due_days": int(days) if days is not None else None,
    }


def _written(value: float, text: str) -> bool:
    return any(abs(m.value - value) < 1e-9 for m in mentions(text))


async def _extract_cascade(ctx: SkillContext, item: SkillItem) -> Answer:
    try:
        answer = await _extract_model(ctx, item)
    except AgentError:
        return _extract_rules(item)
    ruled: Answer | None = None
    for name in ("quantity", "due_days"):
        if not _written(answer[name], item.text):  # a number the text does not contain: the rules read it
            ruled = ruled or _extract_rules(item)
            answer[name] = ruled[name]
    return answer


# ---- choose_move: accept, counter or walk away ----


class MoveAnswer(BaseModel):
    """The move on the other side's message."""

    model_config = ConfigDict(extra="forbid")

    move: Literal["accept", "counter", "walk_away"]


_MOVE_SYSTEM = "\n".join(
    [
        "You buy parts. Decide your move on the seller's message, from your limits:",
        "- accept: every term is within your limits",
        "- walk_away: a term is outside your limits and they say the offer is final, "
        "or the price is more than 1.4 times your limit",
        "- counter: otherwise",
        'Answer as JSON: {"move": "accept" | "counter" | "walk_away"}',
        "Limits: price at most 50.00 EUR, at least 100 units, delivery within 20 days.",
        'Message: "48.00 each for 120 units, delivery in 15 days."',
        'JSON: {"move": "accept"}',
        "Limits: price at most 50.00 EUR, at least 100 units, delivery within 20 days.",
        'Message: "55.00 each for 120 units, delivery in 15 days."',
        'JSON: {"move": "counter"}',
        "Limits: price at most 50.00 EUR, at least 100 units, delivery within 20 days.",
        'Message: "55.00 each for 120 units, delivery in 15 days. Final offer."',
        'JSON: {"move": "walk_away"}',
    ]
)
_FINAL_WORDS = ("final", "take it or leave it", "cannot move", "last offer")


def _limits(item: SkillItem) -> str:
    c = item.context
    return (
        f"Limits: price at most {c['max_price']:.2f} EUR, at least {c['min_quantity']} units, "
        f"delivery within {c['max_days']} days."
    )


async def _move_model(ctx: SkillContext, item: SkillItem) -> Answer:
    prompt = f'{_limits(item)}\nMessage: "{item.text}"\nJSON:'
    answer = await ctx.generate(prompt, MoveAnswer, system=_MOVE_SYSTEM, max_tokens=16)
    return answer.model_dump()


def _move_terms(item: SkillItem) -> tuple[bool | None, bool]:
    """(within my limits: None when a term cannot be read; price over 1.4 times the limit)."""
    terms = read_terms(item.text, ("price", "days", "quantity"), _QUANTITY_WORDS)
    price, quantity, days = terms["price"], terms["quantity"], terms["days"]
    c = item.context
    far = price is not None and price > 1.4 * c["max_price"]
    if price is None or quantity is None or days is None:
        return None, far
    return price <= c["max_price"] and quantity >= c["min_quantity"] and days <= c["max_days"], far


def _move_rules(item: SkillItem) -> Answer:
    within, far = _move_terms(item)
    final = any(w in item.text.lower() for w in _FINAL_WORDS)
    if within:
        return {"move": "accept"}
    return {"move": "walk_away" if final or far else "counter"}


async def _move_cascade(ctx: SkillContext, item: SkillItem) -> Answer:
    try:
        answer = await _move_model(ctx, item)
    except AgentError:
        return _move_rules(item)
    if answer["move"] == "accept" and not _move_terms(item)[0]:  # never accept what code cannot see is in limits
        return _move_rules(item)
    return answer


# ---- read_offer: agents.negotiators.language ----


def issues_of(item: SkillItem) -> list[Issue]:
    """The negotiation issues a read_offer item is read onto."""
    return [Issue.model_validate(i) for i in item.context["issues"]]


async def _read_model(ctx: SkillContext, item: SkillItem) -> Answer:
    reading = await read_offer(item.text, issues_of(item), ctx, fallback=False)
    if "*" in reading.refused:
        raise AgentError(reading.refused["*"])
    return dict(reading.values)


def _read_rules(item: SkillItem) -> Answer:
    return dict(parse_offer_rules(item.text, issues_of(item)))


async def _read_cascade(ctx: SkillContext, item: SkillItem) -> Answer:
    return dict((await read_offer(item.text, issues_of(item), ctx, order="model-first")).values)


def _rules_first(
    rules: Callable[[SkillItem], Answer], checked_model: Callable[[SkillContext, SkillItem], Awaitable[Answer]]
) -> Callable[[SkillContext, SkillItem], Awaitable[Answer]]:
    """The rules' answer; when it leaves fields empty, the model's checked answer fills them (one model call)."""

    async def answer(ctx: SkillContext, item: SkillItem) -> Answer:
        ruled = rules(item)
        if all(value is not None for value in ruled.values()):
            return ruled
        try:
            modelled = await checked_model(ctx, item)
        except AgentError:
            return ruled
        return {name: modelled.get(name) if value is None else value for name, value in ruled.items()}

    return answer


async def _extract_checked(ctx: SkillContext, item: SkillItem) -> Answer:
    answer = await _extract_model(ctx, item)
    return {k: v if k == "item" or _written(v, item.text) else None for k, v in answer.items()}


METHODS: dict[str, Methods] = {
    "classify": Methods(
        _classify_model, _classify_rules, _classify_cascade, _rules_first(_classify_rules, _classify_model)
    ),
    "extract_order": Methods(
        _extract_model, _extract_rules, _extract_cascade, _rules_first(_extract_rules, _extract_checked)
    ),
    "choose_move": Methods(_move_model, _move_rules, _move_cascade, _rules_first(_move_rules, _move_model)),
    "read_offer": Methods(_read_model, _read_rules, _read_cascade, _rules_first(_read_rules, _read_model)),
}
