"""A JSON-schema ``pattern`` as GBNF over the JSON-encoded string: each regex character becomes its JSON spelling.

The regex matches the decoded string, the grammar produces its encoding, so a quote in the pattern becomes
``\\"``, a newline ``\\n``; the raw characters JSON forbids are never produced. A common subset is translated
(literals, ``.``, classes, ``\\d\\w\\s`` (ASCII), groups, ``|``, ``* + ? {n,m}``, ``^``/``$`` at the ends);
anything else raises ``PatternUnsupported`` and the caller leaves the pattern to the check after decoding.
Where the translation differs from the regex it only admits less (ASCII classes, one spelling per character).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.llm.grammar_numbers import optional_chain

__all__ = ["PatternUnsupported", "pattern_to_gbnf"]

MAX_COUNT = 64  # largest {n,m} bound translated
_FEW_CONTROLS = 8
_MAX_CP = 0x10FFFF
_Ranges = list[tuple[int, int]]
_DIGIT: _Ranges = [(0x30, 0x39)]
_WORD: _Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE: _Ranges = [(0x09, 0x0D), (0x20, 0x20)]
_ASCII: _Ranges = [(0x00, 0x7F)]
_SHORT_ESCAPES = {0x08: "b", 0x09: "t", 0x0A: "n", 0x0C: "f", 0x0D: "r"}
_CHAR_ESCAPES = {"n": 0x0A, "t": 0x09, "r": 0x0D, "f": 0x0C, "v": 0x0B, "0": 0x00}


class PatternUnsupported(ValueError):
    """The pattern uses regex syntax this translation does not cover."""


def _normalise(ranges: _Ranges) -> _Ranges:
    out: _Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _complement(ranges: _Ranges, within: _Ranges | None = None) -> _Ranges:
    out: _Ranges = []
    nxt = 0
    for lo, hi in _normalise(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_CP:
        out.append((nxt, _MAX_CP))
    return out if within is None else _intersect(out, within)


def _intersect(a: _Ranges, b: _Ranges) -> _Ranges:
    return _normalise([(max(x, y), min(p, q)) for x, p in a for y, q in b if max(x, y) <= min(p, q)])


def _contains(ranges: _Ranges, cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def _class_char(cp: int) -> str:
    if chr(cp).isascii() and chr(cp).isalnum():
        return chr(cp)
    return f"\\x{cp:02X}" if cp < 0x100 else f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}"


def _literal_char(cp: int) -> str:
    """GBNF literal of the JSON spelling of one character."""
    if cp == 0x22:
        return '"\\\\\\""'  # emits \"
    if cp == 0x5C:
        return '"\\\\\\\\"'  # emits \\
    if cp < 0x20:
        return f'"\\\\{_SHORT_ESCAPES[cp]}"' if cp in _SHORT_ESCAPES else f'"\\\\u{cp:04x}"'
    return f'"{chr(cp)}"'


def _set_expr(ranges: _Ranges) -> str:
    """GBNF for one character of ``ranges``, spelled as JSON string content."""
    safe = _intersect(ranges, [(0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, _MAX_CP)])
    alts = []
    if safe:
        alts.append("[" + "".join(_class_char(a) + ("" if a == b else "-" + _class_char(b)) for a, b in safe) + "]")
    controls = [c for c in range(0x20) if _contains(ranges, c)]
    if len(controls) == 0x20:
        alts.append('("\\\\" [bfnrt] | "\\\\u00" [01] [0-9a-fA-F])')
    elif len(controls) <= _FEW_CONTROLS:  # a class that names them; '.' and [^\n] spell no control at all
        alts += [_literal_char(c) for c in controls]
    alts += [_literal_char(c) for c in (0x22, 0x5C) if _contains(ranges, c)]
    if not alts:
        raise PatternUnsupported("a character class matches no character a JSON string can hold")
    return alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"


@dataclass
class _Atom:
    expr: str
    text: str | None = None  # the literal characters, when the atom is plain text (merged with neighbours)


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.i = 0

    def peek(self) -> str | None:
        return self.src[self.i] if self.i < len(self.src) else None

    def take(self) -> str:
        c = self.src[self.i]
        self.i += 1
        return c

    def alternatives(self, top: bool) -> str:
        branches = [self.sequence(top)]
        while self.peek() == "|":
            self.take()
            branches.append(self.sequence(top))
        return branches[0] if len(branches) == 1 else "(" + " | ".join(branches) + ")"

    def sequence(self, top: bool) -> str:
        atoms: list[_Atom] = []
        start = self.i
        anchored_start = anchored_end = False
        while (c := self.peek()) is not None and c not in "|)":
            if c == "^":
                if not top or self.i != start:
                    raise PatternUnsupported("'^' inside a pattern")
                self.take()
                anchored_start = True
                continue
            if c == "$":
                self.take()
                if not top or self.peek() not in (None, "|"):
                    raise PatternUnsupported("'$' inside a pattern")
                anchored_end = True
                continue
            atoms.append(self.quantified(self.atom()))
        parts = _merge(atoms)
        if top:  # JSON-schema patterns search: an unanchored end admits any text there
            parts = ([] if anchored_start else ["char*"]) + parts + ([] if anchored_end else ["char*"])
        return " ".join(parts) if parts else '""'

    def atom(self) -> _Atom:
        c = self.take()
        if c == ".":
            return _Atom(_set_expr(_complement([(0x0A, 0x0A)])))
        if c == "[":
            return _Atom(_set_expr(self.char_class()))
        if c == "(":
            if self.peek() == "?":
                self.group_prefix()
            inner = self.alternatives(top=False)
            if self.peek() != ")":
                raise PatternUnsupported("unbalanced '('")
            self.take()
            return _Atom(f"({inner})")
        if c in "*+?" or c == ")":
            raise PatternUnsupported(f"{c!r} with nothing to repeat")
        if c == "\\":
            ranges = self.escape(in_class=False)
            if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
                return _char_atom(ranges[0][0])
            return _Atom(_set_expr(ranges))
        return _char_atom(ord(c))

    def group_prefix(self) -> None:
        self.take()
        if self.src.startswith(":", self.i):
            self.i += 1
        elif self.src.startswith("P<", self.i) or (
            self.src.startswith("<", self.i) and not self.src.startswith(("<=", "<!"), self.i)
        ):
            end = self.src.find(">", self.i)
            if end < 0:
                raise PatternUnsupported("unterminated group name")
            self.i = end + 1
        else:
            raise PatternUnsupported("lookaround, flags and other '(?' groups")

    def escape(self, in_class: bool) -> _Ranges:
        if self.peek() is None:
            raise PatternUnsupported("pattern ends with '\\'")
        c = self.take()
        sets = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
        if c in sets:
            return sets[c]
        if c.lower() in sets:  # \D \W \S: the ASCII complement (admits less than the Unicode one)
            return _complement(sets[c.lower()], _ASCII)
        if c in _CHAR_ESCAPES:
            return [(_CHAR_ESCAPES[c],) * 2]
        if c in "xu":
            n = 2 if c == "x" else 4
            digits = self.src[self.i : self.i + n]
            if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise PatternUnsupported(f"bad \\{c} escape")
            self.i += n
            return [(int(digits, 16),) * 2]
        if c.isalnum():
            raise PatternUnsupported(f"escape \\{c}")
        return [(ord(c), ord(c))]

    def char_class(self) -> _Ranges:
        negate = self.peek() == "^"
        if negate:
            self.take()
        items: _Ranges = []
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise PatternUnsupported("unbalanced '['")
            if c == "]" and not first:
                self.take()
                break
            if c == "[" or self.src.startswith(("&&", "--", "~~"), self.i):
                raise PatternUnsupported("nested classes and set operations")
            first = False
            lo = self.class_item()
            if self.peek() == "-" and self.src[self.i + 1 : self.i + 2] not in ("]", ""):
                self.take()
                hi = self.class_item()
                if len(lo) != 1 or len(hi) != 1 or lo[0][0] != lo[0][1] or hi[0][0] != hi[0][1]:
                    raise PatternUnsupported("a range between classes")
                if lo[0][0] > hi[0][0]:
                    raise PatternUnsupported("a reversed range")
                items.append((lo[0][0], hi[0][0]))
            else:
                items += lo
        return _complement(items) if negate else _normalise(items)

    def class_item(self) -> _Ranges:
        c = self.take()
        if c == "\\":
            if self.peek() == "b":
                self.take()
                return [(0x08, 0x08)]
            return self.escape(in_class=True)
        return [(ord(c), ord(c))]

    def quantified(self, atom: _Atom) -> _Atom:
        c = self.peek()
        if c is None:
            return atom
        if c in "*+?":
            self.take()
            out = _Atom(f"{_group(atom)}{c}")
        elif c == "{" and (bounds := self.counts()) is not None:
            out = _Atom(_repeat(_group(atom), *bounds))
        else:
            return atom
        if self.peek() == "?":
            self.take()  # lazy: same strings
        elif self.peek() == "+":
            raise PatternUnsupported("possessive quantifiers")
        return out

    def counts(self) -> tuple[int, int | None] | None:
        end = self.src.find("}", self.i)
        body = self.src[self.i + 1 : end] if end > 0 else ""
        lo, sep, hi = body.partition(",")
        if not body or not (lo.isdigit() or (sep and lo == "")) or not (hi.isdigit() or hi == ""):
            return None  # not a quantifier: '{' is a literal
        self.i = end + 1
        low, high = int(lo or 0), (int(hi) if hi else None) if sep else int(lo)
        if max(low, high or 0) > MAX_COUNT or (high is not None and high < low):
            raise PatternUnsupported(f"repetition {{{body}}} (most {MAX_COUNT})")
        return low, high


def _char_atom(cp: int) -> _Atom:
    if 0x20 <= cp and cp not in (0x22, 0x5C) and not 0xD800 <= cp <= 0xDFFF:
        return _Atom(_literal_char(cp), chr(cp))
    return _Atom(_set_expr([(cp, cp)]))


def _group(atom: _Atom) -> str:
    return atom.expr if atom.text is not None or atom.expr.startswith("(") else f"({atom.expr})"


def _merge(atoms: list[_Atom]) -> list[str]:
    parts: list[str] = []
    run = ""
    for atom in atoms:
        if atom.text is not None:
            run += atom.text
            continue
        if run:
            parts.append(f'"{run}"')
            run = ""
        parts.append(atom.expr)
    if run:
        parts.append(f'"{run}"')
    return parts


def _repeat(unit: str, lo: int, hi: int | None) -> str:
    fixed = " ".join([unit] * lo)
    rest = f"{unit}*" if hi is None else optional_chain(unit, hi - lo)
    return " ".join(x for x in (fixed, rest) if x) or '""'


def pattern_to_gbnf(pattern: str) -> str:
    """GBNF for the content (between the quotes) of a JSON string whose value matches ``pattern``.

    Refers to the rule ``char`` (any JSON string character) for unanchored ends.
    """
    parser = _Parser(pattern)
    expr = parser.alternatives(top=True)
    if parser.i != len(pattern):
        raise PatternUnsupported("unbalanced ')'")
    return expr
