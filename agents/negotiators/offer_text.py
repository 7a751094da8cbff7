"""Numbers in free-text negotiation messages, without a model: mentions, snapping to an issue's grid, a rule parser.

Used by ``agents.negotiators.language`` twice: to check that every value the model read is written in the text
(grounding), and as the rule-based fallback that reads an offer when the model cannot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.negotiation import Issue

__all__ = ["Mention", "mentions", "issue_kind", "snap", "parse_offer_rules", "read_terms", "SNAP_TOLERANCE"]

SNAP_TOLERANCE = 0.01  # a value within 1 % of a grid value is that grid value (12.38 -> 12.40); farther is refused
_WINDOW = 4  # words looked at on each side of a number

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000}
_ANY_NUMBER_WORD = "|".join([*_UNITS, *_SCALES])
_NUMBER_RUN = re.compile(rf"\b(?:{_ANY_NUMBER_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{_ANY_NUMBER_WORD}))*\b")
_NUMBER = re.compile(r"(?P<cur>[$€£])?\s?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)(?P<k>k\b)?")
_WORD = re.compile(r"[a-z%€$£]+")

_KIND_WORDS: dict[str, set[str]] = {
    "price": {"eur", "euro", "euros", "usd", "dollar", "dollars", "each", "apiece", "per", "price", "€", "$"},
    "quantity": {"units", "unit", "pieces", "piece", "pcs", "items", "qty", "quantity", "x"},
    "days": {"day", "days", "week", "weeks", "delivery", "deliver", "delivered", "within", "lead"},
    "percent": {"%", "percent", "penalty", "late"},
}
_STALE = {"last", "previous", "previously", "earlier", "was", "were", "instead", "from", "not", "old", "before"}


@dataclass(frozen=True)
class Mention:
    """A number written in the text, with the words around it (lower case) and what they say it measures."""

    value: float
    before: tuple[str, ...]
    after: tuple[str, ...]
    currency: bool
    weeks: bool
    stale: bool


def _words_to_digits(text: str) -> str:
    """'four hundred and fifty units' -> '450 units' (a run of number words becomes one number)."""

    def value(match: re.Match[str]) -> str:
        total, current = 0, 0
        for word in re.split(r"[\s-]+", match.group(0)):
            if word in _UNITS:
                current += _UNITS[word]
            elif word == "hundred":
                current = max(current, 1) * 100
            elif word == "thousand":
                total, current = total + max(current, 1) * 1000, 0
        return str(total + current)

    return _NUMBER_RUN.sub(value, text)


def mentions(text: str) -> list[Mention]:
    """Every number in ``text`` (digits, '1,200', '1.5k', '$12.40', number words up to thousands)."""
    lowered = _words_to_digits(text.lower().replace("\u20ac", " € "))
    found: list[Mention] = []
    for match in _NUMBER.finditer(lowered):
        raw = match.group("num")
        if "," in raw and re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
            raw = raw.replace(",", "")
        else:
            raw = raw.replace(",", ".")
        value = float(raw) * (1000 if match.group("k") else 1)
        before = tuple(_WORD.findall(lowered[max(0, match.start() - 40) : match.start()]))[-_WINDOW:]
        after = tuple(_WORD.findall(lowered[match.end() : match.end() + 40]))[:_WINDOW]
        currency = bool(match.group("cur")) or bool(after and after[0] in {"eur", "euro", "euros", "usd", "€", "$"})
        weeks = bool(after and after[0] in {"week", "weeks", "wk", "wks"})
        stale = bool(set(before) & _STALE)
        found.append(Mention(value * (7 if weeks else 1), before, after, currency, weeks, stale))
    return found


def issue_kind(issue: Issue) -> str:
    """What an issue measures, from its name and unit: 'price', 'quantity', 'days', 'percent' or 'other'."""
    words = set(re.split(r"[_\s/]+", f"{issue.name} {issue.unit}".lower()))
    if words & {"price", "tariff", "cost", "eur", "usd", "fee"}:
        return "price"
    if words & {"quantity", "qty", "units", "volume", "amount"}:
        return "quantity"
    if words & {"day", "days", "delivery", "wait", "lead"}:
        return "days"
    if words & {"%", "penalty", "percent"}:
        return "percent"
    return "other"


def snap(value: float, issue: Issue) -> float | None:
    """The grid value ``value`` stands for (exact, or within ``SNAP_TOLERANCE`` of it), or None when none is."""
    nearest = min(issue.values, key=lambda g: abs(g - value))
    return nearest if abs(nearest - value) <= SNAP_TOLERANCE * max(abs(nearest), 1e-9) else None


def _fits(mention: Mention, issue: Issue, kind: str) -> int:
    """How well the words around a number say it measures ``issue`` (0: not at all)."""
    near = set(mention.after[:2]) | set(mention.before[-2:])
    name_words = set(issue.name.split("_")) | ({issue.unit.lower()} if issue.unit else set())
    score = 3 * len(near & name_words)
    if kind == "price":
        score += 3 * mention.currency + len(near & _KIND_WORDS["price"])
    elif kind == "days":
        score += 3 * mention.weeks + len(near & _KIND_WORDS["days"])
    elif kind in _KIND_WORDS:
        score += len(near & _KIND_WORDS[kind])
    if kind != "price" and mention.currency:
        score -= 3
    return score


def parse_offer_rules(text: str, issues: list[Issue]) -> dict[str, float | None]:
    """Read an offer with rules: each issue takes the best-fitting fresh number that snaps onto its grid.

    A number is fitted by the words next to it (units, currency, 'each', 'days', 'weeks', the issue's name);
    numbers after 'last', 'previous', 'was', 'instead of' and the like count only when nothing fresher fits.
    Returns issue name -> grid value, or None when no number in the text fits.
    """
    found = mentions(text)
    taken: set[int] = set()
    result: dict[str, float | None] = {}
    kinds = {issue.name: issue_kind(issue) for issue in issues}
    for issue in sorted(issues, key=lambda i: kinds[i.name] == "other"):
        best: tuple[int, int, int] | None = None
        for index, mention in enumerate(found):
            if index in taken or snap(mention.value, issue) is None:
                continue
            rank = (_fits(mention, issue, kinds[issue.name]), 0 if mention.stale else 1, -index)
            if rank[0] > 0 and (best is None or rank > best):
                best = rank
        if best is None:
            result[issue.name] = None
            continue
        index = -best[2]
        taken.add(index)
        result[issue.name] = snap(found[index].value, issue)
    return result


def read_terms(
    text: str, kinds: tuple[str, ...] = ("price", "quantity", "days"), words: Mapping[str, set[str]] | None = None
) -> dict[str, float | None]:
    """Price, quantity and days written in ``text`` without a grid: for each kind, the best-fitting number (fresh
    numbers first); ``words`` adds words that mark a kind (e.g. product names for quantities). Used where values
    are not on a grid (an order, a situation to decide on)."""
    extra = words or {}
    found = mentions(text)
    taken: set[int] = set()
    result: dict[str, float | None] = {}
    for kind in kinds:
        issue = Issue(name=kind, values=[0.0, 1.0])
        ranked = [
            ((_fits(m, issue, kind) + len(set(m.after[:2]) & extra.get(kind, set())), 0 if m.stale else 1, -i), i)
            for i, m in enumerate(found)
            if i not in taken
        ]
        ranked = [r for r in ranked if r[0][0] > 0]
        if not ranked:
            result[kind] = None
            continue
        index = max(ranked)[1]
        taken.add(index)
        result[kind] = found[index].value
    return result
