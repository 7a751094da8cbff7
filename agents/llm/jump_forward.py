"""Jump-forward: the text a GBNF grammar forces next, found by tracking the grammar character by character.

``GbnfAutomaton`` compiles the GBNF subset ``agents.llm.grammar`` writes (literals, classes, groups, ``? * +``,
rule references) into llama.cpp's own model: a parse state is the set of stacks of grammar positions still
alive. ``GrammarTracker`` follows one generation's bytes; ``forced_text()`` is the longest text every
continuation of the grammar starts with (JSON punctuation, declared keys, the rest of an enum value once its
prefix is unique). States, transitions and forced texts are cached per grammar, so after the first reply of a
schema the tracker costs a dictionary lookup per character. llama.cpp's grammar sampler stays the judge of
validity: the tracker only proposes text, and stops proposing (for good) if it ever loses track.
"""

from __future__ import annotations

import codecs
from functools import lru_cache

__all__ = ["GbnfAutomaton", "GrammarTracker", "GbnfUnsupported"]

_END, _REF, _CHAR = 0, 1, 2
_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]"}
_MAX_FORCED = 256  # longest forced text proposed at once (characters)
_MAX_CACHE = 200_000  # transitions cached per grammar before the cache starts over
_Stack = tuple[int, ...]
_State = frozenset[_Stack]
_CharSet = tuple[bool, tuple[tuple[int, int], ...]]  # (negated, code point ranges)
_Sym = tuple[str, _CharSet | int]  # ("c", a character set) | ("r", a rule id)
_NO_CHARS: _CharSet = (False, ())


class GbnfUnsupported(ValueError):
    """The GBNF uses syntax the tracker does not read (it then proposes nothing)."""


