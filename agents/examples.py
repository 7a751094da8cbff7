"""Small ready-made agents used by the demo, the docs and the tests."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.agent import Agent, SkillContext
from agents.llm.base import Brain

__all__ = ["EchoIn", "EchoOut", "echo_agent", "Inquiry", "Classification", "triage_agent"]


class EchoIn(BaseModel):
    text: str = Field(max_length=10_000)


class EchoOut(BaseModel):
    text: str
    length: int


def echo_agent(name: str = "echo") -> Agent:
    """An agent without a model: repeats its input. Useful for plumbing tests and benchmarks."""
    agent = Agent(name, "Repeats the text it is given", tags=["test"])

    @agent.skill(tags=["echo"], examples=["hello"])
    async def echo(ctx: SkillContext, req: EchoIn) -> EchoOut:
        """Repeat the text back with its length."""
        return EchoOut(text=req.text, length=len(req.text))

    return agent


class Inquiry(BaseModel):
    text: str = Field(min_length=1, max_length=2_000, description="a customer message")


class Classification(BaseModel):
    department: str = Field(pattern="^(sales|support|billing)$")
    urgent: bool


def triage_agent(brain: Brain, name: str = "triage") -> Agent:
    """A small-model agent: routes a customer message to sales, support or billing."""
    agent = Agent(name, "Routes customer messages to the right department", brain=brain, tags=["triage"])

    @agent.skill(tags=["classify", "customer-service"], examples=["My invoice is wrong"])
    async def classify(ctx: SkillContext, req: Inquiry) -> Classification:
        """Classify a customer message into a department and an urgency."""
        prompt = (
            "Route each customer message to a department (sales, support or billing) in JSON.\n"
            'Message: "I want to buy 40 more units" -> {"department": "sales", "urgent": false}\n'
            'Message: "The machine is down, production stopped!" -> {"department": "support", "urgent": true}\n'
            'Message: "We were charged twice this month" -> {"department": "billing", "urgent": false}\n'
            f'Message: "{req.text}" -> '
        )
        return await ctx.generate(prompt, Classification, max_tokens=40)

    return agent
