"""Output constraints checked token by token: a JSON-schema grammar, and a shortlist of exact choices.

Both are exact: they never forbid a token the constraint allows, nor allow one it forbids. The grammar
(``agents.llm.grammar``: valid JSON by construction) runs on llama.cpp's own sampler, but asked only about the
few tokens the model actually prefers (``check``); the whole vocabulary (``full_mask``, slow with Gemma's 262k
tokens) is scanned only when none of those fit. ``forced()`` names the tokens a constraint dictates next
(jump-forward: the engine appends them without sampling; see docs/inference.md).
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agents.llm.grammar import JsonGrammar, build_grammar
from agents.llm.jump_forward import GrammarTracker
from agents.llm.native import NativeModel, _llama

__all__ = [
    "Constraint",
    "GrammarConstraint",
    "ChoiceConstraint",
    "forced_tokens",
    "JsonCloser",
    "shortlist_from_schema",
    "schema_grammar",
    "schema_to_gbnf",
]

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


class Constraint(Protocol):
    """What the sampler needs from a constraint."""

    @property
    def done(self) -> bool:
        """True once the output is complete: nothing more may follow."""
        ...

    def allowed_ids(self) -> npt.NDArray[np.int64] | None:
        """The exact allowed token ids when that set is small and cheap; otherwise None."""
        ...

    def check(self, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of ``tokens`` may come next."""
        ...

    def full_mask(self) -> npt.NDArray[np.bool_]:
        """Allowed-or-not for every token of the vocabulary (the slow path)."""
        ...

    def accept(self, token: int) -> None:
        """Advance past ``token`` (which ``check`` allowed)."""
        ...

    def forced(self) -> list[int]:
        """Tokens the constraint dictates next, to ``accept`` without sampling (empty where there is a choice).

        Called after ``accept``; cheap (cached per grammar state). Every token returned is allowed in turn.
        """
        ...

    def close(self) -> None: ...


@lru_cache(maxsize=256)
def schema_grammar(schema_json: str) -> JsonGrammar:
    """The grammar of a JSON schema (``agents.llm.grammar``) and what it leaves unenforced, cached per schema."""
    return build_grammar(json.loads(schema_json))


def schema_to_gbnf(schema_json: str) -> str:
    """GBNF grammar text for a JSON schema: every output it admits is valid JSON (see ``agents.llm.grammar``)."""
    return schema_grammar(schema_json).gbnf


@lru_cache(maxsize=4096)
def _canonical_tokens(model: NativeModel, text: str) -> tuple[int, ...]:
    tokens = model.tokenize(text, add_bos=False, special=False)
    if b"".join(model.piece(t) for t in tokens) != text.encode("utf-8"):
        return ()  # the tokenizer would not spell exactly this text: force nothing
    return tuple(tokens)


def forced_tokens(model: NativeModel, text: str, *, ends: bool) -> list[int]:
    """The tokens to force for grammar-forced ``text``: its canonical tokenization, less the last token unless the
    grammar ``ends`` after the text (the model may spell that last piece together with what follows)."""
    if not text:
        return []
    tokens: Sequence[int] = _canonical_tokens(model, text)
    return list(tokens if ends else tokens[:-1])


def shortlist_from_schema(schema: dict[str, Any]) -> list[str] | None:
    """The exact JSON texts a schema allows when it is a top-level ``enum``/``const``; else None."""
    if "const" in schema:
        return [json.dumps(schema["const"])]
    values = schema.get("enum")
    if isinstance(values, list) and values and len(schema.keys() - {"enum", "type", "title", "description"}) == 0:
        return [json.dumps(v) for v in values]
    return None


class JsonCloser:
    """Tracks JSON nesting in emitted text; ``closed`` once the top-level object or array has ended."""

    def __init__(self) -> None:
        self.depth = 0
        self.opened = False
        self.closed = False
        self._in_string = False
        self._escape = False

    def feed(self, data: bytes) -> None:
        for ch in data.decode("utf-8", errors="ignore"):
            if self.closed:
                return
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self.depth += 1
                self.opened = True
            elif ch in "}]":
                self.depth -= 1
                if self.opened and self.depth == 0:
                    self.closed = True


