"""Runs whose agents ask: the task and the run wait with the question (events), answers through the orchestrator
(Python, HTTP, client, CLI, MCP) resume them; a SIGKILLed orchestrator process keeps waiting after its restart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import BaseModel, Field

from agents.agent import Agent, SkillContext
from agents.human import HumanTask, human_agent
from agents.mcp_client import McpToolClient
from agents.serve import create_app as agent_app
from agents.testing import free_port, serve_in_thread
from orchestrator.answers import InvalidAnswer, NotWaiting
from orchestrator.api import create_app
from orchestrator.cli import main
from orchestrator.client import OrchestratorClient, OrchestratorError
from orchestrator.service import Orchestrator
from protocol.a2a import AgentCard
from registry import Registry
from tests.orchestrator.conftest import Platform
from tests.orchestrator.test_orch_crash import LEASE_S, STARTUP_S, Servers, _get_ok, servers

pytestmark = pytest.mark.anyio

QUESTION = "Which plant should ship?"


class ShipOrder(BaseModel):
    sku: str = Field(min_length=1, max_length=40)


class PlantChoice(BaseModel):
    plant: str = Field(pattern="^(north|south)$")


class Shipment(BaseModel):
    sku: str
    plant: str


class Label(BaseModel):
    label: str


def planner(name: str = "planner") -> Agent:
    """``ship`` asks which plant; ``label`` prints a shipping label for a shipment."""
    agent = Agent(name, "Plans shipments; asks which plant ships")

    @agent.skill()
    async def ship(ctx: SkillContext, req: ShipOrder) -> Shipment:
        """Ask which plant ships the order."""
        choice = await ctx.ask(QUESTION, PlantChoice)
        return Shipment(sku=req.sku, plant=choice.plant)

    @agent.skill()
    async def label(ctx: SkillContext, req: Shipment) -> Label:
        """A shipping label."""
        return Label(label=f"{req.sku} from {req.plant}")

    return agent


GRAPH: dict[str, Any] = {
    "name": "ship-and-label",
    "tasks": [
        {"id": "ship", "skill": "ship", "input": {"sku": "A1"}},
        {"id": "label", "skill": "label", "input": {"$ref": "ship.output"}},
    ],
}


async def _until_event(orch: Orchestrator, run_id: str, kind: str, after: int = 0) -> dict[str, Any]:
    async for event in orch.events(run_id, after):
        if event["kind"] == kind:
            return event
    raise AssertionError(f"run {run_id} ended without a {kind} event")


async def test_run_waits_with_the_question_and_resumes_on_the_answer(platform: Platform) -> None:
    platform.add(planner())
    orch = platform.orchestrator()
    with anyio.fail_after(30):
        async with orch.running():
            run_id = await orch.submit(GRAPH)
            asked = await _until_event(orch, run_id, "task.waiting")
            assert asked["task_id"] == "ship" and asked["data"]["question"] == QUESTION
            assert asked["data"]["schema"]["properties"]["plant"]["pattern"] == "^(north|south)$"
            await _until_event(orch, run_id, "run.waiting")
            record = await orch.get_run(run_id)
            assert record["status"] == "waiting"
            assert {t["task_id"]: t["status"] for t in record["tasks"]} == {"ship": "waiting", "label": "pending"}
            with pytest.raises(InvalidAnswer, match="plant"):
                await orch.answer(run_id, "ship", {"plant": "east"}, by="user:ana")
            with pytest.raises(NotWaiting, match="pending"):
                await orch.answer(run_id, "label", {"plant": "north"}, by="user:ana")
            accepted = await orch.answer(run_id, "ship", {"plant": "north"}, by="user:ana")
            assert accepted["accepted"] and accepted["by"] == "user:ana"
            run = await orch.wait(run_id)
            events = [e async for e in orch.events(run_id)]
    assert run["status"] == "succeeded", run["error"]
    outputs = {t["task_id"]: t["output"] for t in run["tasks"]}
    assert outputs["label"] == {"label": "A1 from north"}
    answered = [e for e in events if e["kind"] == "task.answered"]
    assert len(answered) == 1 and answered[0]["data"]["input"] == {"plant": "north"}
    assert answered[0]["data"]["by"] == "user:ana" and answered[0]["at"]
    kinds = [e["kind"] for e in events]
    assert kinds.index("task.waiting") < kinds.index("run.waiting") < kinds.index("task.answered")
    assert kinds.index("task.answered") < kinds.index("run.running") < kinds.index("run.succeeded")


class DateRequest(BaseModel):
    supplier: str


class DateConfirmed(BaseModel):
    day: int = Field(ge=1, le=28)


async def test_a_human_agent_does_a_graph_task(platform: Platform) -> None:
    clerk = human_agent(
        "clerk",
        "A supplier's clerk",
        [HumanTask("confirm_date", "Confirm the delivery day", DateRequest, DateConfirmed)],
    )
    record = platform.add(clerk)
    assert "human" in record.tags and record.skills[0].id == "confirm_date"
    orch = platform.orchestrator()
    graph = {"tasks": [{"id": "date", "skill": "confirm_date", "input": {"supplier": "Acme"}}]}
    with anyio.fail_after(30):
        async with orch.running():
            run_id = await orch.submit(graph)
            asked = await _until_event(orch, run_id, "task.waiting")
            assert (
                asked["data"]["question"].startswith("Confirm the delivery day\n")
                and "Acme" in asked["data"]["question"]
            )
            assert asked["data"]["agent"] == "clerk"
            await orch.answer(run_id, "date", {"day": 14}, by="user:clerk")
            run = await orch.wait(run_id)
    assert run["status"] == "succeeded" and run["tasks"][0]["output"] == {"day": 14}


@pytest.fixture
def waiting_server(local_platform: Platform) -> Iterator[str]:
    local_platform.add(planner())
    with serve_in_thread(create_app(local_platform.orchestrator())) as url:
        yield url


async def first_event(client: OrchestratorClient, run_id: str, kind: str) -> dict[str, Any]:
    """The run's first event of ``kind``, followed over HTTP; fails if the run ends without one."""
    async for event in client.events(run_id):
        if event["kind"] == kind:
            return event
    raise AssertionError(f"the run ended without a {kind} event")


