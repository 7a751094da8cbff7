"""Valid by construction: every output a schema's grammar admits is valid JSON that obeys the schema.

Model-free tests read the GBNF with a small matcher and sampler written here (llama.cpp's grammar engine needs a
vocabulary); the ``model`` tests load the bundled GGUF for llama.cpp's own grammar parser and for many sampled
generations, each of which must parse and validate.
"""

from __future__ import annotations

import json
import random
import re
import time
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
import jsonschema
import numpy as np
import pytest
from pydantic import BaseModel, Field

from agents.llm.constraints import GrammarConstraint, schema_grammar, schema_to_gbnf
from agents.llm.engine import Engine
from agents.llm.jobs import Job
from agents.llm.native import ContextConfig, NativeModel
from agents.llm.sampling import TokenSampler

# ---- a GBNF reader, matcher and sampler (the subset llama.cpp parses; escapes as strict as its parser) ----
_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]"}
Item = tuple[str, Any, str]  # kind ("lit", "cls", "ref", "grp"), payload, operator ("", "?", "*", "+")
Alt = list[list[Item]]


class _Reader:
    def __init__(self, src: str) -> None:
        self.src, self.i = src, 0

    def char(self) -> int:
        c = self.src[self.i]
        if c != "\\":
            self.i += 1
            return ord(c)
        e = self.src[self.i + 1]
        if e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            self.i += 2 + n
            return int(self.src[self.i - n : self.i], 16)
        if e not in _ESCAPES:
            raise ValueError(f"llama.cpp knows no escape \\{e}")
        self.i += 2
        return ord(_ESCAPES[e])

    def ws(self) -> None:
        while self.i < len(self.src) and self.src[self.i] == " ":
            self.i += 1

    def alt(self) -> Alt:
        seqs = [self.seq()]
        while self.i < len(self.src) and self.src[self.i] == "|":
            self.i += 1
            seqs.append(self.seq())
        return seqs

    def seq(self) -> list[Item]:
        items: list[Item] = []
        self.ws()
        while self.i < len(self.src) and self.src[self.i] not in "|)":
            items.append(self.item())
            self.ws()
        return items

    def item(self) -> Item:
        c = self.src[self.i]
        if c == '"':
            self.i += 1
            text = ""
            while self.src[self.i] != '"':
                text += chr(self.char())
            self.i += 1
            kind, payload = "lit", text
        elif c == "[":
            self.i += 1
            negated = self.src[self.i] == "^"
            self.i += negated
            ranges = []
            while self.src[self.i] != "]":
                lo = self.char()
                hi = lo
                if self.src[self.i] == "-" and self.src[self.i + 1] != "]":
                    self.i += 1
                    hi = self.char()
                ranges.append((lo, hi))
            self.i += 1
            kind, payload = "cls", (negated, ranges)
        elif c == "(":
            self.i += 1
            payload = self.alt()
            assert self.src[self.i] == ")", self.src[self.i :]
            self.i += 1
            kind = "grp"
        else:
            start = self.i
            while self.i < len(self.src) and (self.src[self.i].isalnum() or self.src[self.i] == "-"):
                self.i += 1
            assert self.i > start, f"unexpected {c!r} in {self.src}"
            kind, payload = "ref", self.src[start : self.i]
        op = ""
        if self.i < len(self.src) and self.src[self.i] in "?*+":
            op = self.src[self.i]
            self.i += 1
        return kind, payload, op


def _in_class(payload: tuple[bool, list[tuple[int, int]]], cp: int) -> bool:
    negated, ranges = payload
    return any(lo <= cp <= hi for lo, hi in ranges) != negated


