"""The labelled set for bench/skills.py, generated from templates so every label is known by construction.

Each item is written from values chosen first (a department and an urgency, an order, a negotiation situation, an
offer on a grid) and then rendered with varied wording, number words, weeks for days, typos and distractor
numbers or words; the label is the chosen values, never what a parser reads back. Seeded: the same seed writes
the same files. ``python -m bench.skills_data --write`` regenerates bench/data/skills/*.jsonl.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from protocol.negotiation import Issue

__all__ = ["SkillItem", "TYPES", "DATA_DIR", "SEED", "build_items", "load_items", "write_items", "number_words"]

DATA_DIR = Path(__file__).parent / "data" / "skills"
SEED = 20261201
PER_TYPE = 64
TYPES = ["classify", "extract_order", "choose_move", "read_offer"]
PRODUCTS = {
    "pump": "pumps",
    "gearbox": "gearboxes",
    "valve": "valves",
    "motor": "motors",
    "bearing": "bearings",
    "controller": "controllers",
}
SITES = ["Lyon", "Graz", "Porto", "Leeds", "Brno", "Turin"]
NAMES = ["Anna", "Marek", "Sofia", "Tom", "Ines", "Karl"]


class SkillItem(BaseModel):
    """One labelled item: the text, what else the skill is given (``context``), the true answer, and tags."""

    id: str
    type: str
    text: str = Field(max_length=2_000)
    context: dict[str, Any] = Field(default_factory=dict)
    label: dict[str, Any]
    tags: list[str] = Field(default_factory=list)


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words for 0 <= n < 10000 ('four hundred and fifty')."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))
    rest = n % 1000
    return number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))


def _typo(rng: random.Random, text: str, count: int) -> str:
    """Swap or drop letters in ``count`` words of five letters or more (never in numbers)."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    for i in rng.sample(candidates, min(count, len(candidates))):
        w = words[i]
        j = rng.randrange(1, len(w) - 2)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    return " ".join(words)


def _maybe_typo(rng: random.Random, text: str, tags: list[str], p: float = 0.25) -> str:
    if rng.random() < p:
        tags.append("typo")
        return _typo(rng, text, rng.choice([1, 2]))
    return text


# ---- classify: department (sales, support, billing) and urgency of a customer or supplier message ----

_CLASSIFY: dict[str, list[str]] = {
    "sales": [
        "We would like a quote for {n} {ps}.",
        "Could you send us your price list for {ps}? We plan to order about {n}.",
        "Please add {n} {ps} to our next order.",
        "Do you have {n} {ps} in stock for a new order?",
        "Our plant in {site} wants to buy {n} more {ps}.",
        "Is there a volume discount if we order {n} {ps}?",
        "I'd like to place an order: {n} x {p}.",
        "We are interested in your new {p} range, can a sales rep call us?",
        "As your supplier we can offer {n} {ps} at a discount this month, interested?",
    ],
    "support": [
        "The {p} installed last week makes a grinding noise.",
        "How do I reset the controller of the {p} after a firmware update?",
        "Our {p} keeps tripping the breaker after ten minutes.",
        "Error code E{code} shows on the {p} display. What does it mean?",
        "The {p} leaks oil at the seal.",
        "Which lubricant should we use for the {p}?",
        "The manual for the {p} is missing the wiring diagram.",
        "After the update the {p} will not start.",
        "Our technician needs remote access to configure the {p} you sent.",
    ],
    "billing": [
        "Invoice {inv} charges us for {n} {ps} but we received {m}.",
        "We were billed twice for order {order}.",
        "Please send a credit note for the {m} returned {ps}.",
        "Our payment of {amount} EUR is not shown against invoice {inv}.",
        "Can we move our account to 60-day payment terms?",
        "The VAT number on invoice {inv} is wrong.",
        "Your reminder says we owe {amount} EUR, but we paid on the 3rd.",
        "As your supplier: invoice {inv} for the {ps} is 30 days overdue.",
        "Why does invoice {inv} show a higher unit price than our contract?",
    ],
}
_DISTRACT = {
    "sales": ["Our last invoice was correct, thanks. ", "The {ps} we have run fine. "],
    "support": ["We do not want to order anything, ", "Not a billing question: "],
    "billing": ["The machines run fine, but ", "We do not need a quote; "],
}
_URGENT = [
    ("URGENT: ", ""),
    ("", " Our production line is down."),
    ("", " We need this solved today."),
    ("", " Please answer ASAP."),
    ("", " The whole plant has stopped!"),
    ("", " This is blocking a shipment that leaves tomorrow."),
    ("Time-critical: ", ""),
    ("", " Line 3 stands still until this is sorted out."),
]
_CALM = ["", " No rush.", " Whenever you have time.", " Not urgent, just for our records.", " Thanks in advance."]