async def test_answer_over_http_client_and_mcp(waiting_server: str) -> None:
    async with OrchestratorClient(waiting_server) as client:
        with anyio.fail_after(30):
            run_id = await client.submit(GRAPH)
            await first_event(client, run_id, "task.waiting")
            with pytest.raises(OrchestratorError, match="422|InvalidAnswer|schema"):
                await client.answer(run_id, "ship", {"plant": "east"})
            with pytest.raises(OrchestratorError, match="409|NotWaiting|not waiting"):
                await client.answer(run_id, "label", {"plant": "east"})
            assert (await client.answer(run_id, "ship", {"plant": "south"}))["accepted"]
            record = await client.wait(run_id)
            assert record["status"] == "succeeded"
            second = await client.submit(GRAPH)
            await first_event(client, second, "task.waiting")
            async with McpToolClient.http(waiting_server + "/mcp") as tools:
                assert "answer_task" in {t.name for t in await tools.list_tools()}
                answer = {"run_id": second, "task_id": "ship", "answer": {"plant": "north"}}
                reply = await tools.call_tool("answer_task", answer)
            assert reply["accepted"]
            assert (await client.wait(second))["status"] == "succeeded"


async def _after(client: OrchestratorClient, run_id: str, first: str, then: str) -> None:
    """Follow the run's events until a ``then`` event that comes after a ``first`` one."""
    seen = False
    async for event in client.events(run_id):
        seen = seen or event["kind"] == first
        if seen and event["kind"] == then:
            return
    raise AssertionError(f"the run ended without {then} after {first}")


