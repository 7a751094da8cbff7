"""Agent core: typed skills, input validation, schema-constrained generation with retries, deadlines, usage."""

from __future__ import annotations

import anyio
import pytest
from pydantic import BaseModel, Field

from agents import (
    Agent,
    DeadlineExceeded,
    InvalidModelOutput,
    Scripted,
    SkillContext,
    SkillInputError,
    SkillNotFound,
)
from agents.examples import Classification, EchoIn, EchoOut, echo_agent, triage_agent

pytestmark = pytest.mark.anyio


class Quote(BaseModel):
    price: float = Field(gt=0, le=1000)
    days: int = Field(ge=1, le=60)


class QuoteRequest(BaseModel):
    item: str


def quoting_agent(brain: Scripted) -> Agent:
    agent = Agent("quoter", "Quotes prices", brain=brain)

    @agent.skill(tags=["quote"])
    async def quote(ctx: SkillContext, req: QuoteRequest) -> Quote:
        """Quote a price and lead time."""
        return await ctx.generate(f"Quote for {req.item}:", Quote, retries=2)

    return agent


async def test_skill_types_come_from_hints_and_appear_on_the_card() -> None:
    agent = echo_agent()
    skill = agent.skills["echo"]
    assert skill.input_model is EchoIn and skill.output_model is EchoOut
    assert skill.description == "Repeat the text back with its length."
    card = agent.card("http://127.0.0.1:9/")
    assert card.wire()["supportedInterfaces"][0] == {
        "url": "http://127.0.0.1:9/",
        "protocolBinding": "JSONRPC",
        "protocolVersion": "1.0",
    }
    assert card.skills[0].id == "echo" and card.skills[0].tags == ["echo"]


async def test_call_validates_input_and_names_the_field() -> None:
    agent = echo_agent()
    result, _ = await agent.call("echo", {"text": "hi"})
    assert result == EchoOut(text="hi", length=2)
    with pytest.raises(SkillInputError, match="text"):
        await agent.call("echo", {"txt": "hi"})
    with pytest.raises(SkillNotFound, match="it has: echo"):
        await agent.call("nope", {"text": "hi"})


async def test_plain_text_fills_a_single_string_field() -> None:
    result, _ = await echo_agent().call(None, "hello")
    assert result == EchoOut(text="hello", length=5)


async def test_invalid_model_output_is_retried_then_accepted() -> None:
    brain = Scripted(['{"price": -3, "days": 4}', "not json", {"price": 12.5, "days": 4}])
    result, usage = await quoting_agent(brain).call("quote", {"item": "gear"})
    assert result == Quote(price=12.5, days=4)
    assert usage.calls == 3
    assert [r.seed for r in brain.requests] == [0, 1, 2]  # each retry samples differently
    assert brain.requests[0].json_schema == Quote.model_json_schema()


async def test_invalid_model_output_never_passes_after_the_retry_budget() -> None:
    brain = Scripted(['{"price": 5000, "days": 4}'], cycle=True)
    with pytest.raises(InvalidModelOutput, match="price"):
        await quoting_agent(brain).call("quote", {"item": "gear"})
    assert len(brain.requests) == 3


async def test_deadline_stops_a_slow_skill() -> None:
    agent = Agent("slow", "Sleeps")

    @agent.skill()
    async def wait(ctx: SkillContext, req: EchoIn) -> EchoOut:
        await anyio.sleep(10)
        return EchoOut(text="late", length=4)

    ctx = SkillContext(None, deadline=anyio.current_time() + 0.05)
    with anyio.fail_after(5), pytest.raises(DeadlineExceeded):
        await agent.call("wait", {"text": "x"}, ctx=ctx)


async def test_skill_declarations_are_checked() -> None:
    agent = Agent("bad", "Bad skills")
    with pytest.raises(TypeError, match="async"):

        @agent.skill()
        def sync_skill(ctx: SkillContext, req: EchoIn) -> EchoOut:  # type: ignore[type-var]
            return EchoOut(text="", length=0)

    with pytest.raises(TypeError, match="pydantic"):

        @agent.skill()
        async def untyped(ctx: SkillContext, req: dict) -> EchoOut:  # type: ignore[type-var]
            return EchoOut(text="", length=0)

    with pytest.raises(ValueError, match="name"):
        Agent("has space", "x")


@pytest.mark.model
async def test_real_model_gives_schema_valid_output() -> None:
    from agents.llm import LlamaCpp

    result, usage = await triage_agent(LlamaCpp()).call("classify", {"text": "We were charged twice"})
    assert isinstance(result, Classification)
    assert result.department in {"sales", "support", "billing"}
    assert usage.model == "gemma-3-270m-q4_k_m.gguf"
    assert usage.calls >= 1 and usage.prompt_tokens > 50 and usage.completion_tokens > 0
    assert usage.wall_seconds > 0 and usage.cpu_seconds > 0
