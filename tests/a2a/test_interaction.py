"""Every A2A method through our public clients: in-process, and over HTTP on loopback with each A2A binding
(JSON-RPC and HTTP+JSON)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from agents.agent import Agent
from agents.client import AgentClient, HttpAgentClient, skill_message
from agents.llm.scripted import Scripted
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from agents.usage import Usage
from protocol.a2a import ListTasksRequest, StreamResponse, Task, TaskState
from protocol.jsonrpc import TaskNotCancelableError, UnsupportedOperationError

from .conftest import TRANSPORTS, shop_agent
from .conftest import open_client as open_jsonrpc_or_local_client

HTTP_JSON = "http+json"  # HTTP on loopback with the HTTP+JSON (REST) binding; "http" is JSON-RPC

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("transport", [*TRANSPORTS, HTTP_JSON])]


@asynccontextmanager
async def open_client(agent: Agent, transport: str) -> AsyncIterator[AgentClient]:
    """``conftest.open_client``, plus ``HTTP_JSON``: a fresh loopback server called over its REST binding."""
    if transport != HTTP_JSON:
        async with open_jsonrpc_or_local_client(agent, transport) as client:
            yield client
        return
    port = free_port()
    with serve_in_thread(create_app(agent, f"http://127.0.0.1:{port}"), port=port) as base:
        async with HttpAgentClient(base + "/", binding="HTTP+JSON") as http:
            yield http


def _order(sku: str = "A1", quantity: int = 2, **kw: Any) -> Any:
    return skill_message("quote", {"sku": sku, "quantity": quantity}, **kw)


async def _wait_state(client: AgentClient, task_id: str, state: TaskState) -> Task:
    """Poll GetTask until ``state`` (the caller bounds the wait with fail_after)."""
    while True:
        task = await client.get_task(task_id)
        if task.status.state == state:
            return task
        await anyio.lowlevel.checkpoint()  # a checkpoint, not a timed wait


def _state_of(event: StreamResponse) -> TaskState | None:
    if event.task is not None:
        return event.task.status.state
    if event.status_update is not None:
        return event.status_update.status.state
    return None


async def test_send_message_completes_and_carries_usage(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(shop_agent(), transport) as client:
            task = await client.send_message(_order(quantity=3))
    assert task.status.state == TaskState.COMPLETED
    assert task.artifacts and task.artifacts[0].parts[0].data == {"sku": "A1", "quantity": 3, "total_cents": 750}
    assert task.metadata and task.metadata["skill"] == "quote"
    for usage in (task.metadata["usage"], (task.artifacts[0].metadata or {})["usage"]):
        assert {"promptTokens", "completionTokens", "wallSeconds", "cpuSeconds", "calls"} <= set(usage)
        assert Usage.model_validate(usage).calls == 0  # no model call in this skill
    assert task.history and task.history[0].parts[0].data == {"sku": "A1", "quantity": 3}


async def test_default_skill_and_text_input(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(shop_agent(), transport) as client:
            task = await client.send_message(skill_message(None, '{"sku": "T", "quantity": 1}'))
    assert task.status.state == TaskState.COMPLETED
    assert task.metadata and task.metadata["skill"] == "quote"  # the first declared skill
    assert task.artifacts and task.artifacts[0].parts[0].data["total_cents"] == 250


async def test_return_immediately_then_poll_get_task(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(shop_agent(), transport) as client:
            held = await client.send_message(skill_message("hold", {"key": "poll"}), return_immediately=True)
            assert held.status.state in (TaskState.SUBMITTED, TaskState.WORKING)
            running = await _wait_state(client, held.id, TaskState.WORKING)
            assert not running.artifacts
            released = await client.send_message(skill_message("release", {"key": "poll"}))
            assert released.status.state == TaskState.COMPLETED
            done = await _wait_state(client, held.id, TaskState.COMPLETED)
    assert done.artifacts and done.artifacts[0].parts[0].data == {"key": "poll"}


async def test_send_streaming_message(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(shop_agent(), transport) as client:
            events = [e async for e in client.stream_message(_order(quantity=4))]
    assert events[0].task is not None and events[0].task.status.state == TaskState.SUBMITTED
    assert [_state_of(e) for e in events if e.status_update] == [TaskState.WORKING, TaskState.COMPLETED]
    artifacts = [e.artifact_update for e in events if e.artifact_update]
    assert len(artifacts) == 1 and artifacts[0].artifact.parts[0].data["total_cents"] == 1000
    assert events[-1].status_update is not None, "the stream ends with the terminal status"
    assert (events[-1].status_update.metadata or {})["usage"]["calls"] == 0


async def test_streaming_a_held_task_sees_every_step(transport: str) -> None:
    seen: list[StreamResponse] = []
    with anyio.fail_after(20):
        async with open_client(shop_agent(), transport) as client:
            async for event in client.stream_message(skill_message("hold", {"key": "stream"})):
                seen.append(event)
                if _state_of(event) == TaskState.WORKING:
                    await client.send_message(skill_message("release", {"key": "stream"}))
    assert [_state_of(e) for e in seen if e.task or e.status_update] == [
        TaskState.SUBMITTED,
        TaskState.WORKING,
        TaskState.COMPLETED,
    ]


async def test_get_task_with_history_length(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(shop_agent(), transport) as client:
            task = await client.send_message(_order())
            full = await client.get_task(task.id)
            none = await client.get_task(task.id, history_length=0)
            one = await client.get_task(task.id, history_length=1)
            many = await client.get_task(task.id, history_length=50)
    assert full.history and len(full.history) == 1
    assert none.history is None
    assert one.history == full.history == many.history
    assert none.artifacts == full.artifacts


async def test_list_tasks_filters_and_paging(transport: str) -> None:
    with anyio.fail_after(30):
        async with open_client(shop_agent(), transport) as client:
            ids = [(await client.send_message(_order(quantity=q, context_id="ctx-a"))).id for q in (1, 2, 3)]
            other = await client.send_message(_order(context_id="ctx-b"))
            held = await client.send_message(skill_message("hold", {"key": "list"}), return_immediately=True)
            await _wait_state(client, held.id, TaskState.WORKING)

            everything = await client.list_tasks()
            assert everything.total_size == 5 and len(everything.tasks) == 5
            assert all(t.artifacts is None for t in everything.tasks), "artifacts only with includeArtifacts"

            in_a = await client.list_tasks(ListTasksRequest(context_id="ctx-a", include_artifacts=True))
            assert sorted(t.id for t in in_a.tasks) == sorted(ids)
            assert all(t.artifacts for t in in_a.tasks)

            working = await client.list_tasks(ListTasksRequest(status=TaskState.WORKING))
            assert [t.id for t in working.tasks] == [held.id]

            pages: list[str] = []
            token: str | None = None
            while True:
                page = await client.list_tasks(ListTasksRequest(page_size=2, page_token=token, history_length=0))
                assert len(page.tasks) <= 2 and page.total_size == 5 and page.page_size == 2
                assert all(t.history is None for t in page.tasks)
                pages += [t.id for t in page.tasks]
                if not page.next_page_token:
                    break
                token = page.next_page_token
            assert sorted(pages) == sorted([*ids, other.id, held.id])
            await client.send_message(skill_message("release", {"key": "list"}))


async def test_cancel_a_running_task(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(shop_agent(), transport) as client:
            held = await client.send_message(skill_message("hold", {"key": "cancel"}), return_immediately=True)
            await _wait_state(client, held.id, TaskState.WORKING)
            canceled = await client.cancel_task(held.id)
            assert canceled.status.state == TaskState.CANCELED
            assert (await client.get_task(held.id)).status.state == TaskState.CANCELED
            with pytest.raises(TaskNotCancelableError, match="cannot be canceled"):
                await client.cancel_task(held.id)
            # releasing later does not bring a canceled task back
            await client.send_message(skill_message("release", {"key": "cancel"}))
            assert (await client.get_task(held.id)).status.state == TaskState.CANCELED


async def test_subscribe_to_a_running_task(transport: str) -> None:
    seen: list[StreamResponse] = []
    with anyio.fail_after(20):
        async with open_client(shop_agent(), transport) as client:
            held = await client.send_message(skill_message("hold", {"key": "sub"}), return_immediately=True)
            await _wait_state(client, held.id, TaskState.WORKING)
            async for event in client.subscribe(held.id):
                seen.append(event)
                if len(seen) == 1:  # subscribed: now let the task finish
                    await client.send_message(skill_message("release", {"key": "sub"}))
            with pytest.raises(UnsupportedOperationError, match="GetTask"):
                async for _ in client.subscribe(held.id):
                    pass
    assert seen[0].task is not None and seen[0].task.id == held.id
    assert seen[0].task.status.state == TaskState.WORKING
    assert any(e.artifact_update for e in seen)
    assert _state_of(seen[-1]) == TaskState.COMPLETED


async def test_model_skill_carries_model_usage(transport: str) -> None:
    brain = Scripted([{"department": "billing"}], name="scripted-small")
    with anyio.fail_after(20):
        async with open_client(shop_agent(brain), transport) as client:
            task = await client.send_message(skill_message("route", {"text": "charged twice"}))
    assert task.status.state == TaskState.COMPLETED
    assert task.artifacts and task.artifacts[0].parts[0].data == {"department": "billing"}
    usage = Usage.model_validate((task.metadata or {})["usage"])
    assert usage.calls == 1 and usage.prompt_tokens > 0 and usage.models == {"scripted-small": 1}
    assert Usage.model_validate((task.artifacts[0].metadata or {})["usage"]) == usage


async def test_invalid_model_output_fails_the_task_with_a_reason(transport: str) -> None:
    brain = Scripted(["{not json", {"department": "marketing"}], name="scripted-bad")
    with anyio.fail_after(20):
        async with open_client(shop_agent(brain), transport) as client:
            task = await client.send_message(skill_message("route", {"text": "hello"}))
    assert task.status.state == TaskState.FAILED
    assert task.status.message is not None
    reason = task.status.message.text()
    assert "InvalidModelOutput" in reason and "Verdict" in reason and "2 times" in reason
    assert "department" in reason, "the reason names the field that failed"
    assert not task.artifacts
    usage = Usage.model_validate((task.metadata or {})["usage"])
    assert usage.calls == 2, "the failed attempts are still accounted for"