def test_cli_runs_answer(waiting_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def submit_and_wait() -> str:
        async with OrchestratorClient(waiting_server) as client:
            with anyio.fail_after(30):
                run_id = await client.submit(GRAPH)
                await first_event(client, run_id, "task.waiting")
                return run_id

    run_id = anyio.run(submit_and_wait)
    assert main(["runs", "answer", run_id, "ship", "--input", '{"plant": "west"}', "--url", waiting_server]) == 2
    assert "schema" in capsys.readouterr().err
    assert main(["runs", "answer", run_id, "ship", "--input", '{"plant": "south"}', "--url", waiting_server]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] is True
    assert main(["runs", "watch", run_id, "--url", waiting_server]) == 0


class Restartable:
    """One ``scaleout orchestrator serve`` process on a SQLite file, with the planner agent registered; ``restart``
    SIGKILLs it (no shutdown, no lease given back) and starts another on the same database and port."""

    def __init__(self, procs: Servers, client: OrchestratorClient, url: str, serve: list[str]) -> None:
        self.procs, self.client, self.url, self.serve = procs, client, url, serve
        self.generation = 0

    async def start(self) -> None:
        self.generation += 1
        self.process = await self.procs.start(f"orchestrator-{self.generation}", *self.serve)
        with anyio.fail_after(STARTUP_S):
            await _get_ok(self.url + "/health")

    async def restart(self) -> None:
        self.process.kill()
        await self.process.wait()
        await self.start()


@asynccontextmanager
async def restartable_orchestrator(tmp_path: Path) -> AsyncIterator[Restartable]:
    """The planner served in a thread, registered, and a restartable orchestrator process in front of it."""
    db = f"sqlite:///{tmp_path / 'scaleout.db'}"
    agent_port, orch_port = free_port(), free_port()
    agent_base = f"http://127.0.0.1:{agent_port}"
    orch_url = f"http://127.0.0.1:{orch_port}"
    serve = ["orchestrator", "serve", "--db", db, "--port", str(orch_port), "--replica-id", "solo"]
    serve += ["--lease-s", str(LEASE_S)]
    with serve_in_thread(agent_app(planner(), agent_base), port=agent_port):
        registry = Registry(db)
        try:
            card = AgentCard.model_validate(await _get_ok(agent_base + "/.well-known/agent-card.json"))
            registry.register_card(card, url=agent_base + "/")
        finally:
            registry.close()
        async with servers(tmp_path, {}) as procs, OrchestratorClient(orch_url) as client:
            orchestrator = Restartable(procs, client, orch_url, serve)
            await orchestrator.start()
            yield orchestrator


@pytest.mark.slow
async def test_orchestrator_killed_while_waiting_resumes_after_restart(tmp_path: Path) -> None:
    """SIGKILL the orchestrator process while its run waits for an answer; restart it; answer; the run completes."""
    async with restartable_orchestrator(tmp_path) as orchestrator:
        client = orchestrator.client
        with anyio.fail_after(30):
            run_id = await client.submit(GRAPH)
            await _after(client, run_id, "run.created", "run.waiting")  # stored with the run's status
        await orchestrator.restart()
        with anyio.fail_after(60):
            await _after(client, run_id, "run.resumed", "run.waiting")  # adopted: it asks again
            assert (await client.get_run(run_id))["status"] == "waiting"
            with pytest.raises(OrchestratorError, match="schema"):
                await client.answer(run_id, "ship", {"plant": "east"})
            await client.answer(run_id, "ship", {"plant": "south"})
            record = await client.wait(run_id)
            events = [e async for e in client.events(run_id)]
        tails = orchestrator.procs.tails()
    assert record["status"] == "succeeded", (record["error"], tails)
    assert {t["task_id"]: t["output"] for t in record["tasks"]}["label"] == {"label": "A1 from south"}
    kinds = [e["kind"] for e in events]
    assert "run.resumed" in kinds and kinds.count("task.waiting") >= 1, kinds
    answered = [e for e in events if e["kind"] == "task.answered"]
    assert [(e["data"]["input"], e["data"]["by"]) for e in answered] == [({"plant": "south"}, "local")]
    ship_attempts = [a for a in record["attempts"] if a["task_id"] == "ship"]
    assert [a["status"] for a in ship_attempts] == ["succeeded"], ship_attempts  # adopted, never sent twice
