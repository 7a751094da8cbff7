"""Interop: the official a2a-sdk (1.3) Python client talks to an agent served by ``agents.serve``."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.types import CancelTaskRequest, GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState
from a2a.utils.errors import TaskNotCancelableError
from google.protobuf import json_format, struct_pb2

from agents.examples import echo_agent
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app(echo_agent(), url), port=port) as served:
        yield served


def _data_part(payload: dict[str, object]) -> Part:
    value = struct_pb2.Value()
    json_format.ParseDict(payload, value)
    return Part(data=value)


def _request(text: str) -> SendMessageRequest:
    message = Message(role=Role.ROLE_USER, message_id=f"sdk-{text}", parts=[_data_part({"text": text})])
    message.metadata.update({"skill": "echo"})
    return SendMessageRequest(message=message)


async def test_sdk_resolves_our_card(base_url: str) -> None:
    with anyio.fail_after(10):
        async with httpx.AsyncClient() as http:
            card = await A2ACardResolver(http, base_url).get_agent_card()
    assert card.name == "echo"
    assert [s.id for s in card.skills] == ["echo"]
    assert card.supported_interfaces[0].protocol_binding == "JSONRPC"
    assert card.supported_interfaces[0].url == base_url + "/"
    assert card.capabilities.streaming


@pytest.mark.parametrize("streaming", [False, True], ids=["SendMessage", "SendStreamingMessage"])
async def test_sdk_client_gets_completed_task(base_url: str, streaming: bool) -> None:
    with anyio.fail_after(20):
        client = await create_client(base_url, client_config=ClientConfig(streaming=streaming))
        async with client:
            events = [event async for event in client.send_message(_request(f"hi-{streaming}"))]
    states = [e.task.status.state for e in events if e.HasField("task")]
    states += [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert states[-1] == TaskState.TASK_STATE_COMPLETED
    if streaming:
        assert events[0].HasField("task"), "a stream starts with the Task"
        artifact = next(e.artifact_update.artifact for e in events if e.HasField("artifact_update"))
    else:
        assert len(events) == 1
        artifact = events[0].task.artifacts[0]
    result = json_format.MessageToDict(artifact.parts[0].data)
    assert result == {"text": f"hi-{streaming}", "length": len(f"hi-{streaming}")}
    usage = json_format.MessageToDict(artifact.metadata)["usage"]
    assert {"promptTokens", "completionTokens", "wallSeconds"} <= set(usage)


async def test_sdk_client_gets_task_and_cancel_error(base_url: str) -> None:
    with anyio.fail_after(20):
        client = await create_client(base_url, client_config=ClientConfig(streaming=False))
        async with client:
            events = [event async for event in client.send_message(_request("again"))]
            task_id = events[0].task.id
            fetched = await client.get_task(GetTaskRequest(id=task_id))
            assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
            with pytest.raises(TaskNotCancelableError, match="cannot be canceled"):
                await client.cancel_task(CancelTaskRequest(id=task_id))