class Grammar:
    """Parsed GBNF: ``matches(text)`` (does ``root`` derive exactly ``text``) and ``sample(rng)``."""

    def __init__(self, gbnf: str) -> None:
        self.rules: dict[str, Alt] = {}
        for line in gbnf.splitlines():
            name, sep, body = line.partition(" ::= ")
            assert sep and name not in self.rules, line
            reader = _Reader(body)
            self.rules[name] = reader.alt()
            assert reader.i == len(body), f"unparsed tail in {line!r}"
        assert "root" in self.rules
        self._heights = self._min_heights()

    def refs(self, alt: Alt) -> set[str]:
        out: set[str] = set()
        for seq in alt:
            for kind, payload, _ in seq:
                out |= {payload} if kind == "ref" else self.refs(payload) if kind == "grp" else set()
        return out

    def matches(self, text: str) -> bool:
        memo: dict[tuple[str, int], frozenset[int]] = {}

        def atom(item: Item, pos: int) -> frozenset[int]:
            kind, payload, _ = item
            if kind == "lit":
                return frozenset({pos + len(payload)}) if text.startswith(payload, pos) else frozenset()
            if kind == "cls":
                return frozenset({pos + 1}) if pos < len(text) and _in_class(payload, ord(text[pos])) else frozenset()
            if kind == "grp":
                return alt(payload, pos)
            if (payload, pos) not in memo:
                memo[(payload, pos)] = frozenset()
                memo[(payload, pos)] = alt(self.rules[payload], pos)
            return memo[(payload, pos)]

        def closure(item: Item, starts: set[int]) -> set[int]:
            seen, todo = set(starts), list(starts)
            while todo:
                for q in atom(item, todo.pop()):
                    if q not in seen:
                        seen.add(q)
                        todo.append(q)
            return seen

        def alt(a: Alt, pos: int) -> frozenset[int]:
            out: set[int] = set()
            for seq in a:
                cur = {pos}
                for item in seq:
                    op = item[2]
                    nxt: set[int] = set()
                    for p in cur:
                        first = set(atom(item, p))
                        nxt |= {p} | first if op == "?" else closure(item, {p}) if op == "*" else first
                        if op == "+":
                            nxt |= closure(item, first)
                    cur = nxt
                    if not cur:
                        break
                out |= cur
            return frozenset(out)

        return len(text) in alt(self.rules["root"], 0)

    def _min_heights(self) -> dict[str, int]:
        heights = dict.fromkeys(self.rules, 10**9)

        def alt_h(a: Alt) -> int:
            return min(max([item_h(it) for it in seq], default=0) for seq in a)

        def item_h(item: Item) -> int:
            kind, payload, op = item
            if op in ("?", "*"):
                return 0
            return heights[payload] + 1 if kind == "ref" else alt_h(payload) if kind == "grp" else 0

        for _ in range(len(self.rules) + 1):
            for name, a in self.rules.items():
                heights[name] = min(heights[name], alt_h(a))
        return heights

    def sample(self, rng: random.Random) -> str:
        """One random sentence; characters of negated classes are drawn mostly from JSON's troublemakers."""
        out: list[str] = []

        def alt(a: Alt, depth: int) -> None:
            if depth > 40:

                def height(s: list[Item]) -> int:
                    return max([self._heights.get(p, 0) if k == "ref" else 0 for k, p, o in s if not o], default=0)

                seq = min(a, key=height)
            else:
                seq = rng.choice(a)
            for item in seq:
                kind, payload, op = item
                n = 1
                if op == "?":
                    n = 0 if depth > 40 else rng.randint(0, 1)
                elif op in ("*", "+"):
                    n = (op == "+") + (0 if depth > 40 else min(int(rng.expovariate(0.5)), 12))
                for _ in range(n):
                    atom(item, depth)

        def atom(item: Item, depth: int) -> None:
            kind, payload, _ = item
            if kind == "lit":
                out.append(payload)
            elif kind == "cls":
                out.append(chr(_class_char(rng, payload)))
            elif kind == "grp":
                alt(payload, depth + 1)
            else:
                alt(self.rules[payload], depth + 1)

        alt(self.rules["root"], 0)
        return "".join(out)