def _classify(rng: random.Random, k: int) -> SkillItem:
    department = ["sales", "support", "billing"][k % 3]
    urgent = rng.random() < 0.4
    p = rng.choice(list(PRODUCTS))
    n = rng.choice([10, 20, 40, 50, 100, 250, 500])
    fields = {
        "p": p,
        "ps": PRODUCTS[p],
        "n": n,
        "m": max(1, n - rng.choice([2, 5, 10])),
        "site": rng.choice(SITES),
        "code": rng.randrange(10, 99),
        "inv": f"INV-{rng.randrange(1000, 9999)}",
        "order": f"PO-{rng.randrange(100, 999)}",
        "amount": f"{rng.randrange(200, 9000)}.{rng.randrange(0, 99):02d}",
    }
    tags: list[str] = []
    body = rng.choice(_CLASSIFY[department]).format(**fields)
    if rng.random() < 0.3:
        tags.append("distractor")
        lead = rng.choice(_DISTRACT[department]).format(**fields)
        body = lead + (body[0].lower() + body[1:] if lead.endswith((", ", "; ", ": ")) else body)
    if urgent:
        before, after = rng.choice(_URGENT)
        text = before + body + after
    else:
        calm = rng.choice(_CALM)
        tags += ["says-not-urgent"] if "urgent" in calm.lower() else []
        text = body + calm
    text = _maybe_typo(rng, text, tags)
    return SkillItem(
        id=f"classify-{k:03d}",
        type="classify",
        text=text,
        label={"department": department, "urgent": urgent},
        tags=tags,
    )


# ---- extract_order: product, quantity and due days from an order message ----

_ORDER = [
    ("Please send {q} {ps} within {d} days.", []),
    ("We need {qw} {ps}, delivery in {w} weeks.", ["number-words", "weeks"]),
    ("Order: {p} x {q}, due in {d} days.", []),
    ("Hi team, could you ship {q} units of {p} to our plant in {site} in {d} days? Thanks, {name}", []),
    ("{name} here. After the {q2} {ps2} last month, we now need {q} {ps} within {d} days.", ["distractor"]),
    ("Quote ref {ref}: {q} {ps} at {price} EUR each, needed in {d} days.", ["distractor"]),
    ("Can you deliver {q} {ps} to {site} in {w} weeks? Our old order of {q2} is closed.", ["weeks", "distractor"]),
    ("We'd like {q} {ps} (not {q2} as in the draft) - delivery in {d} days please.", ["distractor"]),
    ("{qc} {ps} needed, {d} days from today.", ["thousands"]),
    ("For project {ref} we order {qw} {ps}; they must arrive within {d} days.", ["number-words", "distractor"]),
]


def _extract(rng: random.Random, k: int) -> SkillItem:
    template, template_tags = _ORDER[k % len(_ORDER)]
    p = rng.choice(list(PRODUCTS))
    p2 = rng.choice([x for x in PRODUCTS if x != p])
    weeks = "weeks" in template_tags
    w = rng.randrange(2, 9)
    d = 7 * w if weeks else rng.randrange(2, 61)
    q = rng.choice([1200, 1500, 2000, 2500, 3000]) if "thousands" in template_tags else rng.randrange(2, 100) * 5
    text = template.format(
        p=p,
        ps=PRODUCTS[p],
        ps2=PRODUCTS[p2],
        q=q,
        qw=number_words(q),
        qc=f"{q:,}",
        q2=q + rng.choice([-15, 10, 25, 100]) if q > 15 else q + 10,
        d=d,
        w=w,
        site=rng.choice(SITES),
        name=rng.choice(NAMES),
        ref=rng.randrange(100, 999),
        price=f"{rng.randrange(5, 400)}.{rng.choice([0, 25, 50, 90]):02d}",
    )
    tags = list(template_tags)
    text = _maybe_typo(rng, text, tags)
    return SkillItem(
        id=f"extract-{k:03d}",
        type="extract_order",
        text=text,
        label={"item": p, "quantity": q, "due_days": d},
        tags=tags,
    )


