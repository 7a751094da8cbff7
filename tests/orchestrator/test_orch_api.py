"""The HTTP API, its Python client, SSE resume, the MCP server at /mcp, and the CLI, against a loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import httpx
import pytest

from agents.mcp_client import McpToolClient
from agents.testing import serve_in_thread
from orchestrator.api import create_app
from orchestrator.cli import main
from orchestrator.client import OrchestratorClient, OrchestratorError
from tests.orchestrator.conftest import Behaviour, Platform, worker

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(local_platform: Platform) -> Iterator[str]:
    local_platform.add(worker("w1"))
    local_platform.add(worker("slow", Behaviour(mode="slow", delay=30), skill="sleep"))
    with serve_in_thread(create_app(local_platform.orchestrator())) as url:
        yield url


async def test_submit_list_show(server: str) -> None:
    async with OrchestratorClient(server) as client:
        with anyio.fail_after(20):
            record = await client.run({"skill": "work", "input": {"text": "hi"}})
            runs = await client.list_runs()
            again = await client.get_run(record["id"])
    assert record["status"] == "succeeded"
    assert record["tasks"][0]["output"] == {"text": "HI", "by": "w1"}
    assert [r["id"] for r in runs] == [record["id"]]
    assert again["attempts"][0]["status"] == "succeeded"


async def test_bad_requests_are_explained(server: str) -> None:
    cyclic = {
        "tasks": [
            {"id": "a", "skill": "work", "input": {"$ref": "b.output"}},
            {"id": "b", "skill": "work", "input": {"$ref": "a.output"}},
        ]
    }
    async with OrchestratorClient(server) as client, httpx.AsyncClient() as http:
        with anyio.fail_after(20):
            with pytest.raises(OrchestratorError, match="400.*cycle"):
                await client.submit(cyclic)
            with pytest.raises(OrchestratorError, match="400.*no healthy agent serves.*'nope'"):
                await client.submit({"skill": "nope"})
            with pytest.raises(OrchestratorError, match="400.*must name a skill"):
                await client.submit({"input": {}})
            with pytest.raises(OrchestratorError, match="404"):
                await client.get_run("missing")
            response = await http.post(
                server + "/runs", content=b"{not json", headers={"Content-Type": "application/json"}
            )
    error = response.json()["error"]
    assert response.status_code == 400 and error["type"] == "InvalidJSON" and "not valid UTF-8 JSON" in error["message"]


async def test_events_resume_from_last_event_id(server: str) -> None:
    async with OrchestratorClient(server) as client:
        with anyio.fail_after(20):
            record = await client.run(
                {
                    "tasks": [
                        {"id": "a", "skill": "work", "input": {"text": "x"}},
                        {"id": "b", "skill": "work", "input": {"text": {"$ref": "a.output.text"}}},
                    ]
                }
            )
            full = [e async for e in client.events(record["id"])]
            resumed = [e async for e in client.events(record["id"], last_event_id=5)]
    assert [e["seq"] for e in full] == list(range(1, len(full) + 1))
    assert full[-1]["kind"] == "run.succeeded"
    assert resumed == full[5:]


async def test_cancel_over_http(server: str) -> None:
    async with OrchestratorClient(server) as client:
        with anyio.fail_after(20):
            run_id = await client.submit({"skill": "sleep", "input": {"text": "x"}})
            async for event in client.events(run_id):
                if event["kind"] == "attempt.started":
                    break
            assert await client.cancel(run_id)
            record = await client.get_run(run_id)
            assert not await client.cancel(run_id)
    assert record["status"] == "cancelled" and record["error"] == "cancelled by request"


async def test_orchestrator_is_an_mcp_server(server: str) -> None:
    with anyio.fail_after(30):
        async with McpToolClient.http(server + "/mcp") as tools:
            names = {t.name for t in await tools.list_tools()}
            result = await tools.call_tool("submit_task", {"skill": "work", "input": {"text": "mcp"}})
            status = await tools.call_tool("run_status", {"run_id": result["run_id"]})
            agents = await tools.call_tool("list_agents", {"skill": "work"})
    assert {"submit_task", "submit_graph", "run_status", "cancel_run", "list_runs", "list_agents"} <= names
    assert result["status"] == "succeeded" and result["tasks"]["task"]["output"]["text"] == "MCP"
    assert status["status"] == "succeeded"
    assert [a["name"] for a in agents["agents"]] == ["w1"]


def test_cli_run_list_watch(server: str, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert main(["run", "work", "--input", '{"text": "cli"}', "--url", server]) == 0
    out = capsys.readouterr().out
    assert "task.succeeded" in out and '"text": "CLI"' in out
    assert main(["runs", "list", "--url", server]) == 0
    run_id = capsys.readouterr().out.split()[0]
    assert main(["runs", "watch", run_id, "--url", server]) == 0
    assert "run.succeeded" in capsys.readouterr().out
    assert main(["runs", "show", run_id, "--url", server, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == run_id
    assert main(["run", "nope", "--url", server]) == 2
    assert "no healthy agent" in capsys.readouterr().err