_TRICKY = [0x22, 0x5C, 0x0A, 0x00, 0x1F, 0x09, 0x7F, 0x2F, 0xE9, 0x2028, 0xD800, 0x1F600, 0x20, 0x5D, 0x7D]


def _class_char(rng: random.Random, payload: tuple[bool, list[tuple[int, int]]]) -> int:
    negated, ranges = payload
    if negated or rng.random() < 0.3:
        for cp in rng.sample(_TRICKY, len(_TRICKY)):
            if _in_class(payload, cp):
                return cp
    if negated:
        while not _in_class(payload, cp := rng.randint(0x20, 0x2FFF)):
            pass
        return cp
    lo, hi = rng.choice(ranges)
    return rng.randint(lo, hi)


def _grammar(schema: dict[str, Any]) -> Grammar:
    return Grammar(schema_to_gbnf(json.dumps(schema)))


# ---- schemas ----------------------------------------------------------------------------------------------
class Verdict(BaseModel):
    passed: bool
    reason: str


class Line(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")
    quantity: int = Field(ge=1, le=999)
    unit_price: float = Field(ge=0, le=10_000)


class Order(BaseModel):
    customer: str = Field(min_length=2, max_length=30)
    lines: list[Line] = Field(min_length=1, max_length=4)
    note: str | None = Field(default=None, max_length=20)
    priority: Literal["low", "normal", "high"]
    department: str = Field(pattern="^(sales|support|billing)$")


class Tree(BaseModel):
    label: str = Field(max_length=6)
    children: list[Tree] = Field(default_factory=list, max_length=2)


class Mixed(BaseModel):
    counts: dict[str, int] = Field(max_length=3)
    triple: tuple[str, int, bool]
    ratio: float = Field(gt=0, lt=1)
    delta: int = Field(gt=-10, lt=10)
    floor: int = Field(ge=100)
    debt: float = Field(le=0)
    maybe: str | None = Field(max_length=5)


TRICKY_ENUM = ['say "hi"', "C:\\path\\n", "two\nlines", "tab\there", "café ☕", ""]
SCHEMAS: dict[str, tuple[dict[str, Any], type[BaseModel] | None]] = {
    "verdict": (Verdict.model_json_schema(), Verdict),
    "order": (Order.model_json_schema(), Order),
    "tree": (Tree.model_json_schema(), Tree),
    "mixed": (Mixed.model_json_schema(), Mixed),
    "enums": (
        {
            "type": "object",
            "properties": {
                "text": {"enum": TRICKY_ENUM},
                "any": {"enum": [1, 2.5, None, True, {"a": [1, "x\u0001"]}]},
                "fixed": {"const": 'a\\"b'},
            },
            "required": ["text", "any", "fixed"],
        },
        None,
    ),
    "lengths": (
        {
            "type": "object",
            "properties": {
                "long": {"type": "string", "minLength": 20, "maxLength": 300},
                "flags": {"type": "array", "items": {"type": "boolean"}, "minItems": 18, "maxItems": 40},
                "id": {"type": "string", "format": "uuid"},
            },
            "required": ["long", "flags", "id"],
        },
        None,
    ),
    "patterns": (
        {
            "type": "object",
            "properties": {
                "quoted": {"type": "string", "pattern": 'a"b\\\\c'},
                "no_comma": {"type": "string", "pattern": "^[^,]{2,5}$"},
                "amount": {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
                "spaced": {"type": "string", "pattern": r"^\w+\s\S$"},
            },
            "required": ["quoted", "no_comma", "amount", "spaced"],
        },
        None,
    ),
    "any": ({"type": "object", "properties": {"x": {}, "y": {"type": ["string", "null"], "maxLength": 3}}}, None),
}


class Shipment(BaseModel):
    carrier: str = Field(max_length=24)
    pallets: list[int] = Field(max_length=3)
    city: str = Field(max_length=16)
    zip: str = Field(pattern=r"^\d{5}$")


class Readings(BaseModel):
    ratio: float = Field(gt=0, lt=1)
    delta: int = Field(gt=-10, lt=10)
    debt: float = Field(ge=-1000, le=0)
    score: int = Field(ge=0, le=100)
    triple: tuple[Annotated[str, Field(max_length=8)], Annotated[int, Field(ge=-3, le=3)], bool]
    flag: bool | None


class BoundedVerdict(BaseModel):
    passed: bool
    reason: str = Field(max_length=40)


MACHINES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "load": {"type": "integer", "minimum": 0, "maximum": 100},
        },
        "required": ["name", "load"],
    },
    "minItems": 1,
    "maxItems": 3,
}
# for the model: every schema bounds its output (strings, arrays, numbers, no recursion); prompts show the format
BOUNDED: dict[str, tuple[str, dict[str, Any], type[BaseModel] | None]] = {
    "verdict": (
        'Did the pump pass its test at 12 bar? Answer in one line of JSON like {"passed": true, "reason": "held"}:',
        BoundedVerdict.model_json_schema(),
        BoundedVerdict,
    ),
    "order": (
        "ACME wants 5 GEA-1234 at 9.5 and 2 PMP-0042 at 120, urgent, for sales. One line of JSON like "
        '{"customer": "X", "lines": [{"sku": "ABC-0001", "quantity": 1, "unit_price": 2.5}], "note": null, '
        '"priority": "low", "department": "support"}:',
        Order.model_json_schema(),
        Order,
    ),
    "shipment": (
        'Ship 40 pallets of steel to Hamburg. One line of JSON like {"carrier": "X", "pallets": [10], '
        '"city": "Y", "zip": "12345"}:',
        Shipment.model_json_schema(),
        Shipment,
    ),
    "readings": (
        'Today\'s shift figures, in one line of JSON like {"ratio": 0.5, "delta": 1, "debt": -3.5, "score": 80, '
        '"triple": ["ok", 1, true], "flag": null}:',
        Readings.model_json_schema(),
        Readings,
    ),
    "enums": (
        'Pick a message, in one line of JSON like {"text": "", "any": 1, "fixed": "a\\\\\\"b"}:',
        SCHEMAS["enums"][0],
        None,
    ),
    "machines": (
        "List the plant's machines with their load in percent, in one line of JSON like "
        '[{"name": "press", "load": 50}]:',
        MACHINES,
        None,
    ),
}


