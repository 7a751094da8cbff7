"""Approval gates: a task's output held for a person's decision before its dependents run (Python, HTTP, client,
CLI, MCP); a rejection is a failed attempt; a SIGKILLed orchestrator keeps holding the output after its restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from agents.agent import Agent, SkillContext
from agents.mcp_client import McpToolClient
from agents.testing import serve_in_thread
from orchestrator.api import create_app
from orchestrator.approvals import NotAnApprover, NotAwaitingApproval, condition_holds, may_decide, open_request
from orchestrator.cli import main
from orchestrator.client import OrchestratorClient, OrchestratorError
from orchestrator.service import Orchestrator
from orchestrator.spec import Approval, Condition, TaskSpec
from protocol.auth import Principal
from tests.orchestrator.conftest import Platform
from tests.orchestrator.test_orch_waiting import GRAPH as ASKING_GRAPH
from tests.orchestrator.test_orch_waiting import _after, _until_event, first_event, restartable_orchestrator

pytestmark = pytest.mark.anyio


class QuoteRequest(BaseModel):
    supplier: str


class Quote(BaseModel):
    supplier: str
    total: float


class Signed(BaseModel):
    signed: str


def buyer(totals: list[float]) -> Agent:
    """``quote`` answers the next of ``totals`` (the last one repeats); ``sign`` signs a quote."""
    agent = Agent("buyer", "Quotes and signs contracts")
    calls: list[int] = []

    @agent.skill()
    async def quote(ctx: SkillContext, req: QuoteRequest) -> Quote:
        """A quote from the supplier."""
        calls.append(1)
        return Quote(supplier=req.supplier, total=totals[min(len(calls), len(totals)) - 1])

    @agent.skill()
    async def sign(ctx: SkillContext, req: Quote) -> Signed:
        """Sign the contract."""
        return Signed(signed=f"{req.supplier} for {req.total:.0f}")

    return agent


def contract_graph(*, by: list[str] | None = None, max_attempts: int = 3) -> dict[str, Any]:
    gate = {"when": {"path": "total", "op": ">", "value": 10000}, "by": by or []}
    return {
        "name": "contract",
        "tasks": [
            {
                "id": "quote",
                "skill": "quote",
                "input": {"supplier": "Acme"},
                "approve": gate,
                "constraints": {"max_attempts": max_attempts, "backoff_s": 0},
            },
            {"id": "sign", "skill": "sign", "input": {"$ref": "quote.output"}},
        ],
    }


def test_conditions_compare_without_eval() -> None:
    over = Condition(path="total", op=">", value=10000)
    assert condition_holds(over, {"total": 12000}) and not condition_holds(over, {"total": 9000})
    assert condition_holds(None, {"total": 1})  # no condition: always ask
    assert condition_holds(over, {"price": 1})  # a missing path asks
    assert condition_holds(over, {"total": "a lot"})  # values that do not compare ask
    nested = Condition(path="lines.1.sku", op="==", value="B2")
    assert condition_holds(nested, {"lines": [{"sku": "A1"}, {"sku": "B2"}]})
    assert not condition_holds(Condition(op="!=", value=3), 3)  # '' is the whole output
    with pytest.raises(ValueError, match="op"):
        TaskSpec.model_validate({"skill": "x", "approve": {"when": {"path": "t", "op": "in", "value": 1}}})
    with pytest.raises(ValueError, match="__import__|extra"):
        TaskSpec.model_validate({"skill": "x", "approve": {"when": "__import__('os')"}})


def test_who_may_decide() -> None:
    gate = Approval(by=["ana", "tenant:purchasing"])
    assert may_decide(None, gate)  # a trusted in-process caller
    assert may_decide(Principal(subject="ana", scopes=frozenset({"runs:submit"})), gate)
    assert may_decide(Principal(subject="x", tenant="purchasing"), gate)
    assert may_decide(Principal(subject="root", scopes=frozenset({"admin"})), gate)
    assert not may_decide(Principal(subject="bob", scopes=frozenset({"runs:submit"})), gate)
    assert may_decide(Principal(subject="bob"), Approval())  # no ``by``: whoever may see the run


async def test_output_over_the_threshold_waits_for_approval(platform: Platform) -> None:
    platform.add(buyer([12_000]))
    orch = platform.orchestrator()
    with anyio.fail_after(30):
        async with orch.running():
            run_id = await orch.submit(contract_graph(by=["ana"]))
            held = await _until_event(orch, run_id, "task.approval_requested")
            assert held["task_id"] == "quote" and held["data"]["output"] == {"supplier": "Acme", "total": 12_000}
            assert held["data"]["by"] == ["ana"]
            await _until_event(orch, run_id, "run.waiting")
            record = await orch.get_run(run_id)
            assert record["status"] == "waiting"
            assert {t["task_id"]: t["status"] for t in record["tasks"]} == {"quote": "waiting", "sign": "pending"}
            with pytest.raises(NotAwaitingApproval, match="no approval gate"):
                await orch.approve(run_id, "sign")
            bob = Principal(subject="bob", scopes=frozenset({"runs:submit"}))
            with pytest.raises(NotAnApprover, match="ana"):
                await orch.approve(run_id, "quote", principal=bob)
            ana = Principal(subject="ana", scopes=frozenset({"runs:submit"}))
            decided = await orch.approve(run_id, "quote", True, "within the yearly budget", principal=ana)
            assert decided["approved"] and decided["by"] == "user:ana"
            run = await orch.wait(run_id)
            events = [e async for e in orch.events(run_id)]
    assert run["status"] == "succeeded", run["error"]
    assert {t["task_id"]: t["output"] for t in run["tasks"]}["sign"] == {"signed": "Acme for 12000"}
    approved = [e for e in events if e["kind"] == "task.approved"]
    assert len(approved) == 1 and approved[0]["at"]
    assert approved[0]["data"] == {"by": "user:ana", "comment": "within the yearly budget", "attempt": 1}
    kinds = [e["kind"] for e in events]
    assert kinds.index("task.approval_requested") < kinds.index("run.waiting") < kinds.index("task.approved")
    assert kinds.index("task.approved") < kinds.index("run.running") < kinds.index("task.succeeded")


async def test_output_under_the_threshold_goes_on(local_platform: Platform) -> None:
    local_platform.add(buyer([800]))
    orch = local_platform.orchestrator()
    with anyio.fail_after(30):
        async with orch.running():
            run = await orch.run(contract_graph())
            events = [e async for e in orch.events(run["id"])]
    assert run["status"] == "succeeded"
    assert not [e for e in events if e["kind"].startswith(("task.approval", "run.waiting"))]


async def test_rejection_is_a_failed_attempt_and_the_next_is_tried(local_platform: Platform) -> None:
    local_platform.add(buyer([15_000, 14_000, 13_000]))
    orch = local_platform.orchestrator()
    with anyio.fail_after(30):
        async with orch.running():
            run_id = await orch.submit(contract_graph(max_attempts=2))
            await _until_event(orch, run_id, "task.approval_requested")
            await orch.approve(run_id, "quote", False, "too expensive")
            second = await _until_event(orch, run_id, "task.rejected")
            assert second["data"]["comment"] == "too expensive" and second["data"]["by"] == "local"
            seq = second["seq"]
            again = await _until_event(orch, run_id, "task.approval_requested", seq)
            assert again["data"]["output"]["total"] == 14_000 and again["data"]["attempt"] == 2
            await orch.approve(run_id, "quote", False, "still too expensive")
            run = await orch.wait(run_id)
    assert run["status"] == "failed"
    quote = {t["task_id"]: t for t in run["tasks"]}["quote"]
    assert quote["status"] == "failed" and quote["attempts"] == 2
    assert "attempt 1 on buyer: output rejected by local: too expensive" in quote["error"]
    assert "attempt 2 on buyer: output rejected by local: still too expensive" in quote["error"]
    assert {t["task_id"]: t["status"] for t in run["tasks"]}["sign"] == "skipped"
    attempts = [a for a in run["attempts"] if a["task_id"] == "quote"]
    assert [(a["status"], a["error"]) for a in attempts] == [
        ("failed", "output rejected by local: too expensive"),
        ("failed", "output rejected by local: still too expensive"),
    ]


def test_open_request_reads_the_events() -> None:
    def event(kind: str, **data: Any) -> dict[str, Any]:
        return {"kind": kind, "task_id": "quote", "data": data}

    requested = event("task.approval_requested", output={"total": 1}, attempt=2, agent_id="a")
    assert open_request([requested], "quote") is not None
    assert open_request([requested], "sign") is None
    decided = open_request([requested, event("task.rejected", by="user:ana", comment="no")], "quote")
    assert decided is not None and decided.decision is not None and not decided.decision.approve
    assert open_request([requested, event("task.failed")], "quote") is None


@pytest.fixture
def approval_server(local_platform: Platform) -> Iterator[str]:
    local_platform.add(buyer([20_000]))
    with serve_in_thread(create_app(local_platform.orchestrator())) as url:
        yield url


async def test_approve_over_http_client_and_mcp(approval_server: str) -> None:
    async with OrchestratorClient(approval_server) as client:
        with anyio.fail_after(30):
            run_id = await client.submit(contract_graph())
            await first_event(client, run_id, "task.approval_requested")
            with pytest.raises(OrchestratorError, match="409|NotAwaitingApproval"):
                await client.approve(run_id, "sign")
            with pytest.raises(OrchestratorError, match="400|InvalidRequest"):
                await client._json("POST", f"/runs/{run_id}/tasks/quote/approval", json={"approve": "yes"})
            decided = await client.approve(run_id, "quote", comment="ok")
            assert decided["approved"] is True and decided["by"] == "local"
            assert (await client.wait(run_id))["status"] == "succeeded"
            second = await client.submit(contract_graph(max_attempts=1))
            await first_event(client, second, "task.approval_requested")
            async with McpToolClient.http(approval_server + "/mcp") as tools:
                assert "approve_task" in {t.name for t in await tools.list_tools()}
                args = {"run_id": second, "task_id": "quote", "approve": False, "comment": "no budget left"}
                reply = await tools.call_tool("approve_task", args)
            assert reply["approved"] is False
            record = await client.wait(second)
            assert record["status"] == "failed" and "no budget left" in record["tasks"][0]["error"]


def test_cli_runs_approve(approval_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def submit_and_hold() -> str:
        async with OrchestratorClient(approval_server) as client:
            with anyio.fail_after(30):
                run_id = await client.submit(contract_graph(max_attempts=2))
                await first_event(client, run_id, "task.approval_requested")
                return run_id

    run_id = anyio.run(submit_and_hold)
    assert main(["runs", "approve", run_id, "sign", "--url", approval_server]) == 2
    assert "no approval gate" in capsys.readouterr().err
    args = ["runs", "approve", run_id, "quote", "--reject", "--comment", "ask again", "--url", approval_server]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["approved"] is False

    async def held_again() -> None:
        async with OrchestratorClient(approval_server) as client:
            with anyio.fail_after(30):
                await _after(client, run_id, "task.rejected", "task.approval_requested")

    anyio.run(held_again)
    assert main(["runs", "approve", run_id, "quote", "--comment", "fine", "--url", approval_server]) == 0
    assert json.loads(capsys.readouterr().out)["approved"] is True
    assert main(["runs", "watch", run_id, "--url", approval_server]) == 0


def _gated_asking_graph() -> dict[str, Any]:
    """The planner's ship (it asks which plant) with its output held when the south plant ships."""
    graph = json.loads(json.dumps(ASKING_GRAPH))
    graph["tasks"][0]["approve"] = {"when": {"path": "plant", "op": "==", "value": "south"}, "by": ["ana"]}
    return graph


