"""A model agent: reads a purchase order out of an e-mail into a schema, with the bundled small model.

The model proposes JSON inside the schema (the grammar makes invalid JSON impossible); code checks what matters
(the product is one we sell) and the skill retries with the error shown to the model when it is not.

Serve it:   scaleout agent serve order_reader_agent:agent --port 8102      (from this folder)
Call it:    scaleout agent call http://127.0.0.1:8102/ read_order '{"text": "Please send 40 valves by Friday"}'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agents import Agent, Brain, LlamaCpp, SkillContext


class Email(BaseModel):
    text: str = Field(min_length=1, max_length=4_000, description="the customer's e-mail")


class Order(BaseModel):
    product: Literal["pump", "valve", "gearbox"]  # the grammar only lets the model write one of these
    quantity: int = Field(gt=0, le=100_000)
    urgent: bool


PROMPT = """Read the purchase order in the e-mail. Products: pump, valve, gearbox.
E-mail: "Could you ship 12 gearboxes next month?" -> {{"product": "gearbox", "quantity": 12, "urgent": false}}
E-mail: "We need 300 pumps ASAP, our line is waiting" -> {{"product": "pump", "quantity": 300, "urgent": true}}
E-mail: "{text}" -> """


def order_reader_agent(brain: Brain | None = None, name: str = "order-reader") -> Agent:
    """The agent; ``brain`` defaults to the bundled Gemma 3 270M through llama.cpp (tests pass ``Scripted``)."""
    agent = Agent(name, "Reads purchase orders out of customer e-mails", brain=brain or LlamaCpp())

    @agent.skill(tags=["extract", "orders"], examples=["Please send 40 valves by Friday"])
    async def read_order(ctx: SkillContext, req: Email) -> Order:
        """Extract product, quantity and urgency from an e-mail."""
        return await ctx.generate(PROMPT.format(text=req.text.replace('"', "'")), Order, max_tokens=40)

    return agent


def __getattr__(name: str) -> Agent:
    # `scaleout agent serve order_reader_agent:agent` loads the model only when the agent is asked for
    if name == "agent":
        return order_reader_agent()
    raise AttributeError(name)
