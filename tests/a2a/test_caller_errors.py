"""Caller mistakes are told apart from agent failures: input that fails the skill's model is refused with JSON-RPC
``-32602 INVALID_PARAMS`` before any task exists (nothing runs, nothing to retry); input the skill itself finds
unusable (``SkillInputError`` from its body) ends the task ``REJECTED``; a skill that breaks ends it ``FAILED``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import anyio
import httpx
import pytest
from pydantic import BaseModel, Field

from agents.agent import Agent, SkillContext
from agents.client import HttpAgentClient, skill_message
from agents.errors import SkillInputError
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from protocol.a2a import PROTOCOL_VERSION, VERSION_HEADER, TaskState

pytestmark = pytest.mark.anyio


class Order(BaseModel):
    sku: str = Field(min_length=1, max_length=20)
    quantity: int = Field(ge=1, le=100)


def strict_agent(runs: Counter[str]) -> Agent:
    agent = Agent("strict", "Takes orders; test agent for caller errors")

    @agent.skill()
    async def take(ctx: SkillContext, req: Order) -> Order:
        """Take an order, unless the SKU is discontinued (which only the skill knows)."""
        runs["take"] += 1
        if req.sku.startswith("OLD"):
            raise SkillInputError(f"sku {req.sku!r} is discontinued; order a current one")
        if req.sku == "BUG":
            raise RuntimeError("the stock database is down")
        return req

    return agent


@pytest.fixture
def served() -> Iterator[tuple[str, Counter[str]]]:
    runs: Counter[str] = Counter()
    port = free_port()
    with serve_in_thread(create_app(strict_agent(runs), f"http://127.0.0.1:{port}"), port=port) as base:
        yield base + "/", runs


def test_invalid_input_is_invalid_params_and_no_task_exists(served: tuple[str, Counter[str]]) -> None:
    url, runs = served
    message = skill_message("take", {"sku": "A", "quantity": 0}, message_id="m-1", context_id="c-1")
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message.wire()}}
    reply = httpx.post(url, json=body, headers={VERSION_HEADER: PROTOCOL_VERSION}, timeout=10)
    error = reply.json()["error"]
    assert (reply.status_code, error["code"], error["data"][0]["reason"]) == (200, -32602, "INVALID_PARAMS")
    assert "quantity" in error["message"] and "take" in error["message"]
    listed = {"jsonrpc": "2.0", "id": 2, "method": "ListTasks", "params": {"contextId": "c-1"}}
    tasks = httpx.post(url, json=listed, headers={VERSION_HEADER: PROTOCOL_VERSION}, timeout=10).json()["result"]
    assert tasks.get("tasks", []) == [] and runs["take"] == 0


async def test_input_the_skill_refuses_rejects_the_task_and_a_broken_skill_fails_it(
    served: tuple[str, Counter[str]],
) -> None:
    url, runs = served
    with anyio.fail_after(20):
        async with HttpAgentClient(url) as client:
            refused = await client.send_message(skill_message("take", {"sku": "OLD-7", "quantity": 1}))
            broken = await client.send_message(skill_message("take", {"sku": "BUG", "quantity": 1}))
    assert refused.status.state == TaskState.REJECTED
    assert refused.status.message is not None
    assert refused.status.message.text().startswith("SkillInputError: sku 'OLD-7' is discontinued")
    assert broken.status.state == TaskState.FAILED
    assert runs["take"] == 2
