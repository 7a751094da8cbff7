"""Process-level faults: an agent process killed mid-task, and the orchestrator restarted mid-run."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from agents.client import HttpAgentClient
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from orchestrator.service import RESTART_REASON
from protocol.a2a import AgentCard, ListTasksRequest, TaskState
from registry import ModelInfo
from tests.orchestrator.conftest import Behaviour, Platform, worker

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def _wait_for_card(url: str) -> AgentCard:
    async with httpx.AsyncClient() as http:
        while True:
            try:
                response = await http.get(url + "/.well-known/agent-card.json")
                if response.status_code == 200:
                    return AgentCard.model_validate(response.json())
            except httpx.TransportError:
                pass
            await anyio.sleep(0.1)


async def _wait_until_working(url: str) -> None:
    async with HttpAgentClient(url) as client:
        while True:
            listing = await client.list_tasks(ListTasksRequest(status=TaskState.WORKING))
            if listing.tasks:
                return
            await anyio.sleep(0.05)


async def test_killed_agent_process_falls_back_to_next_candidate(local_platform: Platform) -> None:
    p = local_platform
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-c",
        "import sys; from orchestrator.cli import main; sys.exit(main())",
        "agent",
        "serve",
        "tests.orchestrator.served_agent:agent",
        "--port",
        str(port),
    ]
    proc = await anyio.open_process(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with anyio.fail_after(60):
            card = await _wait_for_card(base)
        doomed = p.registry.register_card(card, model=ModelInfo(name="tiny", parameters=100), url=base + "/")
        backup_port = free_port()
        backup_base = f"http://127.0.0.1:{backup_port}"
        p.stack.enter_context(serve_in_thread(create_app(worker("backup"), base_url=backup_base), port=backup_port))
        p.registry.register_card(
            worker("backup").card(backup_base + "/"),
            model=ModelInfo(name="big", parameters=10**9),
            url=backup_base + "/",
        )
        async with p.orchestrator().running() as orch:
            with anyio.fail_after(30):
                run_id = await orch.submit(
                    {"skill": "work", "input": {"text": "survive"}, "constraints": {"backoff_s": 0}}
                )
                async for event in orch.events(run_id):
                    if event["kind"] == "attempt.started":
                        assert event["data"]["agent_id"] == doomed.id
                        break
                await _wait_until_working(base + "/")  # the request reached the agent's skill
                proc.kill()
                record = await orch.wait(run_id)
    finally:
        with contextlib.suppress(ProcessLookupError):  # already killed by the test
            proc.kill()
        with anyio.fail_after(10):
            await proc.wait()
    assert record["status"] == "succeeded", record
    assert record["tasks"][0]["output"] == {"text": "SURVIVE", "by": "backup"}
    first, second = record["attempts"]
    assert first["agent_id"] == doomed.id and first["status"] == "failed"
    assert "AgentUnreachable" in first["error"]
    assert second["status"] == "succeeded"


@pytest.mark.parametrize("resume", [True, False])
async def test_restart_mid_run_resumes_or_fails_with_reason(local_platform: Platform, resume: bool) -> None:
    p = local_platform
    fast, gate = Behaviour(), Behaviour(mode="slow", delay=60)
    p.add(worker("fast", fast))
    p.add(worker("gate", gate, skill="gate"))
    spec = {
        "tasks": [
            {"id": "a", "skill": "work", "input": {"text": "one"}},
            {"id": "b", "skill": "gate", "input": {"text": {"$ref": "a.output.text"}}},
        ]
    }
    async with p.orchestrator().running() as first:
        with anyio.fail_after(20):
            run_id = await first.submit(spec)
            async for event in first.events(run_id):
                if event["kind"] == "attempt.started" and event["task_id"] == "b":
                    break
            await gate.wait(gate.started)
    stored = p.orchestrator().store.get_run(run_id)
    assert stored is not None and stored["status"] == "running"  # stopped, not finished: nothing is lost
    gate.mode, gate.delay = "ok", 0.0
    async with p.orchestrator(resume=resume).running() as second:
        with anyio.fail_after(20):
            record = await second.wait(run_id)
            kinds = [e["kind"] async for e in second.events(run_id)]
    assert fast.calls == ["one"]  # the finished task is not run again
    if resume:
        assert record["status"] == "succeeded"
        assert gate.calls == ["ONE", "ONE"]
        assert {t["task_id"]: t["output"]["text"] for t in record["tasks"]} == {"a": "ONE", "b": "ONE"}
        assert "run.interrupted" in kinds and "run.resumed" in kinds and kinds[-1] == "run.succeeded"
    else:
        assert record["status"] == "failed" and record["error"].startswith(RESTART_REASON)
        assert gate.calls == ["ONE"]
        assert kinds[-1] == "run.failed"
