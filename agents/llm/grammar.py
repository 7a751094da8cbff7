"""JSON schema to GBNF: every sentence of the grammar is valid JSON, and obeys the keywords the grammar encodes.

Strings never hold a raw control character (U+0000-U+001F), an unescaped quote or backslash, an escape JSON
lacks or a lone UTF-16 surrogate. Encoded: ``type``, ``properties``/``required``/``additionalProperties``,
``items``/``prefixItems``/``minItems``/``maxItems``, ``minLength``/``maxLength``, ``enum``/``const``, integer
bounds (exact), number bounds (exact when integral), ``pattern`` (a common subset), ``format`` date, time,
date-time, uuid, ``anyOf``/``oneOf`` (as alternatives), ``allOf`` (merged), local ``$ref``. Whatever a schema
asks beyond that is listed in ``JsonGrammar.unenforced`` and must be checked after decoding. The grammar may
admit less than the schema (no exponents, at most 16 digits, declared properties in order, no extra keys
unless ``additionalProperties`` allows them, one layout: ``json.dumps``'s ``", "`` and ``": "`` and no other
whitespace, so punctuation and keys are forced text for jump-forward), never more for what it encodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agents.llm.grammar_json import FORMATS, PRIMITIVES, json_literal
from agents.llm.grammar_numbers import int_range, number_range, optional_chain
from agents.llm.grammar_regex import PatternUnsupported, pattern_to_gbnf

__all__ = ["JsonGrammar", "build_grammar"]

_ANNOTATIONS = {
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$schema", "$id",
    "$comment", "$defs", "definitions", "contentEncoding", "contentMediaType", "discriminator",
}  # fmt: skip
_BY_TYPE = {
    "string": {"minLength", "maxLength", "pattern", "format"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "object": {"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
               "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "unevaluatedProperties"},
    "array": {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains",
              "maxContains", "unevaluatedItems", "additionalItems"},
}  # fmt: skip
_BY_TYPE["integer"] = _BY_TYPE["number"]
_INLINE = 16  # repetition counts up to this are nested optionals; larger ones use blocks of 2^k
_NAME_RE = re.compile(r"[^a-zA-Z0-9-]+")
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "integer": int, "number": (int, float), "boolean": bool, "null": type(None), "object": dict,
    "array": list,
}  # fmt: skip


@dataclass(frozen=True)
class JsonGrammar:
    """GBNF text (start rule ``root``) and the schema keywords it does not enforce (``"/path: keyword"``)."""

    gbnf: str
    unenforced: tuple[str, ...]


def _wrap(*parts: str) -> str:
    """GBNF parts in sequence, empty ones left out."""
    return " ".join(p for p in parts if p)


def _is_type(value: Any, type_name: str) -> bool:
    if type_name == "integer":
        return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    if type_name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[type_name])


class _Builder:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.rules: dict[str, str] = {}
        self.names: dict[str, str] = {}  # body -> rule name, so equal rules are written once
        self.refs: dict[str, str] = {}
        self.notes: list[str] = []

    # rules
    def primitive(self, name: str) -> str:
        if name not in self.rules:
            body, deps = PRIMITIVES[name]
            self.rules[name] = body
            for dep in deps:
                self.primitive(dep)
        return name

    def reserve(self, name: str) -> str:
        base = _NAME_RE.sub("-", name).strip("-") or "rule"
        if base in PRIMITIVES or base == "root":
            base += "-"
        key, i = base, 0
        while key in self.rules:
            i += 1
            key = f"{base}{i}"
        self.rules[key] = ""
        return key

    def rule(self, name: str, body: str) -> str:
        if re.fullmatch(r"[a-zA-Z0-9-]+", body):
            return body  # already a rule name: no alias
        if body in self.names:
            return self.names[body]
        key = self.reserve(name)
        self.rules[key] = body
        self.names[body] = key
        return key

    def note(self, path: str, what: str) -> None:
        self.notes.append(f"{path or '/'}: {what}")

    def check_keys(self, schema: dict[str, Any], path: str, handled: set[str], type_name: str | None) -> None:
        other = set().union(*(keys for t, keys in _BY_TYPE.items() if t != type_name)) - _BY_TYPE.get(
            type_name or "", set()
        )
        for key in schema:
            if (
                key not in handled
                and key not in _ANNOTATIONS
                and key != "type"
                and (type_name is None or key not in other)
            ):
                self.note(path, key)

    # repetition
    def block(self, unit: str, size: int, base: str) -> str:
        if size == 1:
            return unit
        half = self.block(unit, size // 2, base)
        return self.rule(f"{base}-x{size}", f"{half} {half}")

    def up_to(self, unit: str, m: int, base: str) -> str:
        if m <= _INLINE:
            return optional_chain(unit, m)
        p = 1 << (m.bit_length() - 1)
        if m == 2 * p - 1:
            return " ".join(f"{self.block(unit, 1 << j, base)}?" for j in reversed(range(p.bit_length())))
        more = f"{self.block(unit, p, base)} {self.up_to(unit, m - p, base)}".strip()
        return self.rule(f"{base}-upto{m}", f"{self.up_to(unit, p - 1, base)} | {more}")

    def repeat(self, unit: str, lo: int, hi: int | None, base: str) -> str:
        """``unit`` (a rule name or a class) lo..hi times (hi None: unbounded)."""
        if lo <= _INLINE:
            fixed = " ".join([unit] * lo)
        else:
            fixed = " ".join(self.block(unit, 1 << j, base) for j in reversed(range(lo.bit_length())) if lo >> j & 1)
        rest = f"{unit}*" if hi is None else self.up_to(unit, hi - lo, base)
        return " ".join(x for x in (fixed, rest) if x)

    def separated(self, item: str, lo: int, hi: int | None, base: str) -> str:
        """``item (", " item)*`` with lo..hi items."""
        if hi == 0:
            return ""
        tail = ""
        if hi is None or hi > 1:
            more = self.rule(f"{base}-more", f'", " {item}')
            tail = self.repeat(more, max(lo - 1, 0), None if hi is None else hi - 1, base)
        return f"{item} {tail}".strip() if lo >= 1 else f"({item} {tail})?".replace(" )", ")")

    # schemas
    def visit(self, schema: Any, name: str, path: str) -> str:
        return self.rule(name or "root", self.expr(schema, name, path))

    def expr(self, schema: Any, name: str, path: str) -> str:
        if schema is True or schema == {}:
            return self.primitive("value")
        if not isinstance(schema, dict):
            raise ValueError(f"schema at {path or '/'} admits no value; the model could write nothing")
        sub = f"{name}-" if name else ""
        if "$ref" in schema:
            self.check_keys(schema, path, {"$ref"}, None)
            return self.ref(schema["$ref"])
        if "const" in schema or "enum" in schema:
            return self.literals(schema, path)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                self.check_keys(schema, path, {key}, None)
                if key == "oneOf" and len(schema[key]) > 1:
                    self.note(path, "oneOf (any branch admitted; exactly one is checked after decoding)")
                alts = [self.visit(s, f"{sub}{i}", f"{path}/{key}/{i}") for i, s in enumerate(schema[key])]
                return " | ".join(dict.fromkeys(alts))
        if "allOf" in schema:
            return self.expr(self.merge(schema, path), name, path)
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(self.visit({**schema, "type": t}, f"{sub}{t}", path) for t in kind)
        kind = kind or self.infer(schema)
        if kind is None:
            self.check_keys(schema, path, set(), None)
            return self.primitive("value")
        if kind in ("boolean", "null"):
            self.check_keys(schema, path, set(), kind)
            return self.primitive(kind)
        build = {"object": self.obj, "array": self.array, "string": self.string, "integer": self.integer,
                 "number": self.number}.get(kind)  # fmt: skip
        if build is None:
            raise ValueError(f"unknown JSON type {kind!r} at {path or '/'}")
        return build(schema, name, path)

    @staticmethod
    def infer(schema: dict[str, Any]) -> str | None:
        for kind in ("object", "array", "string", "number"):
            if schema.keys() & _BY_TYPE[kind]:
                return kind
        return None

    def ref(self, ref: str) -> str:
        if ref in self.refs:
            return self.refs[ref]
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref ('#/...') is supported, not {ref!r}")
        target = self.root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or key not in target:
                raise ValueError(f"$ref {ref!r} points nowhere in the schema")
            target = target[key]
        name = self.reserve(ref.rsplit("/", 1)[-1])
        self.refs[ref] = name
        body = self.expr(target, name, ref[1:])
        self.rules[name] = body
        self.names.setdefault(body, name)
        return name

    def merge(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        parts = [self.root_of(p) for p in schema["allOf"]]
        if len(parts) > 1 or len(merged.keys() - _ANNOTATIONS) > 0:
            self.note(path, "allOf (merged: properties and required joined, other keywords of the first kept)")
        for part in parts:
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
                else:
                    merged.setdefault(key, value)
        return merged

    def root_of(self, schema: Any) -> dict[str, Any]:
        while isinstance(schema, dict) and "$ref" in schema and len(schema) == 1:
            target = self.root
            for part in filter(None, schema["$ref"][1:].split("/")):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = target
        return schema if isinstance(schema, dict) else {}

    def literals(self, schema: dict[str, Any], path: str) -> str:
        values = [schema["const"]] if "const" in schema else list(schema["enum"])
        self.check_keys(schema, path, {"const"} if "const" in schema else {"enum"}, None)
        types = schema.get("type")
        if types is not None:  # a value of another type would fail the schema: leave it out
            allowed = [types] if isinstance(types, str) else types
            values = [v for v in values if any(_is_type(v, t) for t in allowed)]
        if not values:
            raise ValueError(f"no value of enum/const at {path or '/'} matches its type")
        return " | ".join(dict.fromkeys(json_literal(v) for v in values))

    def obj(self, schema: dict[str, Any], name: str, path: str) -> str:
        sub = f"{name}-" if name else ""
        props: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        handled = {"properties", "required", "additionalProperties"}
        if not props and extra is None and "properties" not in schema:
            self.check_keys(schema, path, set(), "object")
            return self.primitive("object")
        required = [k for k in props if k in schema.get("required", [])]
        for key in schema.get("required", []):
            if key not in props:
                self.note(path, f"required {key!r} (not among the properties)")
        kv: dict[str, str] = {}
        for key, prop in props.items():
            if prop is False:
                if key in required:
                    raise ValueError(f"property {key!r} at {path or '/'} is required but admits no value")
                continue
            value = self.visit(prop, f"{sub}{key}", f"{path}/properties/{key}")
            kv[key] = self.rule(f"{sub}{key}-kv", f'{json_literal(key)} ": " {value}')
        optional = [k for k in kv if k not in required]
        if extra not in (None, False):
            value = self.visit({} if extra is True else extra, f"{sub}additional-value", f"{path}/additionalProperties")
            pair = self.rule(f"{sub}additional-kv", f'{self.primitive("string")} ": " {value}')
            if not props:
                handled |= {"minProperties", "maxProperties"}
                lo, hi = schema.get("minProperties", 0), schema.get("maxProperties")
                body = self.separated(pair, lo, hi, f"{sub}additional")
                self.check_keys(schema, path, handled, "object")
                return _wrap('"{"', body, '"}"')
            kv["*"] = self.rule(f"{sub}additional-kvs", f'{pair} (", " {pair})*')
            optional.append("*")
        self.check_keys(schema, path, handled, "object")
        body = ' ", " '.join(kv[k] for k in required)
        if optional:
            chains = [self.chain(optional[i:], kv, sub) for i in range(len(optional))]
            choice = " | ".join(chains)
            body += f' (", " ({choice}))?' if required else f" ({choice})?"
        return _wrap('"{"', body, '"}"')

    def chain(self, keys: list[str], kv: dict[str, str], sub: str) -> str:
        """The first of ``keys``, then each later one optionally, in order (llama.cpp's converter's layout)."""
        return kv[keys[0]] if len(keys) == 1 else f"{kv[keys[0]]} {self.rest(keys, kv, sub)}"

    def rest(self, keys: list[str], kv: dict[str, str], sub: str) -> str:
        """A rule: optionally the pair of ``keys[1]``, then what may follow it."""
        body = f'(", " {kv[keys[1]]})?' + (f" {self.rest(keys[1:], kv, sub)}" if len(keys) > 2 else "")
        return self.rule(f"{sub}{keys[0]}-rest", body)

    def array(self, schema: dict[str, Any], name: str, path: str) -> str:
        sub = f"{name}-" if name else ""
        tuple_items = schema.get("prefixItems", schema.get("items") if isinstance(schema.get("items"), list) else None)
        if tuple_items is not None:
            handled = {"prefixItems", "minItems", "maxItems"} | ({"items"} if "prefixItems" not in schema else set())
            if "prefixItems" in schema and schema.get("items", False) is not False:
                self.note(path, "items after prefixItems (the grammar admits the prefix only)")
                handled.add("items")
            self.check_keys(schema, path, handled, "array")
            parts = [self.visit(s, f"{sub}tuple-{i}", f"{path}/prefixItems/{i}") for i, s in enumerate(tuple_items)]
            return '"[" ' + ' ", " '.join(parts) + ' "]"'
        self.check_keys(schema, path, {"items", "minItems", "maxItems"}, "array")
        if "items" not in schema and "minItems" not in schema and "maxItems" not in schema:
            return self.primitive("array")
        if schema.get("items") is False:
            return '"[" "]"'
        item = self.visit(schema.get("items", {}), f"{sub}item", f"{path}/items")
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if hi is not None and lo > hi:
            raise ValueError(f"minItems > maxItems at {path or '/'}")
        body = self.separated(item, lo, hi, f"{sub}item")
        return _wrap('"["', body, '"]"')

    def string(self, schema: dict[str, Any], name: str, path: str) -> str:
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        if "pattern" in schema:
            try:
                content = pattern_to_gbnf(schema["pattern"])
            except PatternUnsupported as exc:
                self.note(path, f"pattern ({exc})")
            else:
                self.primitive("char")
                self.check_keys(schema, path, {"pattern"}, "string")  # lengths and format: after decoding
                return f'"\\"" {content} "\\""'
        fmt = schema.get("format")
        if fmt in FORMATS:
            self.check_keys(schema, path, {"format"}, "string")
            if fmt.startswith("date"):
                self.note(path, f"format {fmt!r} (digits and ranges only: day 31 of a short month passes)")
            return f'"\\"" {self.primitive(FORMATS[fmt])} "\\""'
        self.check_keys(schema, path, {"minLength", "maxLength", "pattern", "format"}, "string")
        self.note_format(schema, path)
        if hi is not None and lo > hi:
            raise ValueError(f"minLength > maxLength at {path or '/'}")
        if lo == 0 and hi is None:
            return self.primitive("string")
        return f'"\\"" {self.repeat(self.primitive("char"), lo, hi, "char")} "\\""'.replace('"  ', '" ')

    def note_format(self, schema: dict[str, Any], path: str) -> None:
        if "format" in schema and schema["format"] not in FORMATS:
            self.note(path, f"format {schema['format']!r}")

    def bounds(self, schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
        """(lower, lower is exclusive, upper, upper is exclusive): the tighter of each pair of keywords."""
        lo, lo_open, hi, hi_open = schema.get("minimum"), False, schema.get("maximum"), False
        for key, strict in (("exclusiveMinimum", True), ("exclusiveMaximum", False)):
            value = schema.get(key)
            if isinstance(value, bool):  # draft 4: a flag on minimum/maximum
                lo_open, hi_open = (value, hi_open) if strict else (lo_open, value)
            elif value is not None and strict and (lo is None or value >= lo):
                lo, lo_open = value, True
            elif value is not None and not strict and (hi is None or value <= hi):
                hi, hi_open = value, True
        return lo, lo_open, hi, hi_open

    def integer(self, schema: dict[str, Any], name: str, path: str) -> str:
        handled = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
        self.check_keys(schema, path, handled, "integer")
        lo, lo_open, hi, hi_open = self.bounds(schema)
        if lo is None and hi is None:
            return self.primitive("integer")
        low = None if lo is None else int(lo) + 1 if lo_open and float(lo).is_integer() else -int(-lo // 1)
        high = None if hi is None else int(hi) - 1 if hi_open and float(hi).is_integer() else int(hi // 1)
        return int_range(low, high)

    def number(self, schema: dict[str, Any], name: str, path: str) -> str:
        handled = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
        self.check_keys(schema, path, handled, "number")
        lo, lo_open, hi, hi_open = self.bounds(schema)
        if lo is None and hi is None:
            return self.primitive("number")
        expr, exact = number_range(lo, lo_open, hi, hi_open)
        if not exact:
            self.note(path, "minimum/maximum (not integral: the grammar admits the integral hull)")
        return expr


def build_grammar(schema: dict[str, Any] | bool) -> JsonGrammar:
    """The GBNF grammar of a JSON schema; raises ``ValueError`` for a schema no JSON value can satisfy."""
    builder = _Builder(schema)
    root = builder.expr(schema, "", "")
    builder.rules["root"] = root
    text = "\n".join(f"{name} ::= {body}" for name, body in sorted(builder.rules.items()))
    return JsonGrammar(gbnf=text, unenforced=tuple(dict.fromkeys(builder.notes)))
