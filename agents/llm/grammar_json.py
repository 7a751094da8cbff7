"""The fixed GBNF rules of JSON (RFC 8259) and JSON literals, for ``agents.llm.grammar``.

Strings hold no raw control character, unescaped quote or backslash, surrogate or code point past U+10FFFF;
escapes are JSON's, and a ``\\u`` high surrogate is always followed by a low one.
"""

from __future__ import annotations

import json
from typing import Any

from agents.llm.grammar_numbers import DIGITS, optional_chain

__all__ = ["FORMATS", "PRIMITIVES", "json_literal"]

_HEX = "[0-9a-fA-F]"
PRIMITIVES: dict[str, tuple[str, tuple[str, ...]]] = {
    # any code point but controls, quote, backslash, surrogates (llama.cpp decodes UTF-8-encoded ones) and
    # those past U+10FFFF; or an escape JSON knows
    "char": (
        r'[\x20-\x21\x23-\x5B\x5D-\uD7FF\uE000-\U0010FFFF] | "\\" ["\\/bfnrt] | "\\u" utf16',
        ("utf16",),
    ),
    # a non-surrogate code unit, or a high surrogate followed by a low one (a lone surrogate is not text)
    "utf16": (
        f"[0-9a-cA-Ce-fE-F] {_HEX} {_HEX} {_HEX} | [dD] [0-7] {_HEX} {_HEX}"
        f' | [dD] [89abAB] {_HEX} {_HEX} "\\\\u" [dD] [c-fC-F] {_HEX} {_HEX}',
        (),
    ),
    "string": (r'"\"" char* "\""', ("char",)),
    "integral-part": ("[0-9] | [1-9] " + optional_chain("[0-9]", DIGITS - 1), ()),
    "decimal-part": ("[0-9] " + optional_chain("[0-9]", DIGITS - 1), ()),
    # exponents of at most two digits: a float never overflows to infinity
    "number": (
        '"-"? integral-part ("." decimal-part)? ([eE] [-+]? [0-9] [0-9]?)?',
        ("integral-part", "decimal-part"),
    ),
    "integer": ('"-"? integral-part', ("integral-part",)),
    "boolean": ('"true" | "false"', ()),
    "null": ('"null"', ()),
    "value": (
        "object | array | string | number | boolean | null",
        ("object", "array", "string", "number", "boolean", "null"),
    ),
    "object": (
        '"{" (string ": " value (", " string ": " value)*)? "}"',
        ("string", "value"),
    ),
    "array": ('"[" (value (", " value)*)? "]"', ("value",)),
    "date": ('[0-9] [0-9] [0-9] [0-9] "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [1-2] [0-9] | "3" [0-1])', ()),
    "time": (
        '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9] [0-9] [0-9])?'
        ' ("Z" | ("+" | "-") ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])',
        (),
    ),
    "date-time": ('date "T" time', ("date", "time")),
    "uuid": (' "-" '.join(" ".join([_HEX] * n) for n in (8, 4, 4, 4, 12)), ()),
}
FORMATS = {
    "date": "date",
    "time": "time",
    "date-time": "date-time",
    "uuid": "uuid",
    **{f"uuid{i}": "uuid" for i in range(1, 6)},
}


def json_literal(value: Any) -> str:
    """GBNF literal spelling ``value`` as JSON (control characters, quotes and backslashes escaped)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
