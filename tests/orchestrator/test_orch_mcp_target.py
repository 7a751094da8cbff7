"""MCP tools found in the registry are task targets like A2A skills."""

from __future__ import annotations

import anyio
import pytest

from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from tests.orchestrator.conftest import Platform, worker

pytestmark = pytest.mark.anyio


async def test_mcp_tool_as_task_target(local_platform: Platform) -> None:
    p = local_platform
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    agent = worker("toolbox")
    p.stack.enter_context(serve_in_thread(create_app(agent, base_url=base), port=port))
    url = f"mcp+{base}/mcp"
    p.registry.register_card(agent.card(url), transport="mcp", url=url)
    async with p.orchestrator().running() as orch:
        with anyio.fail_after(30):
            record = await orch.run(
                {
                    "tasks": [
                        {"id": "a", "skill": "work", "input": {"text": "via mcp"}},
                        {"id": "b", "skill": "work", "input": {"text": {"$ref": "a.output.by"}}},
                    ]
                }
            )
    assert record["status"] == "succeeded", record["error"]
    assert [t["output"]["text"] for t in sorted(record["tasks"], key=lambda t: t["task_id"])] == ["VIA MCP", "TOOLBOX"]
    assert {a["transport"] for a in record["attempts"]} == {"mcp"}


async def test_unreachable_mcp_server_falls_back(local_platform: Platform) -> None:
    p = local_platform
    dead = f"mcp+http://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    p.registry.register_card(worker("gone").card(dead), transport="mcp", url=dead)
    p.add(worker("backup"), parameters=10**9)
    async with p.orchestrator().running() as orch:
        with anyio.fail_after(30):
            record = await orch.run({"skill": "work", "input": {"text": "x"}, "constraints": {"backoff_s": 0}})
    assert record["status"] == "succeeded" and record["tasks"][0]["output"]["by"] == "backup"
    assert "AgentUnreachable" in record["attempts"][0]["error"]
