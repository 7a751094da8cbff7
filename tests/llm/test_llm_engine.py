"""The batching engine on the real model: batched == single-stream, cancellation, back-pressure, KV reuse,
admission by KV cells (a flood of long prompts queues instead of failing)."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt
import pytest

from agents.errors import ModelBusy
from agents.llm.constraints import Constraint
from agents.llm.engine import ContextOverflow, Engine, EngineStats
from agents.llm.jobs import Job
from agents.llm.native import ContextConfig, NativeModel
from agents.llm.sampling import TokenSampler
from tests.llm.test_mixed_batch import MarginSampler, assert_same_until_a_near_tie

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


async def test_batched_and_single_stream_agree_until_a_near_tie(weights: NativeModel, wait_done: Wait) -> None:
    """Greedy, the same tokens as alone up to a near-tie (mixed prompt rows change float rounding only)."""
    config = ContextConfig(n_ctx=1024, n_seq=8, n_batch=256)
    single, batched = Engine(weights, config), Engine(weights, config)
    try:
        alone = await wait_done(
            single.submit(Job(prompt=weights.tokenize(PROMPTS[0]), max_tokens=12, sampler=MarginSampler()))
        )
        jobs = [batched.submit(_job(weights, p)) for p in PROMPTS]
        for job in jobs:
            await wait_done(job)
        assert alone.result is not None and jobs[0].result is not None
        assert len(alone.result.tokens) == 12
        assert_same_until_a_near_tie(alone, jobs[0])
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


async def test_prompt_longer_than_the_context_fails_at_once_naming_the_sizes(
    engine: Engine, weights: NativeModel
) -> None:
    prompt = weights.tokenize("word " * 3000)[:2100]
    t0 = time.monotonic()
    with pytest.raises(
        ContextOverflow, match=r"prompt \(2100 tokens\) \+ max_tokens \(8\) = 2108 KV cells exceeds the "
    ):
        engine.submit(Job(prompt=prompt, max_tokens=8, sampler=TokenSampler()))
    assert time.monotonic() - t0 < 1.0
    with pytest.raises(ContextOverflow, match=r"\(2048 cells"):
        engine.submit(Job(prompt=prompt[:2000], max_tokens=100, sampler=TokenSampler()))
    assert engine.stats().waiting == 0


class _NeverEnds(TokenSampler):
    """Greedy, but never an end-of-generation token: the job runs until max_tokens or cancellation."""

    def __init__(self, model: NativeModel) -> None:
        super().__init__()
        self._eog = np.fromiter(model.eog, dtype=np.int64)

    def pick(self, logits: npt.NDArray[np.float32], constraint: Constraint | None = None) -> int:
        masked = logits.copy()
        masked[self._eog] = -np.inf
        return int(np.argmax(masked))


def _sized(model: NativeModel, seed: int, prompt_tokens: int, max_tokens: int, **kw: object) -> Job:
    """A job of exactly ``prompt_tokens`` prompt tokens (seeded words, no prefix shared beyond BOS)."""
    words = np.random.default_rng(seed).choice(["gear", "steel", "order", "price", "motor", "ship", "plan"], 900)
    prompt = model.tokenize(f"{seed} " + " ".join(words))[:prompt_tokens]
    assert len(prompt) == prompt_tokens
    return Job(prompt=prompt, max_tokens=max_tokens, sampler=_NeverEnds(model), **kw)  # type: ignore[arg-type]


async def test_a_flood_of_long_prompts_queues_and_all_complete(weights: NativeModel, wait_done: Wait) -> None:
    """8 concurrent jobs each needing ~40% of the KV cells: at most 2 run at once, none fails."""
    config = ContextConfig(n_ctx=256, n_seq=8, n_batch=256)
    engine = Engine(weights, config, max_queue=0)
    seen: list[EngineStats] = []
    try:
        jobs = [
            engine.submit(_sized(weights, i, 80, 20, on_token=lambda _t: seen.append(engine.stats()))) for i in range(8)
        ]
        for job in jobs:
            await wait_done(job, 120)
        for job in jobs:
            assert job.error is None, job.error
            assert job.result is not None and job.result.stop_reason == "length"
            assert len(job.result.tokens) == 20
        assert max(s.active for s in seen) == 2  # 256 // (80 + 20)
        assert max(s.kv_cells + s.kv_reserved for s in seen) <= config.n_ctx
        assert min(s.waiting for s in seen[:10]) >= 5  # the others were queued, not started and failed
    finally:
        engine.close()


async def test_full_queue_answers_busy_while_cell_blocked_jobs_wait(weights: NativeModel, wait_done: Wait) -> None:
    """A long job holds most cells; four that need half the context wait (not run, not fail); the next one is
    refused with ModelBusy at once; cancelling the waiting ones ends them at the next step."""
    engine = Engine(weights, ContextConfig(n_ctx=512, n_seq=4, n_batch=256), max_queue=1)
    started = threading.Event()
    try:
        running = engine.submit(_sized(weights, 0, 50, 400, on_token=lambda _t: started.set()))
        waiting = [engine.submit(_sized(weights, i, 150, 100)) for i in (1, 2, 3, 4)]
        with anyio.fail_after(90):
            await anyio.to_thread.run_sync(started.wait, abandon_on_cancel=True)
        stats = engine.stats()
        assert (stats.active, stats.waiting) == (1, 4)
        t0 = time.monotonic()
        with pytest.raises(ModelBusy, match=r"busy: 1 running and 4 queued \(limit 4\+1\)"):
            engine.submit(_sized(weights, 5, 10, 4))
        assert time.monotonic() - t0 < 1.0
        for job in waiting:
            engine.cancel(job)
        for job in waiting:
            await wait_done(job)
            assert job.result is not None and job.result.stop_reason == "cancelled" and not job.result.tokens
        assert running.result is None  # the running job went on
        engine.cancel(running)
        await wait_done(running)
        assert engine.stats().kv_reserved == 0
    finally:
        engine.close()


async def test_cancelled_running_job_is_dropped_at_the_next_step(weights: NativeModel, wait_done: Wait) -> None:
    engine = Engine(weights, ContextConfig(n_ctx=512, n_seq=4, n_batch=256))
    tokens = threading.Event()
    try:
        job = engine.submit(_sized(weights, 0, 100, 300, on_token=lambda _t: tokens.set()))
        with anyio.fail_after(90):
            await anyio.to_thread.run_sync(tokens.wait, abandon_on_cancel=True)
        before = engine.stats()
        assert before.kv_cells >= 100 and before.kv_reserved > 0
        engine.cancel(job)
        await wait_done(job)
        after = engine.stats()
        assert job.result is not None and job.result.stop_reason == "cancelled"
        assert after.steps - before.steps <= 2  # the step running when cancelled, then the next one drops it
        assert (after.active, after.kv_cells, after.kv_reserved) == (0, 0, 0)
    finally:
        engine.close()


async def test_a_waiting_big_job_is_passed_by_at_most_max_bypass_small_ones(
    weights: NativeModel, wait_done: Wait
) -> None:
    engine = Engine(weights, ContextConfig(n_ctx=512, n_seq=8, n_batch=256), max_bypass=2)
    when_d_started: list[EngineStats] = []
    d_started = threading.Event()

    def on_d_token(_t: int) -> None:
        if not d_started.is_set():
            when_d_started.append(engine.stats())
            d_started.set()

    try:
        a = engine.submit(_sized(weights, 0, 10, 290))  # 300 of 512 cells
        b = engine.submit(_sized(weights, 1, 200, 50))  # 250: waits for a
        c = engine.submit(_sized(weights, 2, 10, 50))  # 60 each: c and d pass b, e may not
        d = engine.submit(_sized(weights, 3, 10, 50, on_token=on_d_token))
        e = engine.submit(_sized(weights, 4, 10, 50))
        with anyio.fail_after(90):
            await anyio.to_thread.run_sync(d_started.wait, abandon_on_cancel=True)
        assert (when_d_started[0].active, when_d_started[0].waiting) == (3, 2)  # a, c, d run; b and e wait
        assert (b.bypassed, e.slot) == (2, None)
        engine.cancel(a)
        for job in (b, c, d, e):
            await wait_done(job, 120)
            assert job.result is not None and job.result.stop_reason == "length", job.error
    finally:
        engine.close()


async def test_two_calls_of_one_session_run_side_by_side(engine: Engine, weights: NativeModel, wait_done: Wait) -> None:
    """A session's second call while its first runs takes another slot instead of waiting; the session keeps
    one slot (the first's), so the next turn finds its cache there."""
    second_started: list[EngineStats] = []
    first = engine.submit(_sized(weights, 0, 40, 60, session_id="deal-9"))
    second = engine.submit(
        _sized(weights, 1, 40, 20, session_id="deal-9", on_token=lambda _t: second_started.append(engine.stats()))
    )
    for job in (first, second):
        await wait_done(job, 60)
        assert job.result is not None and job.result.stop_reason == "length"
    assert second_started[0].active == 2  # ran beside the first, not after it
    assert first.slot is not None and second.slot is not None and first.slot is not second.slot
    assert (first.slot.session, second.slot.session) == ("deal-9", None)
    again = await wait_done(
        engine.submit(Job(prompt=first.prompt + [236761], max_tokens=2, sampler=TokenSampler(), session_id="deal-9"))
    )
    assert again.slot is first.slot and again.result is not None and again.result.cached_tokens == 40
