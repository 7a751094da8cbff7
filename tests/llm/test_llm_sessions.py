"""Generation sessions: an A2A contextId is the KV session of every model call its tasks make, so turn two of a
conversation evaluates only its new text; a busy model fails the task (retryable), it does not reject it."""

from __future__ import annotations

from typing import Literal

import anyio
import anyio.to_thread
import pytest
from pydantic import BaseModel

from agents.agent import Agent, SkillContext
from agents.client import LocalAgentClient, skill_message
from agents.errors import ModelBusy
from agents.llm import Completion, ContextConfig, GenerationRequest, LlamaCpp, Scripted
from agents.llm.pool import ModelPool
from protocol.a2a import TaskState

pytestmark = pytest.mark.anyio


class Offer(BaseModel):
    price: int


class Decision(BaseModel):
    decision: Literal["accept", "counter", "reject"]


class Recording:
    """A brain that passes every request to ``inner`` and keeps (request, completion) pairs."""

    def __init__(self, inner: LlamaCpp | Scripted) -> None:
        self.inner = inner
        self.calls: list[tuple[GenerationRequest, Completion]] = []

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    async def generate(self, request: GenerationRequest) -> Completion:
        completion = await self.inner.generate(request)
        self.calls.append((request, completion))
        return completion


class Busy:
    """A brain whose engine queue is always full."""

    model_name = "busy"

    async def generate(self, request: GenerationRequest) -> Completion:
        raise ModelBusy("model busy is busy: 2 running and 4 queued (limit 2+4); retry later or use another agent")


def negotiator(brain: object) -> Agent:
    """``decide``: one buyer turn per message; the conversation so far is kept per A2A context."""
    agent = Agent("seller", "Answers price offers; test agent for sessions", brain=brain)  # type: ignore[arg-type]
    history: dict[str, str] = {}

    @agent.skill()
    async def decide(ctx: SkillContext, req: Offer) -> Decision:
        """Accept, counter or reject the buyer's offer."""
        opening = "A seller of steel beams answers a buyer. Each answer is JSON with one decision.\n"
        prompt = history.get(ctx.context_id, opening) + f"Buyer offers {req.price} per beam.\nSeller decision:\n"
        reply = await ctx.generate(prompt, Decision, max_tokens=24, retries=0)
        history[ctx.context_id] = prompt + reply.model_dump_json() + "\n"
        return reply

    return agent


async def test_skill_context_passes_the_context_id_as_session() -> None:
    brain = Scripted([Decision(decision="accept")], cycle=True)
    await SkillContext(brain, context_id="ctx-1").generate("Offer 90?", Decision)
    await SkillContext(brain, context_id="ctx-1").complete("Say hi")
    await SkillContext(brain, context_id="ctx-1").generate("Offer 90?", Decision, session_id="mine")
    await SkillContext(brain).generate("Offer 90?", Decision)
    await SkillContext(brain, context_id="c" * 500).complete("Say hi")
    sessions = [r.session_id for r in brain.requests]
    assert sessions[:4] == ["ctx-1", "ctx-1", "mine", None]
    assert sessions[4] is not None and sessions[4].startswith("context-sha256:") and len(sessions[4]) <= 200


async def test_turns_of_one_a2a_context_share_a_session_and_other_contexts_do_not() -> None:
    brain = Recording(Scripted([Decision(decision="counter")], cycle=True))
    with anyio.fail_after(20):
        async with LocalAgentClient(negotiator(brain)) as client:
            for price in (90, 95):
                task = await client.send_message(skill_message("decide", {"price": price}, context_id="deal-7"))
                assert task.status.state == TaskState.COMPLETED
            other = await client.send_message(skill_message("decide", {"price": 80}))
    sessions = [request.session_id for request, _ in brain.calls]
    assert sessions == ["deal-7", "deal-7", other.context_id] and other.context_id != "deal-7"
    first, second = (request.prompt for request, _ in brain.calls[:2])
    assert second.startswith(first)  # turn two extends turn one: the part a KV session can reuse


async def test_a_busy_model_fails_the_task_retryably_not_as_bad_input() -> None:
    with anyio.fail_after(20):
        async with LocalAgentClient(negotiator(Busy())) as client:
            task = await client.send_message(skill_message("decide", {"price": 90}))
    assert task.status.state == TaskState.FAILED  # the orchestrator retries FAILED; REJECTED it would not
    assert task.status.message is not None and task.status.message.text().startswith("ModelBusy: ")


@pytest.mark.model
async def test_turn_two_reuses_turn_one_kv_although_other_agents_ran_between(model_pool: ModelPool) -> None:
    """Four other agents' calls between the turns would take an anonymous cache's slot (n_seq=4); the
    conversation's own slot survives because its session names it, so turn two evaluates only new text."""
    llama = LlamaCpp(pool=model_pool, context=ContextConfig(n_ctx=768, n_seq=4, n_batch=256))
    brain = Recording(llama)
    engine = await anyio.to_thread.run_sync(llama.engine)
    with anyio.fail_after(120):
        async with LocalAgentClient(negotiator(brain)) as client:
            first = await client.send_message(skill_message("decide", {"price": 90}, context_id="deal-1"))
            for i in range(4):
                await llama.generate(GenerationRequest(prompt=f"Agent {i} reports on order {i}:", max_tokens=2))
            before = engine.stats()
            second = await client.send_message(skill_message("decide", {"price": 95}, context_id="deal-1"))
    assert first.status.state == second.status.state == TaskState.COMPLETED
    (_, turn1), (request2, turn2) = brain.calls[0], brain.calls[-1]
    assert request2.session_id == "deal-1"
    assert turn2.cached_tokens >= turn1.usage.prompt_tokens - 2, (turn1.usage, turn2.cached_tokens)
    assert turn2.usage.prompt_tokens - turn2.cached_tokens < 30
    after = engine.stats()
    assert after.cached_tokens - before.cached_tokens == turn2.cached_tokens