class GrammarConstraint:
    """A GBNF grammar (from a JSON schema) enforced by llama.cpp's grammar sampler, one per generation.

    Stops as soon as the top-level JSON value closes, instead of asking the grammar for an end token.
    """

    def __init__(self, model: NativeModel, gbnf: str) -> None:
        lib = _llama()
        self._model = model
        self._smpl = lib.llama_sampler_init_grammar(model.vocab, gbnf.encode(), b"root")
        if not self._smpl:
            raise ValueError("llama.cpp rejected the grammar built from this JSON schema; simplify the schema")
        self._closer = JsonCloser()
        self._full: npt.NDArray[np.void] | None = None
        self._tracker = GrammarTracker(gbnf)

    @classmethod
    def from_schema(cls, model: NativeModel, schema: dict[str, Any]) -> GrammarConstraint:
        return cls(model, schema_to_gbnf(json.dumps(schema)))  # declared property order: e.g. reasons before answers

    @property
    def done(self) -> bool:
        return self._closer.closed

    def allowed_ids(self) -> npt.NDArray[np.int64] | None:
        return None

    def _apply(self, data: npt.NDArray[np.void]) -> npt.NDArray[np.bool_]:
        lib = _llama()
        arr = lib.llama_token_data_array(
            data=ctypes.cast(data.ctypes.data, lib.llama_token_data_p), size=len(data), selected=-1, sorted=False
        )
        lib.llama_sampler_apply(self._smpl, ctypes.byref(arr))
        return np.isfinite(data["logit"])

    def check(self, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        data = np.zeros(len(tokens), dtype=_TOKEN_DATA)
        data["id"] = tokens
        return self._apply(data)

    def full_mask(self) -> npt.NDArray[np.bool_]:
        if self._full is None:
            self._full = np.zeros(self._model.n_vocab, dtype=_TOKEN_DATA)
            self._full["id"] = np.arange(self._model.n_vocab)
        self._full["logit"] = 0.0
        return self._apply(self._full)

    def accept(self, token: int) -> None:
        """Advance past ``token``; raises ``ValueError`` if the grammar does not allow it (llama.cpp would abort)."""
        if not self.check(np.asarray([token], dtype=np.int64))[0]:
            raise ValueError(f"token {token} ({self._model.piece(token)!r}) is not allowed by the grammar here")
        _llama().llama_sampler_accept(self._smpl, token)
        piece = self._model.piece(token)
        self._closer.feed(piece)
        self._tracker.feed(piece)

    def forced(self) -> list[int]:
        """The canonical tokens of the text the grammar forces next, less the last one unless the grammar ends
        there (``forced_tokens``); empty at a choice, mid-character, once the JSON value closed, or if the
        tracker lost track."""
        if self.done:
            return []
        text, ends = self._tracker.forced_text()
        return forced_tokens(self._model, text, ends=ends)

    def close(self) -> None:
        if self._smpl:
            _llama().llama_sampler_free(self._smpl)
            self._smpl = None


class ChoiceConstraint:
    """Output must be exactly one of a shortlist of strings: a token trie, so each step is a tiny mask."""

    def __init__(self, model: NativeModel, choices: list[str]) -> None:
        if not choices:
            raise ValueError("choices must name at least one option")
        self._end = min(model.eog)
        self._root: dict[int, Any] = {}
        for choice in choices:
            tokens = model.tokenize(choice, add_bos=False, special=False)
            if not tokens:
                raise ValueError(f"choice {choice!r} is empty once tokenized; give non-empty choices")
            node = self._root
            for t in tokens:
                node = node.setdefault(t, {})
            node[-1] = {}  # end marker
        self._node = self._root
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def allowed_ids(self) -> npt.NDArray[np.int64]:
        ids = [t if t >= 0 else self._end for t in self._node]
        return np.asarray(ids, dtype=np.int64)

    def check(self, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return np.isin(tokens, self.allowed_ids())

    def full_mask(self) -> npt.NDArray[np.bool_]:
        raise NotImplementedError("ChoiceConstraint always answers allowed_ids()")

    def accept(self, token: int) -> None:
        if token == self._end and -1 in self._node:
            self._done = True
            return
        self._node = self._node[token]
        if set(self._node) == {-1}:
            self._done = True

    def forced(self) -> list[int]:
        """The tokens that follow while the shortlist's trie has a single branch (exactly the only allowed ones)."""
        out: list[int] = []
        node = self._node
        while not self._done and len(node) == 1 and -1 not in node:
            token = next(iter(node))
            out.append(token)
            node = node[token]
        return out

    def close(self) -> None:
        return None
