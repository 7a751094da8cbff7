"""An agent that calls another agent: buys within a budget, asking a quoting agent over A2A for the price.

Serve the quote agent first (quote_agent.py), then this one, telling it where the quotes come from:
    QUOTE_AGENT_URL=http://127.0.0.1:8101/ scaleout agent serve purchasing_agent:agent --port 8103
    scaleout agent call http://127.0.0.1:8103/ purchase '{"product": "pump", "quantity": 120, "budget": 10000}'
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

from agents import Agent, HttpAgentClient, SkillContext, skill_message
from protocol.a2a import TaskState


class PurchaseRequest(BaseModel):
    product: str = Field(min_length=1, max_length=40)
    quantity: int = Field(gt=0, le=100_000)
    budget: float = Field(gt=0, description="the most we may spend, in EUR")


class Decision(BaseModel):
    buy: bool
    total: float | None
    reason: str


def purchasing_agent(quote_url: str | None = None, name: str = "purchasing") -> Agent:
    """Asks the agent at ``quote_url`` (default ``$QUOTE_AGENT_URL``) for a quote and buys if it fits the budget."""
    agent = Agent(name, "Buys parts within a budget, after asking a supplier for a quote", tags=["buyer"])

    @agent.skill(tags=["purchase"])
    async def purchase(ctx: SkillContext, req: PurchaseRequest) -> Decision:
        """Get a quote from the supplier's agent and decide."""
        url = quote_url or os.environ.get("QUOTE_AGENT_URL", "http://127.0.0.1:8101/")
        async with HttpAgentClient(url) as supplier:
            ask = skill_message("quote", {"product": req.product, "quantity": req.quantity})
            task = await supplier.send_message(ask)
        if task.status.state != TaskState.COMPLETED or not task.artifacts:
            why = task.status.message.text() if task.status.message else task.status.state.value
            return Decision(buy=False, total=None, reason=f"no quote: {why}")
        quote = task.artifacts[0].parts[0].data or {}
        total = float(quote["total"])
        if total > req.budget:
            return Decision(buy=False, total=total, reason=f"{total:.2f} EUR is over the budget of {req.budget:.2f}")
        return Decision(buy=True, total=total, reason=f"ships in {quote['lead_days']} days")

    return agent


agent = purchasing_agent()