class _Parser:
    """Reads GBNF text into rules of alternatives of symbols; groups and repetitions become anonymous rules."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.rules: list[list[list[_Sym]] | None] = []

    def rule_id(self, name: str) -> int:
        if name not in self.ids:
            self.ids[name] = len(self.rules)
            self.rules.append(None)
        return self.ids[name]

    def anonymous(self, alts: list[list[_Sym]]) -> int:
        self.rules.append(alts)
        return len(self.rules) - 1

    def parse(self, text: str) -> None:
        for line in text.splitlines():
            if not line.strip():
                continue
            name, sep, body = line.partition("::=")
            if not sep:
                raise GbnfUnsupported(f"not a rule: {line!r}")
            self.src, self.i = body, 0
            alts = self.alternatives()
            if self.i != len(body):
                raise GbnfUnsupported(f"unread text in {line!r}")
            self.rules[self.rule_id(name.strip())] = alts
        missing = [n for n, i in self.ids.items() if self.rules[i] is None]
        if missing or "root" not in self.ids:
            raise GbnfUnsupported(f"undefined rules: {missing or ['root']}")

    def ws(self) -> None:
        while self.i < len(self.src) and self.src[self.i] in " \t":
            self.i += 1

    def alternatives(self) -> list[list[_Sym]]:
        alts = [self.sequence()]
        while self.i < len(self.src) and self.src[self.i] == "|":
            self.i += 1
            alts.append(self.sequence())
        return alts

    def sequence(self) -> list[_Sym]:
        seq: list[_Sym] = []
        self.ws()
        while self.i < len(self.src) and self.src[self.i] not in "|)":
            seq += self.item()
            self.ws()
        return seq

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
            raise GbnfUnsupported(f"escape \\{e}")
        self.i += 2
        return ord(_ESCAPES[e])

    def item(self) -> list[_Sym]:
        c = self.src[self.i]
        syms: list[_Sym]
        if c == '"':
            self.i += 1
            syms = []
            while self.src[self.i] != '"':
                cp = self.char()
                syms.append(("c", (False, ((cp, cp),))))
            self.i += 1
        elif c == "[":
            self.i += 1
            negated = self.src[self.i] == "^"
            self.i += negated
            ranges = []
            while self.src[self.i] != "]":
                lo = hi = self.char()
                if self.src[self.i] == "-" and self.src[self.i + 1] != "]":
                    self.i += 1
                    hi = self.char()
                ranges.append((lo, hi))
            self.i += 1
            syms = [("c", (negated, tuple(ranges)))]
        elif c == ".":
            self.i += 1
            syms = [("c", (True, ()))]
        elif c == "(":
            self.i += 1
            alts = self.alternatives()
            if self.i >= len(self.src) or self.src[self.i] != ")":
                raise GbnfUnsupported("unbalanced '('")
            self.i += 1
            syms = [("r", self.anonymous(alts))]
        else:
            start = self.i
            while self.i < len(self.src) and (self.src[self.i].isalnum() or self.src[self.i] in "-_"):
                self.i += 1
            if self.i == start:
                raise GbnfUnsupported(f"unexpected {c!r}")
            syms = [("r", self.rule_id(self.src[start : self.i]))]
        op = self.src[self.i] if self.i < len(self.src) else ""
        if op not in ("?", "*", "+"):
            if op == "{":
                raise GbnfUnsupported("{m,n} repetition")
            return syms
        self.i += 1
        if op == "?":
            return [("r", self.anonymous([syms, []]))]
        star = len(self.rules)
        self.rules.append([[*syms, ("r", star)], []])
        return [("r", star)] if op == "*" else [*syms, ("r", star)]


class GbnfAutomaton:
    """One grammar compiled for tracking: flat positions (a character set, a rule reference or an end) and
    the alternatives of each rule. ``of(gbnf)`` shares one automaton (and its caches) per grammar text."""

    def __init__(self, gbnf: str) -> None:
        parser = _Parser()
        parser.parse(gbnf)
        self.kind: list[int] = []
        self.chars: list[_CharSet] = []  # per position: its character set (empty for the others)
        self.rule: list[int] = []  # per position: the rule it refers to (-1 for the others)
        starts: list[list[int]] = []
        for alts in parser.rules:
            assert alts is not None
            starts.append([])
            for seq in alts:
                starts[-1].append(len(self.kind))
                for tag, payload in seq:
                    self.kind.append(_CHAR if tag == "c" else _REF)
                    self.chars.append(payload if isinstance(payload, tuple) else _NO_CHARS)
                    self.rule.append(payload if isinstance(payload, int) else -1)
                self.kind.append(_END)
                self.chars.append(_NO_CHARS)
                self.rule.append(-1)
        self.alts = starts
        self.start: _State = self._expand([(a,) for a in self.alts[parser.ids["root"]]])
        self._next: dict[tuple[_State, str], _State] = {}
        self._forced: dict[_State, tuple[str, _State]] = {}

    @staticmethod
    @lru_cache(maxsize=64)
    def of(gbnf: str) -> GbnfAutomaton:
        """The automaton of ``gbnf`` (cached); raises ``GbnfUnsupported`` for syntax it does not read."""
        return GbnfAutomaton(gbnf)

    def _expand(self, stacks: list[_Stack]) -> _State:
        """Stacks whose top is a character position (or empty: the grammar may end) reachable from ``stacks``."""
        out: set[_Stack] = set()
        seen: set[_Stack] = set()
        while stacks:
            s = stacks.pop()
            if s in seen:
                continue
            seen.add(s)
            if not s:
                out.add(s)
                continue
            top = s[-1]
            kind = self.kind[top]
            if kind == _END:
                stacks.append(s[:-1])
            elif kind == _REF:
                rest = s[:-1] + ((top + 1,) if self.kind[top + 1] != _END else ())
                stacks += [rest + (a,) for a in self.alts[self.rule[top]]]
            else:
                out.add(s)
        return frozenset(out)

    def _matches(self, pos: int, cp: int) -> bool:
        negated, ranges = self.chars[pos]
        return any(lo <= cp <= hi for lo, hi in ranges) != negated

    def advance(self, state: _State, ch: str) -> _State:
        """The state after one more character (empty: the grammar does not admit it)."""
        key = (state, ch)
        nxt = self._next.get(key)
        if nxt is None:
            cp = ord(ch)
            moved = [s[:-1] + (s[-1] + 1,) for s in state if s and self._matches(s[-1], cp)]
            nxt = self._expand(moved)
            if len(self._next) >= _MAX_CACHE:
                self._next.clear()
            self._next[key] = nxt
        return nxt

    def single_char(self, state: _State) -> str | None:
        """The one character every stack of ``state`` needs next, else None (a choice, or the end may come)."""
        only: int | None = None
        for s in state:
            if not s:
                return None
            negated, ranges = self.chars[s[-1]]
            if negated or len(ranges) != 1 or ranges[0][0] != ranges[0][1]:
                return None
            cp = ranges[0][0]
            if only is None:
                only = cp
            elif cp != only:
                return None
        return None if only is None else chr(only)

    def forced(self, state: _State) -> tuple[str, _State]:
        """The longest text every continuation from ``state`` starts with, and the state after it."""
        hit = self._forced.get(state)
        if hit is not None:
            return hit
        text, cur = "", state
        while len(text) < _MAX_FORCED and (ch := self.single_char(cur)) is not None:
            text += ch
            cur = self.advance(cur, ch)
        if len(self._forced) >= _MAX_CACHE:
            self._forced.clear()
        self._forced[state] = (text, cur)
        return text, cur

    @staticmethod
    def finished(state: _State) -> bool:
        """True when the grammar can only end here (nothing may follow)."""
        return state == frozenset({()})


class GrammarTracker:
    """Follows one generation's output bytes through a grammar; proposes the text the grammar forces next."""

    def __init__(self, gbnf: str) -> None:
        try:
            self.automaton: GbnfAutomaton | None = GbnfAutomaton.of(gbnf)
        except GbnfUnsupported:
            self.automaton = None
        self.state: _State = self.automaton.start if self.automaton is not None else frozenset()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._partial = False

    @property
    def lost(self) -> bool:
        """True once the tracker cannot follow (unreadable grammar, or text it does not admit): it proposes nothing."""
        return self.automaton is None or not self.state

    def feed(self, data: bytes) -> None:
        """Advance past the bytes of one accepted token (a character may span tokens)."""
        if self.automaton is None or not self.state:
            return
        try:
            text = self._utf8.decode(data)
        except UnicodeDecodeError:
            self.state = frozenset()
            return
        self._partial = bool(self._utf8.getstate()[0])
        for ch in text:
            self.state = self.automaton.advance(self.state, ch)
            if not self.state:
                return

    def forced_text(self) -> tuple[str, bool]:
        """The text the grammar forces next ("" when there is a choice), and whether the grammar ends after it."""
        if self.automaton is None or not self.state or self._partial:
            return "", False
        text, after = self.automaton.forced(self.state)
        return text, GbnfAutomaton.finished(after)
