"""Caller mistakes are not agent failures: refused input is one attempt and never counted; agent faults are retried
and counted; the retry backoff's cap is configurable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
import pytest
from pydantic import BaseModel, ValidationError

from agents.agent import Agent, SkillContext
from agents.errors import SkillInputError
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from orchestrator.service import Orchestrator
from orchestrator.spec import Constraints
from registry.models import AgentRecord
from tests.orchestrator.conftest import Behaviour, Platform, worker

pytestmark = pytest.mark.anyio

RETRY_NOW = {"backoff_s": 0, "max_attempts": 3}


async def run(orch: Orchestrator, spec: dict[str, Any]) -> dict[str, Any]:
    with anyio.fail_after(30):
        return await orch.run(spec)


def counted(platform: Platform, agent: AgentRecord) -> tuple[int, int, dict[str, int]]:
    """What the registry holds against ``agent``: calls, successes, and calls per skill."""
    stats = platform.registry.get(agent.id).stats
    return stats.calls, stats.successes, {skill: s.calls for skill, s in stats.skills.items()}


def serve_as(platform: Platform, served: Agent, card_of: Agent) -> AgentRecord:
    """Serve ``served`` but register it with the card of ``card_of`` (a registry that is out of date)."""
    if platform.mode == "local":
        platform.local.append(served)
        url, transport = f"local://{served.name}", "local"
    else:
        port = free_port()
        url, transport = f"http://127.0.0.1:{port}/", "a2a"
        platform.stack.enter_context(serve_in_thread(create_app(served, base_url=url.rstrip("/")), port=port))
    return platform.registry.register_card(card_of.card(url), transport=transport, url=url)


async def test_invalid_input_is_one_attempt_and_not_counted(platform: Platform) -> None:
    behaviour = Behaviour()
    first = platform.add(worker("first", behaviour), parameters=10**8)
    second = platform.add(worker("second", behaviour), parameters=10**9)
    async with platform.orchestrator().running() as orch:
        record = await run(orch, {"skill": "work", "input": {"txet": "typo"}, "constraints": RETRY_NOW})
    assert record["status"] == "failed"
    (attempt,) = record["attempts"]  # neither the same agent again nor the next candidate
    assert attempt["agent_id"] == first.id and "rejected the input" in attempt["error"] and "text" in attempt["error"]
    assert record["tasks"][0]["attempts"] == 1 and "rejected the input" in record["tasks"][0]["error"]
    assert behaviour.calls == []  # the skill never ran
    assert counted(platform, first) == counted(platform, second) == (0, 0, {})


async def test_unknown_skill_is_one_attempt_and_not_counted(platform: Platform) -> None:
    stale = serve_as(platform, worker("stale", skill="renamed"), card_of=worker("stale"))
    async with platform.orchestrator().running() as orch:
        record = await run(orch, {"skill": "work", "input": {"text": "x"}, "constraints": RETRY_NOW})
    assert record["status"] == "failed"
    (attempt,) = record["attempts"]
    assert "rejected the input" in attempt["error"] and "work" in attempt["error"]
    assert counted(platform, stale) == (0, 0, {})


class Order(BaseModel):
    quantity: int


class Accepted(BaseModel):
    quantity: int


def picky(calls: list[int]) -> Agent:
    """An agent whose skill itself refuses some valid-looking input (it raises SkillInputError)."""
    agent = Agent("picky", "refuses orders of zero")

    @agent.skill(id="order", tags=["order"])
    async def order(ctx: SkillContext, req: Order) -> Accepted:
        calls.append(req.quantity)
        if req.quantity == 0:
            raise SkillInputError("an order of zero items cannot be placed; send a quantity of at least 1")
        return Accepted(quantity=req.quantity)

    return agent


async def test_input_the_skill_refuses_is_one_attempt_and_not_counted(platform: Platform) -> None:
    calls: list[int] = []
    rec = platform.add(picky(calls))
    async with platform.orchestrator().running() as orch:
        refused = await run(orch, {"skill": "order", "input": {"quantity": 0}, "constraints": RETRY_NOW})
        placed = await run(orch, {"skill": "order", "input": {"quantity": 2}, "constraints": RETRY_NOW})
    assert refused["status"] == "failed" and len(refused["attempts"]) == 1
    assert "rejected the input" in refused["attempts"][0]["error"] and "at least 1" in refused["attempts"][0]["error"]
    assert placed["status"] == "succeeded"
    assert calls == [0, 2]
    assert counted(platform, rec) == (1, 1, {"order": 1})  # only the call that ran as asked


async def test_agent_failures_are_retried_and_counted(platform: Platform) -> None:
    failing = platform.add(worker("failing", Behaviour(mode="fail")))
    async with platform.orchestrator().running() as orch:
        record = await run(orch, {"skill": "work", "input": {"text": "x"}, "constraints": RETRY_NOW})
    assert record["status"] == "failed" and len(record["attempts"]) == 3
    assert all("fails on purpose" in a["error"] for a in record["attempts"])
    assert counted(platform, failing) == (3, 0, {"work": 3})


async def test_output_failing_the_schema_is_the_agents_fault(platform: Platform) -> None:
    sloppy = platform.add(worker("sloppy", Behaviour(mode="invalid")))  # answers without "text"
    schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    async with platform.orchestrator().running() as orch:
        record = await run(
            orch, {"skill": "work", "input": {"text": "x"}, "output_schema": schema, "constraints": RETRY_NOW}
        )
    assert record["status"] == "failed" and len(record["attempts"]) == 3
    assert all("InvalidOutput" in a["error"] for a in record["attempts"])
    assert counted(platform, sloppy) == (3, 0, {"work": 3})


async def test_invalid_mcp_arguments_are_one_attempt_and_not_counted(local_platform: Platform) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    agent = worker("toolbox")
    local_platform.stack.enter_context(serve_in_thread(create_app(agent, base_url=base), port=port))
    url = f"mcp+{base}/mcp"
    rec = local_platform.registry.register_card(agent.card(url), transport="mcp", url=url)
    async with local_platform.orchestrator().running() as orch:
        record = await run(orch, {"skill": "work", "input": {"txet": "typo"}, "constraints": RETRY_NOW})
    assert record["status"] == "failed" and len(record["attempts"]) == 1
    assert "rejected the input" in record["attempts"][0]["error"]
    assert counted(local_platform, rec) == (0, 0, {})


def test_the_backoff_cap_is_configurable_and_validated() -> None:
    default = Constraints(backoff_s=1)
    assert [default.backoff(n) for n in (1, 2, 3, 6, 7)] == [1, 2, 4, 30, 30]  # the cap before it was configurable
    outlast = Constraints(backoff_s=5, max_backoff_s=120, max_attempts=6)  # rides out a two-minute restart
    assert [outlast.backoff(n) for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert sum(outlast.backoff(n) for n in range(1, 6)) > 120
    assert Constraints(backoff_s=60).backoff(2) == 30  # a base above the default cap is still accepted, and capped
    with pytest.raises(ValidationError, match="max_backoff_s"):
        Constraints(backoff_s=2, max_backoff_s=1)
    with pytest.raises(ValidationError, match="max_backoff_s"):
        Constraints(max_backoff_s=3_601)
    with pytest.raises(ValidationError, match="max_backoff_s"):
        Constraints(max_backoff_s=-1)


async def test_retries_wait_as_configured(local_platform: Platform) -> None:
    local_platform.add(worker("failing", Behaviour(mode="fail")))
    constraints = {"backoff_s": 0.25, "max_backoff_s": 0.25, "max_attempts": 4}  # waits 0.25 s thrice, not 0.5, 1
    async with local_platform.orchestrator().running() as orch:
        record = await run(orch, {"skill": "work", "input": {"text": "x"}, "constraints": constraints})
    starts = [_stamp(a["started_at"]) for a in sorted(record["attempts"], key=lambda a: a["number"])]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert len(gaps) == 3 and all(gap >= 0.25 for gap in gaps)
    assert gaps[2] < 0.9  # capped: uncapped, the third wait would be 1 s


def _stamp(value: datetime | str) -> float:
    return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).timestamp()
