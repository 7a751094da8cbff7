"""Runtime paths a plain skill never takes, driven by the TCK-mode executor over real HTTP: input-required
and follow-up turns, a direct message reply, rejection, artifact chunks, and streams across turns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from agents.client import HttpAgentClient
from agents.testing import free_port, serve_in_thread
from protocol.a2a import Message, Part, StreamResponse, TaskState
from protocol.jsonrpc import UnsupportedOperationError
from tests.tck_agent import create_tck_app

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tck_url() -> Iterator[str]:
    port = free_port()
    with serve_in_thread(create_tck_app(f"http://127.0.0.1:{port}"), port=port) as url:
        yield url


def _msg(prefix: str, **fields: Any) -> Message:
    return Message.user(Part.from_text("hello"), message_id=f"{prefix}-{id(fields)}", **fields)


async def test_input_required_then_follow_up_completes(tck_url: str) -> None:
    with anyio.fail_after(20):
        async with HttpAgentClient(tck_url) as client:
            waiting = await client.send_message(_msg("tck-input-required"))
            assert waiting.status.state == TaskState.INPUT_REQUIRED
            again = await client.send_message(_msg("tck-input-required", task_id=waiting.id))
            assert again.status.state == TaskState.INPUT_REQUIRED and again.id == waiting.id
            done = await client.send_message(_msg("tck-complete-task", task_id=waiting.id))
            with pytest.raises(UnsupportedOperationError, match="new message without taskId"):
                await client.send_message(_msg("tck-complete-task", task_id=waiting.id))
    assert done.status.state == TaskState.COMPLETED and done.context_id == waiting.context_id
    assert done.status.message is not None and done.status.message.text() == "Hello from TCK"
    assert done.history and len(done.history) == 3
    assert all(m.context_id == waiting.context_id for m in done.history), "contextId inferred from the task"


async def test_subscription_spans_the_follow_up_turn(tck_url: str) -> None:
    seen: list[StreamResponse] = []
    with anyio.fail_after(20):
        async with HttpAgentClient(tck_url) as client:
            waiting = await client.send_message(_msg("tck-input-required"))
            async for event in client.subscribe(waiting.id):
                seen.append(event)
                if len(seen) == 1:
                    await client.send_message(_msg("tck-complete-task", task_id=waiting.id))
    assert seen[0].task is not None and seen[0].task.status.state == TaskState.INPUT_REQUIRED
    assert seen[-1].status_update is not None and seen[-1].status_update.status.state == TaskState.COMPLETED


async def test_direct_message_reply_leaves_no_task(tck_url: str) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": _msg("tck-message-response").wire()},
    }
    with anyio.fail_after(20):
        async with httpx.AsyncClient(headers={"A2A-Version": "1.0"}) as http:
            result = (await http.post(tck_url + "/", json=body)).json()["result"]
        async with HttpAgentClient(tck_url) as client:
            events = [e async for e in client.stream_message(_msg("tck-message-response"))]
            listed = await client.list_tasks()
    assert "task" not in result and result["message"]["parts"][0]["text"] == "Direct message response"
    assert result["message"]["role"] == "ROLE_AGENT"
    assert len(events) == 1 and events[0].message is not None
    first_ids = [t.history[0].message_id for t in listed.tasks if t.history]
    assert not [m for m in first_ids if m.startswith("tck-message-response")], "no task kept for a message reply"


async def test_reject_and_chunked_artifacts(tck_url: str) -> None:
    with anyio.fail_after(20):
        async with HttpAgentClient(tck_url) as client:
            rejected = await client.send_message(_msg("tck-reject-task"))
            events = [e async for e in client.stream_message(_msg("tck-stream-artifact-chunked"))]
            task = await client.get_task(events[0].task.id if events[0].task else "")
    assert rejected.status.state == TaskState.REJECTED
    chunks = [e.artifact_update for e in events if e.artifact_update]
    assert [(c.append, c.last_chunk) for c in chunks] == [(False, False), (True, True)]
    assert task.artifacts and [p.text for p in task.artifacts[0].parts] == ["chunk-1 ", "chunk-2"]