# ---- choose_move: accept, counter or walk away, given my limits and the other side's message ----

_FINAL = [" This is our final offer.", " Take it or leave it.", " We cannot move any further.", " Last offer."]
_OPEN = ["", " Let us know what you think.", " Open to discuss.", " Looking forward to your answer."]
_MOVE_TEXT = [
    "We can offer {q} {ps} at {price} EUR each, delivery in {d} days.",
    "{price} per unit for {q} units, delivered within {d} days.",
    "Our proposal: quantity {q}, unit price {price} EUR, delivery in {d} days.",
    "Fine, {q} {ps} for {price} each, we ship in {d} days.",
]


def _move(rng: random.Random, k: int) -> SkillItem:
    label = ["accept", "counter", "walk_away"][k % 3]
    p = rng.choice(list(PRODUCTS))
    max_price = rng.choice([12.0, 40.0, 85.0, 150.0, 320.0])
    min_q = rng.choice([100, 200, 400, 800])
    max_days = rng.choice([10, 14, 21, 30])
    price, q, d = max_price * rng.uniform(0.8, 1.0), rng.randrange(min_q, int(min_q * 1.5) + 1, 10), 0
    d = rng.randrange(2, max_days + 1)
    final = rng.random() < 0.3
    tags: list[str] = []
    if label != "accept":
        out = rng.choice(["price", "days", "quantity", "price+days"])
        if "price" in out:
            price = max_price * rng.uniform(1.05, 1.2)
        if "days" in out:
            d = max_days + rng.randrange(2, 11)
        if out == "quantity":
            q = rng.randrange(int(min_q * 0.5), int(min_q * 0.9), 10)
        final = label == "walk_away"
        if label == "walk_away" and rng.random() < 0.4:
            price, final = max_price * rng.uniform(1.5, 1.9), False
            tags.append("far-price")
    tags += ["final"] if final else []
    closing = rng.choice(_FINAL if final else _OPEN)
    text = rng.choice(_MOVE_TEXT).format(q=q, ps=PRODUCTS[p], price=f"{price:.2f}", d=d) + closing
    text = _maybe_typo(rng, text, tags, p=0.15)
    context = {"item": p, "max_price": max_price, "min_quantity": min_q, "max_days": max_days}
    return SkillItem(
        id=f"move-{k:03d}",
        type="choose_move",
        text=text,
        context=context,
        label={"move": label},
        tags=tags,
    )


# ---- read_offer: a counter-offer in free text onto the negotiation's issues ----

_OFFER = [
    ("We can do {q} units at {p} each, delivery in {d} days.", []),
    ("{p} EUR per unit for {q} pieces, delivered on day {d}.", []),
    ("Our counter: quantity {q}, unit price {p}, delivery day {d}.", []),
    ("Last week you asked for {p_old}; we can now offer {p} per unit, {q} units, in {w} weeks.", ["stale", "weeks"]),
    ("Fine - {qw} units, {p} apiece, shipping within {d} days.", ["number-words"]),
    ("Can't do {p_old}. {p} each is our limit, {q} pcs, day {d}.", ["stale"]),
    ("How about {q} units for {p} each? Delivery we can discuss.", ["missing-term"]),
    ("We could deliver {q} units in {d} days at {p_off} each.", ["off-grid"]),
    ("{p} EUR/unit, {q} units, delivery {d} days", []),
    ("Quantity {q} is ok. Price {p}. Delivery in {d} days, not {d_old}.", ["stale"]),
]