@pytest.mark.slow
async def test_orchestrator_killed_while_holding_an_output_resumes_after_restart(tmp_path: Path) -> None:
    """A graph with an asking skill and an approval gate: answer, SIGKILL the orchestrator process while the output
    waits for approval, restart it, approve; the run completes and the events show who did what and when."""
    async with restartable_orchestrator(tmp_path) as orchestrator:
        client = orchestrator.client
        with anyio.fail_after(30):
            run_id = await client.submit(_gated_asking_graph())
            await _after(client, run_id, "run.created", "task.waiting")
            await client.answer(run_id, "ship", {"plant": "south"})
            await _after(client, run_id, "task.approval_requested", "run.waiting")
        await orchestrator.restart()
        with anyio.fail_after(60):
            await _after(client, run_id, "run.resumed", "run.waiting")  # held again from the events
            assert (await client.get_run(run_id))["status"] == "waiting"
            await client.approve(run_id, "ship", comment="south is fine")
            record = await client.wait(run_id)
            events = [e async for e in client.events(run_id)]
        tails = orchestrator.procs.tails()
    assert record["status"] == "succeeded", (record["error"], tails)
    assert {t["task_id"]: t["output"] for t in record["tasks"]}["label"] == {"label": "A1 from south"}
    kinds = [e["kind"] for e in events]
    assert kinds.count("task.approval_requested") == 2 and "run.resumed" in kinds, kinds
    answered = [e for e in events if e["kind"] == "task.answered"]
    assert [(e["data"]["input"], e["data"]["by"]) for e in answered] == [({"plant": "south"}, "local")]
    approved = [e for e in events if e["kind"] == "task.approved"]
    assert [(e["data"]["by"], e["data"]["comment"]) for e in approved] == [("local", "south is fine")]
    assert all(e["at"] for e in answered + approved)
    ship_attempts = [a for a in record["attempts"] if a["task_id"] == "ship"]
    assert [a["status"] for a in ship_attempts] == ["succeeded"], ship_attempts  # held, never sent twice


