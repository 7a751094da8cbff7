"""Retries that change something: after invalid output, ``ctx.generate`` tells the model what was wrong and samples
(temperature > 0, another seed) instead of asking the same greedy question again; the first attempt is unchanged."""

from __future__ import annotations

import json

import anyio
import pytest
from pydantic import BaseModel, Field, field_validator

from agents.agent import SkillContext
from agents.errors import InvalidModelOutput
from agents.llm.base import Completion, GenerationRequest
from agents.llm.scripted import Scripted

pytestmark = pytest.mark.anyio

PROMPT = "Quote for 40 gearboxes.\nJSON:"


class Quote(BaseModel):
    price: float = Field(gt=0, le=1000)
    days: int = Field(ge=1, le=60)


async def test_a_retry_carries_the_error_and_samples_with_another_seed() -> None:
    brain = Scripted(['{"price": -3, "days": 4}', {"price": 12.5, "days": 4}])
    ctx = SkillContext(brain)
    assert await ctx.generate(PROMPT, Quote, seed=7) == Quote(price=12.5, days=4)
    first, retry = brain.requests
    assert (first.prompt, first.temperature, first.seed) == (PROMPT, 0.0, 7), "the first attempt is as before"
    assert retry.prompt.startswith(PROMPT), "the retry keeps the prompt (its cached prefix) and adds to it"
    feedback = retry.prompt.removeprefix(PROMPT)
    assert feedback.startswith(' {"price": -3, "days": 4}\nThat answer was invalid: price: '), "the refused answer"
    assert "greater than 0" in feedback, "the validation error is in the prompt"
    assert feedback.endswith("Answer again.\nJSON:"), "the prompt's cue (its last line) comes again"
    assert retry.temperature > 0, "the retry samples"
    assert retry.seed != first.seed
    assert retry.json_schema == first.json_schema == Quote.model_json_schema()
    assert ctx.usage.calls == 2


async def test_each_retry_carries_the_latest_error_only() -> None:
    brain = Scripted(['{"price": -3, "days": 4}', "not json", {"price": 9, "days": 2}])
    await SkillContext(brain).generate(PROMPT, Quote, retries=2)
    third = brain.requests[2]
    assert third.prompt.count("answer was invalid") == 1 and "not json" in third.prompt
    assert "JSON" in third.prompt.removeprefix(PROMPT) and "greater than 0" not in third.prompt
    assert len({r.seed for r in brain.requests}) == 3 and third.temperature > 0


async def test_a_caller_temperature_above_the_retry_temperature_is_kept_and_retries_can_be_greedy() -> None:
    hot = Scripted(["{}", {"price": 1, "days": 1}])
    await SkillContext(hot).generate(PROMPT, Quote, temperature=1.2)
    assert [r.temperature for r in hot.requests] == [1.2, 1.2]
    greedy = Scripted(["{}", {"price": 1, "days": 1}])
    await SkillContext(greedy).generate(PROMPT, Quote, retry_temperature=0.0)
    assert [r.temperature for r in greedy.requests] == [0.0, 0.0]
    assert "answer was invalid" in greedy.requests[1].prompt


async def test_a_few_shot_prompt_gets_its_last_line_again() -> None:
    prompt = 'Message: "hi" -> {"price": 1, "days": 1}\nMessage: "40 gearboxes" -> '
    brain = Scripted(['{"price": 0, "days": 1}', {"price": 2, "days": 1}])
    await SkillContext(brain).generate(prompt, Quote)
    retry = brain.requests[1].prompt
    assert retry.startswith(prompt + '{"price": 0, "days": 1}\nThat answer was invalid: price')
    assert retry.endswith('Answer again.\nMessage: "40 gearboxes" -> ')


async def test_invalid_output_still_never_passes() -> None:
    brain = Scripted(['{"price": 5000, "days": 4}'], cycle=True)
    with pytest.raises(InvalidModelOutput, match="failed Quote validation 3 times"):
        await SkillContext(brain).generate(PROMPT, Quote, retries=2)
    assert len(brain.requests) == 3


class _Recording:
    """Wraps a brain and keeps each completion's text."""

    def __init__(self, brain: object) -> None:
        self.brain = brain
        self.texts: list[str] = []

    @property
    def model_name(self) -> str:
        return self.brain.model_name  # type: ignore[attr-defined, no-any-return]

    async def generate(self, request: GenerationRequest) -> Completion:
        completion: Completion = await self.brain.generate(request)  # type: ignore[attr-defined]
        self.texts.append(completion.text)
        return completion


def _refusing_the_first_answer() -> type[BaseModel]:
    """A model whose validator refuses the first colour it sees, and that colour every time after."""
    refused: list[str] = []

    class Colour(BaseModel):
        colour: str = Field(min_length=1, max_length=16)

        @field_validator("colour")
        @classmethod
        def _not_the_first(cls, value: str) -> str:
            if not refused:
                refused.append(value)
            if value == refused[0]:
                raise ValueError(f"{value!r} is taken, name another colour")
            return value

    return Colour


@pytest.mark.model
async def test_with_the_real_model_a_retry_after_a_refused_answer_gives_another_answer() -> None:
    from agents.llm import LlamaCpp

    brain = _Recording(LlamaCpp())
    colour = _refusing_the_first_answer()
    with anyio.fail_after(120):
        result = await SkillContext(brain).generate(  # type: ignore[arg-type]
            "Name one colour of the rainbow.\nJSON:", colour, max_tokens=24, retries=2, seed=3
        )
    refused = json.loads(brain.texts[0])["colour"]
    assert len(brain.texts) >= 2, "the first answer was refused, so there was a retry"
    assert result.colour != refused, "a retry gave another answer instead of repeating the refused one"  # type: ignore[attr-defined]
