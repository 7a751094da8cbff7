"""The run store and a small run on PostgreSQL (needs SCALEOUT_TEST_PG_URL; runs in CI)."""

from __future__ import annotations

import os

import anyio
import pytest

from agents.examples import echo_agent
from orchestrator.router import Router
from orchestrator.service import Orchestrator
from registry import Registry

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


async def test_run_on_postgres() -> None:
    url = os.environ.get("SCALEOUT_TEST_PG_URL")
    if not url:
        pytest.skip("set SCALEOUT_TEST_PG_URL to a PostgreSQL database to run this test")
    registry = Registry(url)
    echo = echo_agent("echo-pg")
    registry.register_card(echo.card("local://echo-pg"), transport="local", url="local://echo-pg")
    spec = {
        "tasks": [
            {"id": "a", "skill": "echo", "input": {"text": "pg"}},
            {"id": "b", "skill": "echo", "input": {"text": {"$ref": "a.output.text"}}},
        ]
    }
    async with Orchestrator(
        registry, registry.url, local_agents=[echo], router=Router(registry, cache_ttl_s=0)
    ).running() as orch:
        with anyio.fail_after(30):
            record = await orch.run(spec)
            events = [e["seq"] async for e in orch.events(record["id"], after=1)]
    assert record["status"] == "succeeded"
    assert {t["task_id"]: t["output"]["text"] for t in record["tasks"]} == {"a": "pg", "b": "pg"}
    assert events == list(range(2, len(events) + 2))
