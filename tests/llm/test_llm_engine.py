"""The batching engine on the real model: batched == single-stream, cancellation, back-pressure, KV reuse."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
import pytest

from agents.errors import ModelBusy
from agents.llm.engine import Engine
from agents.llm.jobs import Job
from agents.llm.native import ContextConfig, NativeModel
from agents.llm.sampling import TokenSampler

pytestmark = [pytest.mark.model, pytest.mark.anyio]
Wait = Callable[..., Awaitable[Job]]
PROMPTS = [
    "The capital of France is",
    "A good negotiator always",
    "Steel prices rose because",
    "The factory scheduled",
    "Once upon a time",
]


def _job(model: NativeModel, text: str, n: int = 12, *, temperature: float = 0.0, seed: int = 0, **kw: object) -> Job:
    return Job(prompt=model.tokenize(text), max_tokens=n, sampler=TokenSampler(temperature, seed), **kw)  # type: ignore[arg-type]


async def test_batched_and_single_stream_give_the_same_tokens(weights: NativeModel, wait_done: Wait) -> None:
    temperature = 0.0
    config = ContextConfig(n_ctx=1024, n_seq=8, n_batch=256)
    single, batched = Engine(weights, config), Engine(weights, config)
    try:
        alone = await wait_done(single.submit(_job(weights, PROMPTS[0], temperature=temperature, seed=7)))
        jobs = [batched.submit(_job(weights, p, temperature=temperature, seed=7)) for p in PROMPTS]
        for job in jobs:
            await wait_done(job)
        assert alone.result is not None and jobs[0].result is not None
        assert len(alone.result.tokens) == 12
        assert jobs[0].result.tokens == alone.result.tokens
        # the jobs really shared steps: fewer decode steps than tokens produced
        assert batched.stats().steps < sum(len(j.result.tokens) for j in jobs if j.result)
    finally:
        single.close()
        batched.close()


async def test_cancel_mid_generation_frees_the_slot(engine: Engine, weights: NativeModel, wait_done: Wait) -> None:
    started = threading.Event()
    job = engine.submit(_job(weights, PROMPTS[1], 500, on_token=lambda _t: started.set()))
    with anyio.fail_after(30):
        await anyio.to_thread.run_sync(started.wait, abandon_on_cancel=True)
    assert engine.stats().active == 1
    engine.cancel(job)
    await wait_done(job)
    assert job.result is not None and job.result.stop_reason == "cancelled"
    assert len(job.result.tokens) < 500
    stats = engine.stats()
    assert (stats.active, stats.kv_tokens, stats.cached_slots) == (0, 0, 0)
    # the freed slot serves the next job at once
    assert (await wait_done(engine.submit(_job(weights, PROMPTS[2], 4)))).result is not None


async def test_queue_limit_answers_busy_not_a_hang(weights: NativeModel, wait_done: Wait) -> None:
    engine = Engine(weights, ContextConfig(n_ctx=1024, n_seq=1, n_batch=128), max_queue=1)
    try:
        running = engine.submit(_job(weights, PROMPTS[0], 400))
        queued = engine.submit(_job(weights, PROMPTS[1], 400))
        t0 = time.monotonic()
        with pytest.raises(ModelBusy, match="busy"):
            engine.submit(_job(weights, PROMPTS[2], 4))
        assert time.monotonic() - t0 < 1.0  # answered at once, not after a wait
        for job in (running, queued):
            engine.cancel(job)
            await wait_done(job)
        assert (await wait_done(engine.submit(_job(weights, PROMPTS[2], 4)))).result is not None
    finally:
        engine.close()


async def test_next_turn_reuses_the_session_kv(engine: Engine, weights: NativeModel, wait_done: Wait) -> None:
    history = "Buyer and seller negotiate the price of 100 steel beams.\nBuyer: I offer 90 per beam.\nSeller:"
    first = await wait_done(engine.submit(_job(weights, history, 8, session_id="a")))
    assert first.result is not None and first.result.cached_tokens == 0
    history += first.result.text + "\nBuyer: 95 is my last offer.\nSeller:"
    second = await wait_done(engine.submit(_job(weights, history, 8, session_id="a")))
    assert second.result is not None
    assert second.result.cached_tokens >= len(first.prompt) - 1
    assert second.result.prompt_tokens - second.result.cached_tokens < 20


async def test_agents_share_a_common_prefix(engine: Engine, weights: NativeModel, wait_done: Wait) -> None:
    system = "You are a supplier agent in a smart factory. Answer with one short sentence. " * 4
    one = await wait_done(engine.submit(_job(weights, system + "Order: 10 gears.", 4, session_id="s1")))
    two = await wait_done(engine.submit(_job(weights, system + "Order: 3 motors.", 4, session_id="s2")))
    assert one.result is not None and two.result is not None
    assert two.result.cached_tokens >= len(weights.tokenize(system)) - 2


async def test_deadline_stops_generation(engine: Engine, weights: NativeModel, wait_done: Wait) -> None:
    job = await wait_done(engine.submit(_job(weights, PROMPTS[3], 2000, deadline=time.monotonic() + 0.3)))
    assert job.result is not None and job.result.stop_reason == "timeout"
    assert len(job.result.tokens) < 2000


async def test_prompt_longer_than_the_context_is_refused(engine: Engine, weights: NativeModel) -> None:
    with pytest.raises(ValueError, match="exceeds the context"):
        engine.submit(_job(weights, "word " * 3000, 8))
