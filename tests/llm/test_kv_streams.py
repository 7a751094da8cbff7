"""Per-sequence KV streams (``ContextConfig(kv_streams=True)``) on the real model: the same outputs as the
unified cache, prefixes copied across streams, and a job capped at its stream's size."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from agents.llm.engine import ContextOverflow, Engine
from agents.llm.jobs import Job
from agents.llm.native import ContextConfig, NativeModel
from agents.llm.sampling import TokenSampler
from tests.llm.test_mixed_batch import PROMPTS, MarginSampler, assert_same_until_a_near_tie

pytestmark = [pytest.mark.model, pytest.mark.anyio]
Wait = Callable[..., Awaitable[Job]]
STREAMS = ContextConfig(n_ctx=4096, n_seq=8, n_batch=256, kv_streams=True, flash_attn=False)  # 512 cells a sequence


def _greedy(model: NativeModel, text: str, n: int = 16, **kw: object) -> Job:
    return Job(prompt=model.tokenize(text), max_tokens=n, sampler=MarginSampler(), **kw)  # type: ignore[arg-type]


async def test_batched_streams_give_each_sequence_its_output_alone_in_one_cache(
    weights: NativeModel, wait_done: Wait
) -> None:
    """Eight sequences batched over their own streams produce what each produces alone in a unified cache,
    up to a near-tie of its top two logits."""
    alone = Engine(weights, ContextConfig(n_ctx=1024, n_seq=1, n_batch=256, flash_attn=False))
    streams = Engine(weights, STREAMS)
    try:
        references = [await wait_done(alone.submit(_greedy(weights, p)), 60) for p in PROMPTS]
        with streams._cv:  # one step admits them all
            jobs = [streams.submit(_greedy(weights, p)) for p in PROMPTS]
        for job in jobs:
            await wait_done(job, 60)
        identical = [assert_same_until_a_near_tie(ref, job) for ref, job in zip(references, jobs, strict=True)]
        assert sum(identical) >= 4, identical  # measured: 5 of 8, the rest part at a near-tie
        assert streams.stats().steps < sum(len(j.result.tokens) for j in jobs if j.result)  # they shared steps
        assert sorted(j.slot.seq for j in jobs if j.slot) == list(range(8))  # consecutive ids, one pass a step
    finally:
        alone.close()
        streams.close()


async def test_a_prefix_cached_in_one_stream_is_copied_into_another(weights: NativeModel, wait_done: Wait) -> None:
    """A second session with the same system prompt reuses the first's cells (a copy of its stream) and
    generates what a fresh engine generates from the whole prompt."""
    system = "You are a supplier agent in a smart factory. Answer with one short sentence. " * 4
    engine, fresh = Engine(weights, STREAMS), Engine(weights, STREAMS)
    try:
        await wait_done(engine.submit(_greedy(weights, system + "Order: 10 gears.", 4, session_id="s1")))
        second = await wait_done(engine.submit(_greedy(weights, system + "Order: 3 motors.", session_id="s2")))
        reference = await wait_done(fresh.submit(_greedy(weights, system + "Order: 3 motors.")))
        assert second.result is not None and reference.result is not None
        assert second.result.cached_tokens >= len(weights.tokenize(system)) - 2
        assert reference.result.cached_tokens == 0
        assert second.slot is not None and second.slot.seq == 1
        assert_same_until_a_near_tie(reference, second)
        # both sessions keep their own cells: the ledger counts the copy as cells of its own
        stats = engine.stats()
        assert stats.kv_cells == stats.kv_tokens
    finally:
        engine.close()
        fresh.close()


async def test_a_job_larger_than_its_stream_fails_at_once_naming_the_stream(weights: NativeModel) -> None:
    engine = Engine(weights, STREAMS)
    try:
        prompt = weights.tokenize("word " * 600)[:500]
        with pytest.raises(ContextOverflow, match=r"= 520 KV cells exceeds a sequence's KV stream \(512 cells"):
            engine.submit(Job(prompt=prompt, max_tokens=20, sampler=TokenSampler()))
        assert engine.stats().waiting == 0  # refused in submit itself, nothing queued
    finally:
        engine.close()