def _validate(text: str, schema: dict[str, Any], model: type[BaseModel] | None) -> None:
    value = json.loads(text)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.Draft202012Validator(schema, format_checker=checker).validate(value)
    if model is not None:
        model.model_validate_json(text)  # what SkillContext.generate does: stricter about lone surrogates


# ---- model-free -------------------------------------------------------------------------------------------
def test_a_newline_inside_a_string_is_refused() -> None:
    """The issue's two-field skill: raw control characters never fit inside a string, escaped ones do."""
    grammar = _grammar(Verdict.model_json_schema())
    assert grammar.matches('{"passed": false, "reason": "two\\nlines\\t\\u001f"}')
    for bad in ("\n", "\t", "\x00", "\x1f", "\r"):
        assert not grammar.matches(f'{{"passed": false, "reason": "a{bad}b"}}'), repr(bad)


@pytest.mark.parametrize(
    "body", ['"\\x41"', '"\\\'"', '"a"b"', '"a\\"', '"\\ud800"', '"\\udc00\\ud800"', '"\\ud83d"', '"\\u12"']
)
def test_strings_hold_only_json_escapes_and_whole_surrogate_pairs(body: str) -> None:
    grammar = _grammar(Verdict.model_json_schema())
    assert not grammar.matches(f'{{"passed": true, "reason": {body}}}')
    assert grammar.matches('{"passed": true, "reason": "\\ud83d\\ude00 \\u00e9 \\/ \\\\ \\" é 😀"}')


