"""A blocking SendMessage runs its turn in the request's own task: cancel, time limit, shutdown, caller gone."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from agents.client import skill_message
from agents.tasks import TaskRuntime
from protocol.a2a import ListTasksRequest, SendMessageConfiguration, SendMessageRequest, Task, TaskState

from .conftest import shop_agent

pytestmark = pytest.mark.anyio


def _hold(key: str) -> SendMessageRequest:
    return SendMessageRequest(message=skill_message("hold", {"key": key}))


async def _working(runtime: TaskRuntime) -> Task:
    """The one task of ``runtime`` once it is WORKING (the caller bounds the wait)."""
    while True:
        tasks = runtime.list(ListTasksRequest()).tasks
        if tasks and tasks[0].status.state == TaskState.WORKING:
            return tasks[0]
        await anyio.lowlevel.checkpoint()


async def test_cancel_task_stops_a_blocking_send() -> None:
    runtime = TaskRuntime(shop_agent())
    replies: list[Task] = []
    with anyio.fail_after(10):
        async with runtime.running(), anyio.create_task_group() as tg:

            async def send() -> None:
                reply = await runtime.send(_hold("c"))
                assert isinstance(reply, Task)
                replies.append(reply)

            tg.start_soon(send)
            task = await _working(runtime)
            canceled = await runtime.cancel(task.id)
            assert canceled.status.state == TaskState.CANCELED
    assert replies and replies[0].id == task.id and replies[0].status.state == TaskState.CANCELED
    assert replies[0].status.message is not None and replies[0].status.message.text() == "canceled by request"


async def test_a_blocking_send_keeps_the_task_time_limit() -> None:
    runtime = TaskRuntime(shop_agent(), task_timeout_s=0.05)
    with anyio.fail_after(10):
        async with runtime.running():
            reply = await runtime.send(_hold("t"))
    assert isinstance(reply, Task) and reply.status.state == TaskState.FAILED
    assert reply.status.message is not None and "time limit" in reply.status.message.text()


async def test_a_cancelled_caller_ends_its_task_canceled() -> None:
    runtime = TaskRuntime(shop_agent())
    with anyio.fail_after(10):
        async with runtime.running():
            with anyio.CancelScope() as caller:

                async def give_up() -> None:
                    await _working(runtime)
                    caller.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(give_up)
                    await runtime.send(_hold("gone"))
            assert caller.cancelled_caught
            task = runtime.list(ListTasksRequest()).tasks[0]
    assert task.status.state == TaskState.CANCELED
    assert task.status.message is not None and "cancelled" in task.status.message.text()


async def test_shutdown_cancels_a_blocking_send() -> None:
    runtime = TaskRuntime(shop_agent())
    replies: list[Task] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            async with runtime.running():

                async def send() -> None:
                    reply = await runtime.send(_hold("s"))
                    assert isinstance(reply, Task)
                    replies.append(reply)

                tg.start_soon(send)
                await _working(runtime)
    assert replies and replies[0].status.state == TaskState.CANCELED
    assert replies[0].status.message is not None and replies[0].status.message.text() == "the agent shut down"


async def test_return_immediately_still_runs_in_the_background() -> None:
    runtime = TaskRuntime(shop_agent())
    with anyio.fail_after(10):
        async with runtime.running():
            config = SendMessageConfiguration(return_immediately=True)
            held = await runtime.send(_hold("bg").model_copy(update={"configuration": config}))
            assert isinstance(held, Task) and held.status.state == TaskState.SUBMITTED
            await runtime.send(SendMessageRequest(message=skill_message("release", {"key": "bg"})))
            while runtime.get(held.id).status.state != TaskState.COMPLETED:
                await anyio.lowlevel.checkpoint()
