"""Runs over both transports: graphs, concurrency, fallback, invalid output, deadlines, retries, cancel, usage."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orchestrator.graph import GraphError
from orchestrator.service import Orchestrator
from registry import HealthStatus
from tests.orchestrator.conftest import Behaviour, Platform, worker

pytestmark = pytest.mark.anyio


async def run(orch: Orchestrator, spec: dict[str, Any], limit: float = 20) -> dict[str, Any]:
    with anyio.fail_after(limit):
        return await orch.run(spec)


def task(run_record: dict[str, Any], task_id: str = "task") -> dict[str, Any]:
    return next(t for t in run_record["tasks"] if t["task_id"] == task_id)


async def test_single_task_records_output_routing_and_usage(platform: Platform) -> None:
    platform.add(worker("w1"))
    async with platform.orchestrator().running() as orch:
        record = await run(orch, {"skill": "work", "input": {"text": "hi"}})
    assert record["status"] == "succeeded", record["error"]
    t = task(record)
    assert t["output"] == {"text": "HI", "by": "w1"}
    assert t["routing"]["ranked"][0]["name"] == "w1" and "smallest capable first" in t["routing"]["ranked"][0]["reason"]
    (attempt,) = record["attempts"]
    assert attempt["status"] == "succeeded" and attempt["request"] == {"skill": "work", "input": {"text": "hi"}}
    assert attempt["wall_seconds"] > 0 and attempt["energy_joules"] > 0
    assert record["usage"]["attempts"] == 1


async def test_graph_passes_outputs_along_references(platform: Platform) -> None:
    platform.add(worker("w1"))
    spec = {
        "tasks": [
            {"id": "a", "skill": "work", "input": {"text": "ab"}},
            {"id": "b", "skill": "work", "input": {"text": {"$ref": "a.output.text"}}},
            {"id": "c", "skill": "work", "input": {"text": {"$ref": "a.output.by"}}},
            {
                "id": "d",
                "skill": "work",
                "input": {"text": {"$ref": "c.output.text"}},
                "constraints": {"max_attempts": 1},
            },
        ]
    }
    async with platform.orchestrator().running() as orch:
        record = await run(orch, spec)
    assert record["status"] == "succeeded"
    assert task(record, "b")["output"]["text"] == "AB"
    assert task(record, "d")["output"]["text"] == "W1"
    assert task(record, "d")["input"] == {"text": "W1"}


async def test_concurrency_limit_is_respected(platform: Platform) -> None:
    behaviour = Behaviour(delay=0.05)
    platform.add(worker("w1", behaviour))
    spec = {"tasks": [{"id": f"t{i}", "skill": "work", "input": {"text": str(i)}} for i in range(12)], "concurrency": 3}
    async with platform.orchestrator().running() as orch:
        record = await run(orch, spec)
    assert record["status"] == "succeeded"
    assert len(behaviour.calls) == 12
    assert 1 < behaviour.peak <= 3


async def test_failure_escalates_to_the_next_candidate(platform: Platform) -> None:
    small = Behaviour(mode="fail")
    small_id = platform.add(worker("small", small), parameters=270_000_000).id
    large_id = platform.add(worker("large"), parameters=1_000_000_000).id
    async with platform.orchestrator().running() as orch:
        record = await run(orch, {"skill": "work", "input": {"text": "x"}, "constraints": {"backoff_s": 0}})
    assert record["status"] == "succeeded"
    assert task(record)["output"]["by"] == "large"
    first, second = record["attempts"]
    assert (first["agent_id"], first["status"]) == (small_id, "failed") and "fails on purpose" in first["error"]
    assert second["agent_id"] == large_id and second["status"] == "succeeded"
    ranked = [c["name"] for c in task(record)["routing"]["ranked"]]
    assert ranked == ["small", "large"]
    assert small.calls == ["x"]


async def test_invalid_output_is_rejected_and_replaced(platform: Platform) -> None:
    platform.add(worker("sloppy", Behaviour(mode="invalid")), parameters=100)
    platform.add(worker("careful"), parameters=200)
    schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    async with platform.orchestrator().running() as orch:
        record = await run(
            orch, {"skill": "work", "input": {"text": "x"}, "output_schema": schema, "constraints": {"backoff_s": 0}}
        )
    assert record["status"] == "succeeded"
    assert "InvalidOutput" in record["attempts"][0]["error"] and "text" in record["attempts"][0]["error"]
    assert task(record)["output"]["by"] == "careful"


async def test_slow_agent_past_deadline_is_cancelled_and_replaced(platform: Platform) -> None:
    slow = Behaviour(mode="slow", delay=30)
    platform.add(worker("slow", slow), parameters=100)
    platform.add(worker("fast"), parameters=200)
    async with platform.orchestrator().running() as orch:
        # 2 s, not less: on a loaded machine the call may not reach the agent sooner, and then nothing is cancelled
        record = await run(
            orch, {"skill": "work", "input": {"text": "x"}, "constraints": {"deadline_s": 2.0, "backoff_s": 0}}
        )
        with anyio.fail_after(10):
            await slow.wait(slow.was_cancelled)  # the agent's task is cancelled on the agent (A2A CancelTask)
    assert record["status"] == "succeeded" and task(record)["output"]["by"] == "fast"
    assert "deadline of 2.0 s" in record["attempts"][0]["error"]


async def test_retries_are_bounded_and_every_error_is_kept(platform: Platform) -> None:
    bad = Behaviour(mode="fail")
    platform.add(worker("bad", bad))
    async with platform.orchestrator().running() as orch:
        record = await run(
            orch,
            {
                "tasks": [
                    {
                        "id": "a",
                        "skill": "work",
                        "input": {"text": "x"},
                        "constraints": {"max_attempts": 3, "backoff_s": 0.01},
                    },
                    {"id": "b", "skill": "work", "input": {"text": {"$ref": "a.output.text"}}},
                ]
            },
        )
    assert record["status"] == "failed" and "'a'" not in record["error"] or "a" in record["error"]
    assert len(bad.calls) == 3 and len(record["attempts"]) == 3
    assert task(record, "a")["error"].count("fails on purpose") == 3
    assert task(record, "b")["status"] == "skipped" and "upstream task 'a'" in task(record, "b")["error"]


async def test_unknown_skill_and_no_healthy_candidate(platform: Platform) -> None:
    record = platform.add(worker("w1"))
    async with platform.orchestrator().running() as orch:
        with pytest.raises(GraphError, match="no healthy agent serves: 'task' \\(skill 'nope'\\)"):
            await orch.submit({"skill": "nope", "input": {}})
        platform.registry.set_status(record.id, HealthStatus.UNHEALTHY)
        with pytest.raises(GraphError, match="skill 'work'"):
            await orch.submit({"skill": "work", "input": {"text": "x"}})


async def test_agent_unhealthy_after_submit_fails_with_reason(platform: Platform) -> None:
    record = platform.add(worker("w1", Behaviour(delay=0.3)))
    async with platform.orchestrator().running() as orch:
        run_id = await orch.submit(
            {
                "tasks": [
                    {"id": "a", "skill": "work", "input": {"text": "x"}},
                    {"id": "b", "skill": "work", "input": {"text": {"$ref": "a.output.text"}}},
                ]
            }
        )
        platform.registry.set_status(record.id, HealthStatus.UNHEALTHY)
        with anyio.fail_after(20):
            result = await orch.wait(run_id)
    assert result["status"] == "failed"
    failed = [t for t in result["tasks"] if t["status"] == "failed"]
    assert len(failed) == 1 and "no healthy candidate for skill 'work'" in failed[0]["error"]
    assert "status unhealthy" in failed[0]["error"] or "none registered" in failed[0]["error"]


async def test_cancel_run_cancels_agent_tasks(platform: Platform) -> None:
    slow = Behaviour(mode="slow", delay=30)
    platform.add(worker("slow", slow))
    async with platform.orchestrator().running() as orch:
        run_id = await orch.submit({"skill": "work", "input": {"text": "x"}})
        with anyio.fail_after(10):
            async for event in orch.events(run_id):
                if event["kind"] == "attempt.started":
                    break
            await slow.wait(slow.started)
            assert await orch.cancel(run_id)
            await slow.wait(slow.was_cancelled)
        record = await orch.get_run(run_id)
    assert record["status"] == "cancelled" and record["attempts"][0]["status"] == "cancelled"
    assert task(record)["status"] == "cancelled"


async def test_run_deadline_fails_the_run(platform: Platform) -> None:
    platform.add(worker("slow", Behaviour(mode="slow", delay=30)))
    async with platform.orchestrator().running() as orch:
        record = await run(orch, {"tasks": [{"id": "a", "skill": "work", "input": {"text": "x"}}], "deadline_s": 0.3})
    assert record["status"] == "failed" and "deadline of 0.3 s" in record["error"]


async def test_events_are_ordered_and_complete(platform: Platform) -> None:
    platform.add(worker("w1"))
    async with platform.orchestrator().running() as orch:
        record = await run(orch, {"skill": "work", "input": {"text": "x"}})
        kinds = [e["kind"] async for e in orch.events(record["id"])]
        seqs = [e["seq"] async for e in orch.events(record["id"], after=2)]
    assert kinds == [
        "run.created",
        "run.started",
        "task.routed",
        "attempt.started",
        "attempt.succeeded",
        "task.succeeded",
        "run.succeeded",
    ]
    assert seqs == list(range(3, 8))