def test_enum_and_const_values_are_spelled_as_json() -> None:
    grammar = _grammar(SCHEMAS["enums"][0])
    for text in TRICKY_ENUM:
        doc = {"text": text, "any": 2.5, "fixed": 'a\\"b'}
        assert grammar.matches(json.dumps(doc, ensure_ascii=False)), doc
    assert not grammar.matches('{"text": "two\nlines", "any": 1, "fixed": "a\\\\\\"b"}')


@pytest.mark.parametrize(("lo", "hi"), [(1, 12), (-37, 5), (0, 0), (-120, -7), (95, 1040), (None, -3), (7, None)])
def test_integer_bounds_admit_exactly_the_range(lo: int | None, hi: int | None) -> None:
    schema = {
        "type": "integer",
        **({"minimum": lo} if lo is not None else {}),
        **({"maximum": hi} if hi is not None else {}),
    }
    grammar = _grammar(schema)
    centre = lo if lo is not None else hi
    assert centre is not None
    for n in range(centre - 1200, centre + 1200):
        assert grammar.matches(str(n)) == ((lo is None or n >= lo) and (hi is None or n <= hi)), n
    assert not grammar.matches("007") and not grammar.matches("1e2")


@pytest.mark.parametrize(
    ("bounds", "inside", "outside"),
    [
        ({"minimum": 0, "maximum": 1}, ["0", "0.5", "1", "1.000", "0.999"], ["1.01", "-0.5", "2", "1e0"]),
        ({"exclusiveMinimum": 0, "exclusiveMaximum": 1}, ["0.5", "0.001", "0.990"], ["0", "0.0", "1", "-0.1"]),
        ({"minimum": -2, "maximum": 3}, ["-2", "-1.5", "-0.25", "0", "3.0", "2.75"], ["-2.01", "3.5", "-3"]),
        ({"maximum": 0}, ["0", "-12.5", "-0.25"], ["0.1", "7"]),
        ({"exclusiveMaximum": 0}, ["-0.1", "-4"], ["0", "-0", "-0.0", "0.5"]),
    ],
)
def test_number_bounds_admit_only_numbers_in_range(
    bounds: dict[str, int], inside: list[str], outside: list[str]
) -> None:
    schema = {"type": "number", **bounds}
    assert schema_grammar(json.dumps(schema)).unenforced == ()
    grammar = _grammar(schema)
    for text in inside:
        assert grammar.matches(text), text
    for text in outside:
        assert not grammar.matches(text), text


