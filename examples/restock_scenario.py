"""A scenario written from scratch: a shop restocks through the orchestrator.

Three suppliers (rule agents from quote_agent.py, each with its own prices) and a buyer with a budget are
registered in a registry; the orchestrator runs a two-task graph: `quote` (routed to a supplier that can quote,
with an explanation of the choice) and `approve` (its input taken from the quote's output by `$ref`). Every run
is recorded: `scaleout runs list --db sqlite:///restock.db` shows it afterwards.

Run:  python restock_scenario.py [--product pump] [--quantity 120] [--budget 12000] [--db sqlite:///restock.db]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the example agents beside this file

from quote_agent import Quote, quote_agent  # noqa: E402

from agents import Agent, SkillContext  # noqa: E402
from orchestrator import Orchestrator  # noqa: E402
from registry import Registry  # noqa: E402

SUPPLIERS = {
    "acme-parts": {"pump": 84.0, "valve": 12.5},
    "nordic-flow": {"pump": 79.0, "valve": 13.9, "gearbox": 290.0},
    "delta-supply": {"gearbox": 305.0, "valve": 11.0},
}


class Approval(BaseModel):
    approved: bool
    total: float
    note: str = Field(max_length=200)


def buyer_agent(budget: float) -> Agent:
    """Approves a quote when it fits the budget."""
    agent = Agent("buyer", "Approves purchases within the budget", tags=["buyer"])

    @agent.skill(tags=["approve"])
    async def approve(ctx: SkillContext, quote: Quote) -> Approval:
        """Approve or refuse a quote."""
        ok = quote.total <= budget
        note = f"{quote.quantity} {quote.product}s at {quote.unit_price:.2f}, ships in {quote.lead_days} days"
        return Approval(approved=ok, total=quote.total, note=note if ok else f"over budget ({budget:.2f}): {note}")

    return agent


async def restock(db: str, product: str, quantity: int, budget: float) -> dict:
    """Register the agents and run the graph; the finished run's record."""
    agents = [quote_agent(name, prices) for name, prices in SUPPLIERS.items()] + [buyer_agent(budget)]
    registry = Registry(db)
    for agent in agents:
        registry.register_card(agent.card(f"local://{agent.name}"), transport="local", url=f"local://{agent.name}")
    graph = {
        "name": f"restock {quantity} {product}",
        "tasks": [
            {"id": "quote", "skill": "quote", "input": {"product": product, "quantity": quantity}},
            {"id": "approve", "skill": "approve", "input": {"$ref": "quote.output"}},
        ],
    }
    async with Orchestrator(registry, db, local_agents=agents).running() as orch:
        return await orch.run(graph)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--product", default="pump")
    parser.add_argument("--quantity", type=int, default=120)
    parser.add_argument("--budget", type=float, default=12_000.0)
    parser.add_argument("--db", help="where runs and agents are kept (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{tmp}/restock.db"
        record = anyio.run(restock, db, args.product, args.quantity, args.budget)
    print(f"run {record['id']}: {record['status']}")
    for task in record["tasks"]:
        names = {c["agent_id"]: c["name"] for c in (task.get("routing") or {}).get("ranked", [])}
        agent = names.get(task.get("agent_id"), "-")
        print(f"  {task['task_id']:8} {task['status']:10} {agent:13} {task.get('output')}")
    approval = next((t.get("output") for t in record["tasks"] if t["task_id"] == "approve"), None) or {}
    print("approved" if approval.get("approved") else "not approved", "-", approval.get("note", record.get("error")))
    return 0 if record["status"] == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
