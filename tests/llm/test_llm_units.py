"""Model-free parts of the llama.cpp backend: sampling, constraints' helpers, request validation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from agents.llm import sampling
from agents.llm.base import GenerationRequest
from agents.llm.constraints import JsonCloser, shortlist_from_schema
from agents.llm.jobs import Job, Slot, common_prefix, pick_slot
from agents.llm.native import ContextConfig
from agents.llm.sampling import NoAllowedToken, TokenSampler


class Allowed:
    """A fake constraint that allows a fixed token set and counts the slow full-vocabulary scans."""

    def __init__(self, allowed: set[int], vocab: int) -> None:
        self.allowed = allowed
        self.vocab = vocab
        self.full_scans = 0

    @property
    def done(self) -> bool:
        return False

    def allowed_ids(self) -> None:
        return None

    def check(self, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return np.isin(tokens, list(self.allowed))

    def full_mask(self) -> npt.NDArray[np.bool_]:
        self.full_scans += 1
        return np.isin(np.arange(self.vocab), list(self.allowed))

    def accept(self, token: int) -> None:
        pass

    def close(self) -> None:
        pass


def _logits(seed: int = 1, n: int = 1000) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).normal(size=n).astype(np.float32)


def test_greedy_is_argmax() -> None:
    logits = _logits()
    assert TokenSampler().pick(logits) == int(np.argmax(logits))


def test_seeded_sampling_repeats_and_seeds_differ() -> None:
    logits = _logits()
    draws = [[TokenSampler(1.0, seed).pick(logits) for _ in range(1)] for seed in range(20)]
    again = [[TokenSampler(1.0, seed).pick(logits) for _ in range(1)] for seed in range(20)]
    assert draws == again
    assert len({d[0] for d in draws}) > 5


def test_constrained_greedy_picks_best_allowed_without_full_scan() -> None:
    logits = _logits()
    order = np.argsort(-logits)
    allowed = {int(order[3]), int(order[500])}
    c = Allowed(allowed, len(logits))
    assert TokenSampler().pick(logits, c) == int(order[3])
    assert c.full_scans == 0


def test_constrained_greedy_falls_back_to_full_scan_exactly() -> None:
    logits = _logits(n=50_000)
    order = np.argsort(-logits)
    c = Allowed({int(order[40_000]), int(order[45_000])}, len(logits))
    assert TokenSampler().pick(logits, c) == int(order[40_000])
    assert c.full_scans == 1


def test_fast_constrained_greedy_equals_the_exhaustive_mask() -> None:
    rng = np.random.default_rng(3)
    for trial in range(200):
        n = int(rng.integers(2, 60_000))
        # coarse logits make ties common, also at the edge of a candidate set
        logits = rng.integers(-40, 40, size=n).astype(np.float32) if trial % 2 else _logits(trial, n)
        size = int(rng.choice([1, 3, 50, n // 2 + 1]))
        allowed = {int(t) for t in rng.choice(n, size=min(size, n), replace=False)}
        fast, slow = Allowed(allowed, n), Allowed(allowed, n)
        picked = TokenSampler().pick(logits, fast)
        assert picked == TokenSampler(exhaustive=True).pick(logits, slow), trial
        assert slow.full_scans == 1
        best = max(logits[t] for t in allowed)
        assert picked == min(t for t in allowed if logits[t] == best)  # lowest id among tied best tokens


def test_candidate_threshold_keeps_the_top_k_and_at_least_k_tokens() -> None:
    rng = np.random.default_rng(5)
    for n in (100, 8192, 60_001, 262_144):  # partitioned whole, and by block maxima (padded or not)
        logits = rng.standard_normal(n).astype(np.float32)
        for k in (1, 64):
            thr = sampling._threshold(logits, k)
            assert thr <= np.sort(logits)[-k]  # every one of the top k is a candidate
            assert (logits >= thr).sum() >= k


def test_constrained_draws_only_allowed_tokens() -> None:
    logits = _logits()
    allowed = {5, 17, 400}
    c = Allowed(allowed, len(logits))
    picks = {TokenSampler(1.0, seed).pick(logits, c) for seed in range(50)}
    assert picks <= allowed and len(picks) >= 2


def test_constraint_that_allows_nothing_raises() -> None:
    with pytest.raises(NoAllowedToken):
        TokenSampler().pick(_logits(), Allowed(set(), 1000))


@pytest.mark.parametrize(
    ("chunks", "closed"),
    [
        (['{"a": ', '"}"', "}"], True),
        (['{"a": [1, {"b": 2}', "]"], False),
        (['{"a": "x\\"}"', ", "], False),
        (["[1, 2]"], True),
    ],
)
def test_json_closer(chunks: list[str], closed: bool) -> None:
    closer = JsonCloser()
    for chunk in chunks:
        closer.feed(chunk.encode())
    assert closer.closed is closed


def test_shortlist_from_schema() -> None:
    assert shortlist_from_schema({"enum": ["accept", "reject"]}) == ['"accept"', '"reject"']
    assert shortlist_from_schema({"const": 3}) == ["3"]
    assert shortlist_from_schema({"type": "object", "properties": {}}) is None


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_slot_choice_keeps_caches_in_one_cache_and_sequences_consecutive_in_streams() -> None:
    """Unified cache: an empty slot before any cache. Per-sequence streams: the lowest idle id holding no
    session (llama.cpp batches only consecutive sequence ids in one pass), a session's slot only when no other
    is idle, and a job's own session slot always first."""
    slots = [Slot(seq=i) for i in range(5)]
    slots[0].job = Job(prompt=[1], max_tokens=1, sampler=TokenSampler())
    slots[1].tokens, slots[1].session, slots[1].last_used = [5, 6], "deal-1", 1.0
    slots[2].tokens, slots[2].last_used = [7, 8], 2.0  # an anonymous cache
    job = Job(prompt=[5, 6, 7], max_tokens=4, sampler=TokenSampler())
    assert pick_slot(slots, job) is slots[3]
    assert pick_slot(slots, job, lowest=True) is slots[2]
    for s in slots[2:]:
        s.job = slots[0].job
    assert pick_slot(slots, job, lowest=True) is slots[1]
    slots[1].job = slots[0].job
    assert pick_slot(slots, job, lowest=True) is None
    slots[1].job, slots[3].job = None, None
    mine = Job(prompt=[5, 6, 7], max_tokens=4, sampler=TokenSampler(), session_id="deal-1")
    assert pick_slot(slots, mine, lowest=True) is slots[1]