async def test_approve_an_unknown_run(local_platform: Platform) -> None:
    orch: Orchestrator = local_platform.orchestrator()
    async with orch.running():
        with pytest.raises(LookupError, match="run"):
            await orch.approve("0" * 32, "quote")


def _manufacturing(**overrides: object) -> Any:
    from scenarios.smart_manufacturing import ScenarioConfig, run

    return run(ScenarioConfig(**{"suppliers": 12, "distributors": 3, "brain": "rule", "seed": 11, **overrides}))


def test_manufacturing_contracts_above_the_threshold_need_the_purchasing_manager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auto = _manufacturing()  # default: approved automatically, the demo stays non-interactive
    assert len(auto.contracts) == 5 and auto.on_time
    refused = _manufacturing(approve="reject")  # the motor contract (EUR 15,840) is over EUR 10,000
    assert {c.item for c in refused.contracts} == {"housing", "impeller", "seal_kit", "controller"}
    motor = next(c for c in refused.components if c.component == "motor")
    assert motor.note.startswith("refused by the purchasing manager (--approve reject): contract-motor")
    assert refused.completion_day is None and not refused.on_time
    assert len(_manufacturing(approve="reject", approval_threshold=20_000).contracts) == 5
    answers = iter(["y\n"])
    monkeypatch.setattr("sys.stdin", type("Terminal", (), {"readline": lambda self, n: next(answers, "")})())
    assert len(_manufacturing(approve="ask").contracts) == 5  # asked once, answered yes
    asked_no = _manufacturing(approve="ask")  # end of input: nobody approved
    assert "motor" not in {c.item for c in asked_no.contracts}
