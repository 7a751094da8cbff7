"""``LlamaCpp`` on the engine: the Brain contract, constrained output, sessions, back-pressure, cancellation."""

from __future__ import annotations

import json

import anyio
import pytest
from pydantic import BaseModel

from agents.errors import ModelBusy
from agents.llm import Brain, ContextConfig, GenerationRequest, LlamaCpp
from agents.llm.pool import ModelPool

pytestmark = [pytest.mark.model, pytest.mark.anyio]


class Offer(BaseModel):
    item: str
    price: int


def _brain(pool: ModelPool, **kw: object) -> LlamaCpp:
    return LlamaCpp(pool=pool, context=ContextConfig(n_ctx=2048, n_seq=4, n_batch=256), **kw)  # type: ignore[arg-type]


async def test_default_brain_contract_and_usage(model_pool: ModelPool) -> None:
    brain = _brain(model_pool)
    assert isinstance(brain, Brain) and brain.model_name.endswith(".gguf")
    with anyio.fail_after(30):
        out = await brain.generate(GenerationRequest(prompt="The capital of France is", max_tokens=6))
    u = out.usage
    assert (u.model, u.calls, u.completion_tokens) == (brain.model_name, 1, len(out.token_ids))
    assert u.prompt_tokens > 0 and u.wall_seconds > 0 and u.cpu_seconds > 0 and out.text


async def test_json_schema_output_validates(model_pool: ModelPool) -> None:
    with anyio.fail_after(30):
        out = await _brain(model_pool).generate(
            GenerationRequest(
                prompt="Offer 10 steel beams as JSON:", json_schema=Offer.model_json_schema(), max_tokens=48
            )
        )
    assert out.stop_reason == "stop"  # ended at the closing brace, not at max_tokens
    Offer.model_validate_json(out.text)


async def test_choices_and_enum_schema_give_exactly_one_option(model_pool: ModelPool) -> None:
    brain = _brain(model_pool)
    with anyio.fail_after(30):
        a = await brain.generate(GenerationRequest(prompt="Accept the offer? Answer:", choices=["accept", "reject"]))
        b = await brain.generate(
            GenerationRequest(prompt="Decision:", json_schema={"enum": ["counter", "walk away"]}, max_tokens=8)
        )
    assert a.text in {"accept", "reject"}
    assert json.loads(b.text) in {"counter", "walk away"}


async def test_turn_ten_reuses_the_conversation(model_pool: ModelPool) -> None:
    brain = _brain(model_pool)
    history = "A buyer and a seller negotiate the price of gears.\n"
    cached = []
    with anyio.fail_after(60):
        for turn in range(10):
            history += f"Buyer: turn {turn}, I offer {80 + turn}.\nSeller:"
            out = await brain.generate(GenerationRequest(prompt=history, max_tokens=6, session_id="neg-1"))
            history += out.text + "\n"
            cached.append((out.usage.prompt_tokens, out.cached_tokens))
    prompt_tokens, reused = cached[-1]
    assert prompt_tokens - reused < 40, cached


async def test_busy_past_the_queue_and_cancel_frees(model_pool: ModelPool) -> None:
    brain = LlamaCpp(pool=model_pool, context=ContextConfig(n_ctx=1024, n_seq=1, n_batch=128), max_queue=0)
    engine = await anyio.to_thread.run_sync(brain.engine)
    long = GenerationRequest(prompt="Write a long story:", max_tokens=400)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(brain.generate, long)
            while engine.stats().active + engine.stats().waiting == 0:
                await anyio.lowlevel.checkpoint()
            with pytest.raises(ModelBusy):
                await brain.generate(GenerationRequest(prompt="hi", max_tokens=2))
            tg.cancel_scope.cancel()
        while engine.stats().active:
            await anyio.lowlevel.checkpoint()
    assert engine.stats().kv_tokens == 0
