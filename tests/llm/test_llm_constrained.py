"""Constrained decoding on the real model: outputs are schema-valid and the fast greedy path is exact.

The fast path (argmax first, then growing candidate sets) must pick token for token what masking the whole
vocabulary at every step (``TokenSampler(exhaustive=True)``) picks.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from agents.llm.constraints import GrammarConstraint
from agents.llm.engine import Engine, EngineConfig
from agents.llm.jobs import Job
from agents.llm.native import ContextConfig, NativeModel
from agents.llm.sampling import TokenSampler

pytestmark = [pytest.mark.model, pytest.mark.anyio]
Wait = Callable[..., Awaitable[Job]]


class Shipment(BaseModel):
    carrier: str = Field(max_length=24)
    pallets: list[int] = Field(max_length=3)
    priority: Literal["low", "normal", "high"]


SKILL = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["accept", "counter", "reject"]},
        "urgent": {"type": "boolean"},
        "quantity": {"type": "integer"},
        "price": {"type": "number"},
        "note": {"type": "string", "maxLength": 40},
    },
    "required": ["action", "urgent", "quantity", "price", "note"],
}
CASES: list[tuple[str, dict[str, Any]]] = [
    ("A supplier answers a buyer's offer of 100 gears at 9.5 each. Reply as JSON:", SKILL),
    ("Plan the shipment of 40 pallets of steel to Hamburg. As JSON:", Shipment.model_json_schema()),
    (
        "List three machines of the plant with their load in percent. As JSON:",
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 16}, "load": {"type": "integer"}},
                "required": ["name", "load"],
            },
            "maxItems": 3,
        },
    ),
]


def _job(model: NativeModel, prompt: str, schema: dict[str, Any], sampler: TokenSampler) -> Job:
    return Job(
        prompt=model.tokenize(prompt),
        max_tokens=96,
        sampler=sampler,
        constraint=GrammarConstraint.from_schema(model, schema),
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("prompt", "schema"), CASES, ids=["skill", "pydantic", "array"])
async def test_fast_greedy_equals_the_exhaustive_mask_and_validates(
    weights: NativeModel, wait_done: Wait, prompt: str, schema: dict[str, Any]
) -> None:
    # both jobs run side by side in one engine: same fresh prefill, same batched decode steps; every token sampled
    # (jump-forward off), so the exhaustive reference masks the whole vocabulary at every step
    engine = Engine(weights, ContextConfig(n_ctx=1024, n_seq=2, n_batch=256), options=EngineConfig(jump_forward=False))
    try:
        fast = engine.submit(_job(weights, prompt, schema, TokenSampler()))
        slow = engine.submit(_job(weights, prompt, schema, TokenSampler(exhaustive=True)))
        await wait_done(fast, 400)
        await wait_done(slow, 400)
    finally:
        engine.close()
    assert fast.result is not None and slow.result is not None, (fast.error, slow.error)
    assert fast.result.stop_reason == "stop", fast.result.text  # the JSON value closed before max_tokens
    jsonschema.validate(json.loads(fast.result.text), schema)
    assert fast.result.tokens == slow.result.tokens
    assert slow.sampler.fallbacks == len(slow.result.tokens)  # the reference really masked every step
    assert fast.sampler.fallbacks <= 2


async def test_sampled_constrained_output_validates(weights: NativeModel, wait_done: Wait) -> None:
    prompt, schema = CASES[0]
    engine = Engine(weights, ContextConfig(n_ctx=1024, n_seq=2, n_batch=256))  # jump-forward on (the default)
    try:
        jobs = [engine.submit(_job(weights, prompt, schema, TokenSampler(0.8, seed))) for seed in (1, 2)]
        for job in jobs:
            await wait_done(job, 240)
    finally:
        engine.close()
    for job in jobs:
        assert job.result is not None and job.result.stop_reason == "stop", job.error
        jsonschema.validate(json.loads(job.result.text), schema)