def _offer_issues(rng: random.Random, penalty: bool) -> list[Issue]:
    base = rng.choice([4.0, 6.0, 18.0, 25.0, 40.0, 55.0, 60.0, 90.0, 120.0])
    quantity = rng.choice([100, 200, 400, 450, 800])
    last = rng.randrange(14, 41)
    issues = [
        Issue(
            name="unit_price", values=sorted({round(base * f, 2) for f in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)}), unit="EUR"
        ),
        Issue(name="quantity", values=sorted({float(round(quantity * f)) for f in (1.0, 1.05, 1.1)})),
        Issue(name="delivery_day", values=[float(d) for d in range(2, last + 1)], unit="day"),
    ]
    if penalty:
        issues.append(Issue(name="late_penalty", values=[0.0, 1.0, 2.0, 5.0], unit="% per day"))
    return issues


def _price_text(value: float) -> str:
    return f"{value:.2f}"


def _read(rng: random.Random, k: int) -> SkillItem:
    template, template_tags = _OFFER[k % len(_OFFER)]
    penalty = rng.random() < 0.3
    issues = _offer_issues(rng, penalty)
    prices, quantities, days = issues[0].values, issues[1].values, issues[2].values
    weeks = "weeks" in template_tags
    d = float(rng.choice([x for x in days if x % 7 == 0 and x >= 14])) if weeks else rng.choice(days)
    label: dict[str, float | None] = {
        "unit_price": rng.choice(prices),
        "quantity": rng.choice(quantities),
        "delivery_day": d,
    }
    p = label["unit_price"]
    assert p is not None
    old = [x for x in prices if x != p]
    off = p * rng.choice([1.03, 1.04]) if p != prices[-1] else p * 0.97  # 3-4 % off the grid: no grid value
    tags = list(template_tags)
    text = template.format(
        q=int(label["quantity"] or 0),
        qw=number_words(int(label["quantity"] or 0)),
        p=_price_text(p),
        p_old=_price_text(rng.choice(old)),
        p_off=_price_text(off),
        d=int(d),
        d_old=int(rng.choice([x for x in days if x != d])),
        w=int(d // 7),
    )
    if "missing-term" in tags:
        label["delivery_day"] = None
    if "off-grid" in tags:
        label["unit_price"] = None
    if penalty:
        if rng.random() < 0.6:
            pen = rng.choice(issues[3].values)
            text = text.rstrip(".") + f", late penalty {pen:g}% per day."
            label["late_penalty"] = pen
        else:
            label["late_penalty"] = None
            tags.append("missing-term")
    text = _maybe_typo(rng, text, tags, p=0.2)
    return SkillItem(
        id=f"read-{k:03d}",
        type="read_offer",
        text=text,
        context={"issues": [i.model_dump(mode="json") for i in issues]},
        label=label,
        tags=sorted(set(tags)),
    )


_BUILDERS = {"classify": _classify, "extract_order": _extract, "choose_move": _move, "read_offer": _read}


def build_items(seed: int = SEED, per_type: int = PER_TYPE) -> dict[str, list[SkillItem]]:
    """The labelled set: ``per_type`` items of each type, the same for the same seed."""
    return {kind: [_BUILDERS[kind](random.Random(f"{seed}-{kind}-{k}"), k) for k in range(per_type)] for kind in TYPES}


def write_items(directory: Path = DATA_DIR, seed: int = SEED, per_type: int = PER_TYPE) -> list[Path]:
    """Write one JSON-lines file per type; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, items in build_items(seed, per_type).items():
        path = directory / f"{kind}.jsonl"
        path.write_text("".join(item.model_dump_json() + "\n" for item in items), encoding="utf-8")
        paths.append(path)
    return paths


def load_items(directory: Path = DATA_DIR) -> dict[str, list[SkillItem]]:
    """The shipped labelled set, per type."""
    out: dict[str, list[SkillItem]] = {}
    for kind in TYPES:
        path = directory / f"{kind}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; write it with: python -m bench.skills_data --write")
        out[kind] = [SkillItem.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write the set to {DATA_DIR}")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if args.write:
        for path in write_items(seed=args.seed):
            print(path)
    else:
        for kind, items in build_items(args.seed).items():
            for item in items[:3]:
                print(kind, item.text, item.label, item.tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
