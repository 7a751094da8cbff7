"""Task replies: the cheap wire dump equals the copied view, copies are isolated, history can be left out."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from agents.client import skill_message
from agents.examples import echo_agent
from agents.task_handle import TaskHandle
from agents.tasks import TaskRuntime
from protocol.a2a import Artifact, Message, Part, SendMessageRequest, Task, TaskState, TaskStatus

from .conftest import TRANSPORTS, open_client, shop_agent


def _handle(turns: int = 3) -> TaskHandle:
    first = Message.user(Part.from_data({"n": 0}), task_id="t1", context_id="c1")
    task = Task(id="t1", context_id="c1", status=TaskStatus(state=TaskState.SUBMITTED), history=[first])
    handle = TaskHandle(task, first, "echo")
    handle.begin_turn(first)
    handle.working()
    for n in range(1, turns):
        handle.require_input("more")
        handle.begin_turn(Message.user(Part.from_data({"n": n}), task_id="t1", context_id="c1"))
    handle.set_usage({"promptTokens": 1})
    handle.add_artifact(Artifact(name="out", parts=[Part.from_data({"nested": {"k": [1, 2]}})]))
    handle.complete()
    return handle


@pytest.mark.anyio
@pytest.mark.parametrize("history_length", [None, 0, 1, 2, 10])
@pytest.mark.parametrize("artifacts", [True, False])
async def test_wire_equals_the_view_on_the_wire(history_length: int | None, artifacts: bool) -> None:
    handle = _handle()
    wire = handle.wire(history_length, artifacts=artifacts)
    assert wire == handle.view(history_length, artifacts=artifacts).wire()
    kept = len(wire.get("history", []))
    assert kept == (3 if history_length is None else min(history_length, 3))
    assert ("artifacts" in wire) is artifacts


@pytest.mark.anyio
async def test_a_view_shares_nothing_mutable_with_the_stored_task() -> None:
    handle = _handle()
    view = handle.view()
    assert view == handle.task
    assert view.artifacts and view.history and view.metadata is not None
    view.artifacts[0].parts[0].data["nested"]["k"].append(3)
    view.history[0].parts[0].data["n"] = 99
    view.metadata["usage"]["promptTokens"] = 7
    stored = handle.task
    assert stored.artifacts and stored.history and stored.metadata is not None
    assert stored.artifacts[0].parts[0].data == {"nested": {"k": [1, 2]}}
    assert stored.history[0].parts[0].data == {"n": 0}
    assert stored.metadata["usage"] == {"promptTokens": 1}


@pytest.mark.anyio
async def test_send_wire_is_the_send_message_response_of_send() -> None:
    runtime = TaskRuntime(echo_agent())
    async with runtime.running():
        with anyio.fail_after(5):
            request = SendMessageRequest(message=skill_message("echo", {"text": "hi"}))
            wire: dict[str, Any] = await runtime.send_wire(request)
            task = runtime.get(wire["task"]["id"])
    assert wire == {"task": task.wire()}
    assert wire["task"]["artifacts"][0]["parts"][0]["data"] == {"text": "hi", "length": 2}


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_history_length_zero_leaves_the_history_out(transport: str) -> None:
    agent = shop_agent()
    async with open_client(agent, transport) as client:
        with anyio.fail_after(10):
            message = skill_message("quote", {"sku": "bolt", "quantity": 3})
            lean = await client.send_message(message, history_length=0)
            full = await client.send_message(skill_message("quote", {"sku": "bolt", "quantity": 3}))
    assert lean.status.state == TaskState.COMPLETED and lean.history is None
    assert full.history and full.history[0].parts[0].data == {"sku": "bolt", "quantity": 3}
    assert lean.artifacts and lean.artifacts[0].parts[0].data == full.artifacts[0].parts[0].data  # type: ignore[index]


@pytest.mark.anyio
async def test_finished_tasks_are_frozen_and_still_read_back_whole() -> None:
    from agents.client import LocalAgentClient
    from agents.tasks import FREEZE_AFTER
    from protocol.a2a import ListTasksRequest
    from protocol.jsonrpc import TaskNotCancelableError

    async with LocalAgentClient(echo_agent()) as client:
        first = await client.send_message(skill_message("echo", {"text": "first"}))
        for i in range(FREEZE_AFTER + 1):
            await client.send_message(skill_message("echo", {"text": f"n{i}"}))
        handle = client.runtime._find(first.id)
        assert handle._task is None  # kept as JSON now
        assert await client.get_task(first.id) == first
        listed = await client.list_tasks(ListTasksRequest(context_id=first.context_id))
        assert [t.id for t in listed.tasks] == [first.id]
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(first.id)


@pytest.mark.anyio
async def test_retained_bytes_count_each_finished_task_once_and_evict_oldest_first() -> None:
    from tests.tck_agent import tck_agent, tck_executor

    runtime = TaskRuntime(tck_agent(), executor=tck_executor, input_modes=["*/*"], max_retained_bytes=3_000)
    with anyio.fail_after(10):
        async with runtime.running():
            waiting = await runtime.send(
                SendMessageRequest(message=Message.user(Part.from_text("x"), message_id="tck-input-required-1"))
            )
            assert isinstance(waiting, Task) and runtime._retained_bytes == 0  # a live task is not counted
            canceled = await runtime.cancel(waiting.id)  # canceled between turns: no turn left to count it
            assert canceled.status.state == TaskState.CANCELED
            size = runtime._retained_bytes
            assert size == runtime._find(waiting.id).retained_bytes > 0
            done = []
            for n in range(40):
                message = Message.user(Part.from_text("y" * 200), message_id=f"tck-complete-task-{n}")
                reply = await runtime.send(SendMessageRequest(message=message))
                assert isinstance(reply, Task)
                done.append(reply.id)
    assert runtime._retained_bytes <= 3_000
    kept = [task_id for task_id in [waiting.id, *done] if task_id in runtime._tasks]
    assert kept and kept == done[-len(kept) :]  # the oldest went first
    assert runtime._retained_bytes == sum(runtime._tasks[t].retained_bytes for t in kept)