@pytest.mark.parametrize(("lo", "hi"), [(0, 5), (3, 17), (20, 300), (0, 2000), (1500, 5000)])
def test_string_lengths_count_characters_not_escapes(lo: int, hi: int) -> None:
    grammar = _grammar({"type": "string", "minLength": lo, "maxLength": hi})
    for n in sorted({lo, hi, max(lo - 1, 0), hi + 1, (lo + hi) // 2}):
        for ascii_only in (True, False):  # "\u00e9" and "é" are one character each
            assert grammar.matches(json.dumps("é" * n, ensure_ascii=ascii_only)) == (lo <= n <= hi), n
    if hi >= 3:
        assert grammar.matches(json.dumps('\n"\\' + "x" * max(lo - 3, 0)))


def test_array_bounds() -> None:
    grammar = _grammar({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 40})
    for n in range(45):
        assert grammar.matches(json.dumps(list(range(n)))) == (2 <= n <= 40), n


def test_patterns_are_translated_into_escaped_json() -> None:
    grammar = _grammar({"type": "string", "pattern": "^(sales|support|billing)$"})
    assert [w for w in ("sales", "support", "billing", "sale", "salesx", "") if grammar.matches(f'"{w}"')] == [
        "sales",
        "support",
        "billing",
    ]
    no_comma = _grammar({"type": "string", "pattern": "^[^,]+$"})
    assert no_comma.matches('"a\\"b\\\\"') and not no_comma.matches('"a"b"') and not no_comma.matches('"a,b"')


PATTERNS = [
    ("^(sales|support|billing)$", "support"),
    (r"^[A-Z]{3}-\d{4}$", "GEA-1234"),
    ('a"b\\\\c', 'xa"b\\cy'),
    ("^[^,]{2,5}$", 'a"\\b'),
    (r"^\d+(\.\d{1,2})?$", "12.5"),
    (r"^\w+\s\S$", "ab\tc"),
    (r"^[\x00-\x1f]{1,3}$", "\x00\n"),
    ('^[\n\t"\\\\]+$', '\n"\\'),
    (r"^.{0,3}x$", "é😀x"),
    (r"^(?:ab|c)*d?$", "abcabd"),
    (r"^(?P<year>\d{4})-(?P<m>0[1-9]|1[0-2])$", "2024-11"),
    (r"^[-a-z]+$", "a-b"),
    (r"^[]a]+$", "]a]"),
    (r"^a{2,}b{,2}$", "aaab"),
    (r"^[^\x00-\x7f]+$", "é☕"),
    (r"^\D\W$", "a "),
]


@pytest.mark.parametrize(("pattern", "example"), PATTERNS)
def test_pattern_grammars_admit_only_matching_strings(pattern: str, example: str) -> None:
    schema = {"type": "string", "pattern": pattern}
    assert schema_grammar(json.dumps(schema)).unenforced == ()
    grammar = _grammar(schema)
    assert grammar.matches(json.dumps(example, ensure_ascii=False)), example
    rng = random.Random(pattern)
    for _ in range(200):
        text = grammar.sample(rng)
        assert re.search(pattern, json.loads(text)), text


def test_unenforced_keywords_are_listed() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "step": {"type": "integer", "multipleOf": 5},
            "half": {"type": "number", "minimum": 0.5},
            "when": {"type": "string", "format": "email"},
            "code": {"type": "string", "pattern": "^(?=a)a$"},
            "pick": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        },
    }
    notes = schema_grammar(json.dumps(schema)).unenforced
    for path in (
        "tags: uniqueItems",
        "step: multipleOf",
        "half: minimum",
        "when: format",
        "code: pattern",
        "pick: oneOf",
    ):
        assert any(note.startswith(f"/properties/{path}") for note in notes), (path, notes)
    for name, (schema, _) in SCHEMAS.items():
        assert schema_grammar(json.dumps(schema)).unenforced == (), name


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_sentence_of_the_grammar_is_valid(name: str) -> None:
    """Random walks through the grammar (drawing quotes, backslashes, controls, surrogates where a class admits
    them): each sentence parses and validates."""
    schema, model = SCHEMAS[name]
    grammar = _grammar(schema)
    rng = random.Random(name)
    for _ in range(300):
        text = grammar.sample(rng)
        try:
            _validate(text, schema, model)
        except Exception as exc:
            raise AssertionError(f"{name}: {text!r}") from exc


# ---- with the bundled model -------------------------------------------------------------------------------
_CONTROL_BYTES = bytes(range(0x20))


@pytest.mark.model
def test_llama_cpp_refuses_every_token_with_a_control_character_inside_a_string(weights: NativeModel) -> None:
    """llama.cpp's own grammar engine, over the whole vocabulary, mid-string."""
    constraint = GrammarConstraint.from_schema(weights, Verdict.model_json_schema())
    try:
        for token in weights.tokenize('{"passed": false, "reason": "ab', add_bos=False, special=False):
            assert constraint.check(np.asarray([token]))[0]
            constraint.accept(token)
        allowed = np.flatnonzero(constraint.full_mask())
        assert len(allowed) > 1000
        pieces = [weights.piece(int(t)) for t in allowed]
        assert not [p for p in pieces if any(b in _CONTROL_BYTES for b in p)]
    finally:
        constraint.close()