def test_stream_size_is_a_share_of_the_context_rounded_up_to_256() -> None:
    assert ContextConfig(n_ctx=22528, n_seq=32).seq_cells == 22528
    assert ContextConfig(n_ctx=22528, n_seq=32, kv_streams=True).seq_cells == 768
    assert ContextConfig(n_ctx=2048, n_seq=8, kv_streams=True).seq_cells == 256
    assert ContextConfig(n_ctx=1025, n_seq=4, kv_streams=True).seq_cells == 512  # llama.cpp pads n_ctx first: 1280


def test_request_rejects_schema_and_choices_together() -> None:
    with pytest.raises(ValidationError, match="not both"):
        GenerationRequest(prompt="x", json_schema={"type": "string"}, choices=["a"])
    assert GenerationRequest(prompt="x").session_id is None


def test_grammar_keeps_the_declared_property_order() -> None:
    """A schema that puts a reason before an answer makes the model write the reason first."""
    import json

    from pydantic import BaseModel

    from agents.llm.constraints import schema_to_gbnf

    class Reasoned(BaseModel):
        reason: str
        answer: int

    root = next(
        line
        for line in schema_to_gbnf(json.dumps(Reasoned.model_json_schema())).splitlines()
        if line.startswith("root")
    )
    assert root.index("reason-kv") < root.index("answer-kv")
