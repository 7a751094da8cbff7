"""A rule agent: prices an order from a price list with volume discounts. No model, answers in microseconds.

Serve it:   scaleout agent serve quote_agent:agent --port 8101      (from this folder)
Call it:    scaleout agent call http://127.0.0.1:8101/ quote '{"product": "pump", "quantity": 120}'
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents import Agent, SkillContext, SkillInputError

PRICES = {"pump": 84.0, "valve": 12.5, "gearbox": 310.0}  # list price per unit
DISCOUNTS = [(500, 0.12), (100, 0.05)]  # (from this quantity, this discount), largest first
LEAD_DAYS = {"pump": 10, "valve": 4, "gearbox": 21}


class QuoteRequest(BaseModel):
    product: str = Field(min_length=1, max_length=40, description="product name, e.g. pump")
    quantity: int = Field(gt=0, le=100_000)


class Quote(BaseModel):
    product: str
    quantity: int
    unit_price: float
    total: float
    lead_days: int


def quote_agent(name: str = "quotes", prices: dict[str, float] | None = None) -> Agent:
    """A supplier's quoting desk; ``prices`` overrides the list prices (scenarios make several suppliers)."""
    table = prices or PRICES
    agent = Agent(name, "Quotes prices and lead times for pumps, valves and gearboxes", tags=["supplier"])

    @agent.skill(tags=["quote", "pricing"], examples=['{"product": "pump", "quantity": 120}'])
    async def quote(ctx: SkillContext, req: QuoteRequest) -> Quote:
        """Price ``quantity`` units of ``product`` with the volume discount, and say when they can ship."""
        if req.product not in table:
            # a caller mistake: the task ends REJECTED, is not retried, and does not count against this agent
            raise SkillInputError(f"unknown product {req.product!r}; we sell {', '.join(sorted(table))}")
        discount = next((d for threshold, d in DISCOUNTS if req.quantity >= threshold), 0.0)
        unit = round(table[req.product] * (1 - discount), 2)
        return Quote(
            product=req.product,
            quantity=req.quantity,
            unit_price=unit,
            total=round(unit * req.quantity, 2),
            lead_days=LEAD_DAYS.get(req.product, 14),
        )

    return agent


agent = quote_agent()