@pytest.mark.model
@pytest.mark.parametrize("raw", [b"\xed\xa0\x80", b"\xf4\x90\x80\x80"], ids=["surrogate", "past-10ffff"])
def test_llama_cpp_refuses_utf8_that_is_no_character(weights: NativeModel, raw: bytes) -> None:
    """Byte tokens spelling a surrogate or a code point past U+10FFFF (text would decode as U+FFFD each)."""
    byte_token = {weights.piece(t): t for t in range(4096) if len(weights.piece(t)) == 1}
    constraint = GrammarConstraint.from_schema(weights, Verdict.model_json_schema())
    try:
        for token in weights.tokenize('{"passed": false, "reason": "ab', add_bos=False, special=False):
            constraint.accept(token)
        allowed = []
        for byte in raw:
            allowed.append(bool(constraint.check(np.asarray([byte_token[bytes([byte])]]))[0]))
            if not allowed[-1]:
                break
            constraint.accept(byte_token[bytes([byte])])
        assert allowed[0] and not allowed[-1], allowed  # the lead byte may start a character; no more
    finally:
        constraint.close()


@pytest.mark.model
def test_llama_cpp_parses_every_grammar(weights: NativeModel) -> None:
    schemas = [schema for schema, _ in SCHEMAS.values()] + [schema for _, schema, _ in BOUNDED.values()]
    for schema in schemas:
        GrammarConstraint.from_schema(weights, schema).close()  # raises ValueError if llama.cpp rejects it


GENERATIONS_PER_SCHEMA = 4
TEMPERATURES = (0.6, 1.0, 1.4)
LIMIT_S = 300.0  # ~25 s alone; generous for a machine shared with other work


@pytest.mark.model
@pytest.mark.anyio
@pytest.mark.timeout(600)
async def test_sampled_generations_always_parse_and_validate(weights: NativeModel) -> None:
    """Many constrained generations at temperature > 0 (varied seeds, batched): every output is complete,
    parses and validates. Each runs until its JSON value closes; max_tokens lies far above any output seen (the
    longest of 300 was 206 tokens), so a reply cut short fails the test. One thread: on a shared 2-core machine
    llama.cpp's 2-thread decode can stall for seconds per step."""
    engine = Engine(weights, ContextConfig(n_ctx=8192, n_seq=16, n_batch=512, n_threads=1), max_queue=512)
    jobs: list[tuple[str, Job]] = []
    started = time.perf_counter()
    try:
        for name, (prompt, schema, _) in BOUNDED.items():
            tokens = weights.tokenize(prompt)
            assert schema_grammar(json.dumps(schema)).unenforced == (), name
            for i in range(GENERATIONS_PER_SCHEMA):
                sampler = TokenSampler(temperature=TEMPERATURES[i % len(TEMPERATURES)], seed=1000 + i)
                constraint = GrammarConstraint.from_schema(weights, schema)
                job = Job(prompt=tokens, max_tokens=1024, sampler=sampler, constraint=constraint)
                jobs.append((name, engine.submit(job)))
        with anyio.fail_after(LIMIT_S):
            for _, job in jobs:
                await anyio.to_thread.run_sync(job.done.wait, abandon_on_cancel=True)
    finally:
        engine.close()
    elapsed = time.perf_counter() - started
    n_tokens = 0
    for name, job in jobs:
        assert job.result is not None, (name, job.error)
        assert job.result.stop_reason == "stop", (name, job.result.text)
        n_tokens += len(job.result.tokens)
        _, schema, model = BOUNDED[name]
        try:
            _validate(job.result.text, schema, model)
        except Exception as exc:
            raise AssertionError(f"{name}: {job.result.text!r}") from exc
    print(f"\n{len(jobs)} generations over {len(BOUNDED)} schemas, {n_tokens} tokens, {elapsed:.1f} s")
