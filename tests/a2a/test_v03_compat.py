"""A2A 0.3 compatibility over real HTTP: the a2a-sdk client in 0.3 mode against our agent, and our client, the
registry and the orchestrator against an a2a-sdk agent that speaks only 0.3."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
    TaskStatus,
)
from google.protobuf import json_format, struct_pb2
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from agents.a2a_v03_binding import V03JsonRpcBinding
from agents.a2a_v03_server import V03_CARD_ENV
from agents.client import HttpAgentClient, skill_message
from agents.client_bindings import JsonRpcBinding
from agents.client_v03 import parse_any_card
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from orchestrator.router import Router
from orchestrator.service import Orchestrator
from protocol import a2a
from protocol.jsonrpc import UnsupportedOperationError
from registry import Registry
from registry.discovery import register_url
from tests.a2a.conftest import shop_agent
from tests.agents.test_agent_access import Keys, keys  # noqa: F401 (the fixture)

pytestmark = pytest.mark.anyio


# -- the a2a-sdk client in 0.3 mode against our agent ------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_base() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app(shop_agent(), url), port=port) as served:
        yield served


async def _v03_card(base: str) -> AgentCard:
    """Our served card as the a2a-sdk reads it, keeping only the 0.3 interface: the sdk then speaks 0.3."""
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, base).get_agent_card()
    legacy = [i for i in card.supported_interfaces if i.protocol_version == "0.3"]
    assert legacy and legacy[0].url == base + "/", "the card declares the 0.3 interface at the 1.0 URL"
    del card.supported_interfaces[:]
    card.supported_interfaces.extend(legacy)
    return card


def _sdk_request(skill: str, payload: dict[str, Any], message_id: str) -> SendMessageRequest:
    value = struct_pb2.Value()
    json_format.ParseDict(payload, value)
    message = Message(role=Role.ROLE_USER, message_id=message_id, parts=[Part(data=value)])
    message.metadata.update({"skill": skill})
    return SendMessageRequest(message=message)


@pytest.mark.parametrize("streaming", [False, True], ids=["message/send", "message/stream"])
async def test_sdk_v03_client_sends_and_gets(shop_base: str, streaming: bool) -> None:
    with anyio.fail_after(20):
        client = await create_client(await _v03_card(shop_base), client_config=ClientConfig(streaming=streaming))
        async with client:
            request = _sdk_request("quote", {"sku": "A-1", "quantity": 2}, f"v03-send-{streaming}")
            events = [event async for event in client.send_message(request)]
            task_id = next(e.task.id for e in events if e.HasField("task"))
            fetched = await client.get_task(GetTaskRequest(id=task_id))
    assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
    assert json_format.MessageToDict(fetched.artifacts[0].parts[0].data) == {
        "sku": "A-1",
        "quantity": 2,
        "total_cents": 500,
    }
    if streaming:
        kinds = [e.WhichOneof("payload") for e in events]
        assert kinds[0] == "task" and "artifact_update" in kinds
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


async def test_sdk_v03_client_cancels_a_running_task(shop_base: str) -> None:
    with anyio.fail_after(20):
        client = await create_client(await _v03_card(shop_base), client_config=ClientConfig(streaming=False))
        async with client:
            request = _sdk_request("hold", {"key": "v03-cancel"}, "v03-hold")
            request.configuration.return_immediately = True  # 0.3: blocking false
            events = [event async for event in client.send_message(request)]
            task_id = events[0].task.id
            canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
            fetched = await client.get_task(GetTaskRequest(id=task_id))
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    assert fetched.status.state == TaskState.TASK_STATE_CANCELED


async def test_v03_wire_without_version_header(shop_base: str) -> None:
    """A 0.3 call without A2A-Version is answered in 0.3 shapes; a 1.0 method without it still gets -32009."""
    message = {
        "kind": "message",
        "messageId": "raw-v03",
        "role": "user",
        "parts": [{"kind": "data", "data": {"sku": "B-2", "quantity": 1}}],
        "metadata": {"skill": "quote"},
    }
    async with httpx.AsyncClient(timeout=10) as http:
        sent = await http.post(shop_base + "/", json={"jsonrpc": "2.0", "id": 1, "method": "message/send",
                                                       "params": {"message": message}})  # fmt: skip
        missing = await http.post(shop_base + "/", json={"jsonrpc": "2.0", "id": 2, "method": "tasks/get",
                                                          "params": {"id": "no-such-task"}})  # fmt: skip
        bad = await http.post(shop_base + "/", json={"jsonrpc": "2.0", "id": 3, "method": "message/send",
                                                      "params": {"message": {"role": "robot"}}})  # fmt: skip
        v10 = await http.post(shop_base + "/", json={"jsonrpc": "2.0", "id": 4, "method": "GetTask",
                                                      "params": {"id": "x"}})  # fmt: skip
    result = sent.json()["result"]
    assert result["kind"] == "task" and result["status"]["state"] == "completed"
    assert result["artifacts"][0]["parts"][0] == {
        "kind": "data",
        "data": {"sku": "B-2", "quantity": 1, "total_cents": 250},
    }
    assert result["history"][0]["role"] == "user" and result["history"][0]["kind"] == "message"
    assert sent.headers[a2a.VERSION_HEADER] == "0.3"
    assert missing.json()["error"]["code"] == -32001
    assert bad.json()["error"]["code"] == -32602 and "message/send" in bad.json()["error"]["message"]
    assert v10.json()["error"]["code"] == -32009


# -- an agent that speaks only 0.3 -------------------------------------------------------------------------------


@dataclass
class Worker(AgentExecutor):
    """An a2a-sdk executor that runs a task: echoes its data part as an artifact; ``{"hold": true}`` waits until
    cancelled."""

    received: list[dict[str, Any]] = field(default_factory=list)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None and context.task_id and context.context_id
        data = next(json_format.MessageToDict(p.data) for p in context.message.parts if p.HasField("data"))
        self.received.append(data)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        if context.current_task is None:  # the sdk wants the task before its updates
            await event_queue.enqueue_event(
                Task(
                    id=context.task_id,
                    context_id=context.context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                )
            )
        await updater.start_work()
        if data.get("hold"):
            await asyncio.Event().wait()  # the sdk cancels this task when the task is cancelled
        value = struct_pb2.Value()
        json_format.ParseDict({"echo": data}, value)
        await updater.add_artifact([Part(data=value)], name="echo")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


class OnlyV03:
    """ASGI wrapper: refuses any POST that announces a version other than 0.3 (records what each one said)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.versions: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            version = dict(scope["headers"]).get(b"a2a-version", b"").decode()
            self.versions.append(version)
            if version not in ("", "0.3", "0.3.0"):
                await send({"type": "http.response.start", "status": 400, "headers": []})
                await send({"type": "http.response.body", "body": b"this agent speaks only A2A 0.3"})
                return
        await self.app(scope, receive, send)


@dataclass
class V03Agent:
    url: str
    worker: Worker
    app: OnlyV03


@pytest.fixture(scope="module")
def v03_agent() -> Iterator[V03Agent]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    card = AgentCard(
        name="legacy-echo",
        description="an a2a-sdk agent that speaks only A2A 0.3",
        version="0.3.0",
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3")],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["application/json"],
        default_output_modes=["application/json"],
        skills=[AgentSkill(id="legacy_echo", name="echo", description="echoes its input", tags=["echo"])],
    )
    worker = Worker()
    handler = DefaultRequestHandler(agent_executor=worker, task_store=InMemoryTaskStore(), agent_card=card)
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/", enable_v0_3_compat=True)]
    app = OnlyV03(Starlette(routes=routes))
    with serve_in_thread(app, port=port):
        yield V03Agent(url, worker, app)


async def test_v03_card_is_served_in_the_0_3_layout(v03_agent: V03Agent) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        raw = (await http.get(v03_agent.url + ".well-known/agent-card.json")).json()
    assert raw["url"] == v03_agent.url and raw["protocolVersion"].startswith("0.3")


async def test_our_client_speaks_v03_to_a_v03_agent(v03_agent: V03Agent) -> None:
    with anyio.fail_after(20):
        client = await HttpAgentClient.from_card_url(v03_agent.url + ".well-known/agent-card.json", token="")
        assert isinstance(client.binding, V03JsonRpcBinding)
        async with client:
            card = await client.get_card()
            task = await client.send_message(skill_message("legacy_echo", {"sku": "C-3"}))
            fetched = await client.get_task(task.id)
            streamed = [event async for event in client.stream_message(skill_message("legacy_echo", {"n": 1}))]
            held = await client.send_message(skill_message("legacy_echo", {"hold": True}), return_immediately=True)
            canceled = await client.cancel_task(held.id)
            with pytest.raises(UnsupportedOperationError, match="0.3"):
                await client.list_tasks()
    assert card.name == "legacy-echo" and card.supported_interfaces[0].protocol_version.startswith("0.3")
    assert task.status.state == a2a.TaskState.COMPLETED and fetched.status.state == a2a.TaskState.COMPLETED
    assert task.artifacts is not None and task.artifacts[0].parts[0].data == {"echo": {"sku": "C-3"}}
    updates = [e.status_update.status.state for e in streamed if e.status_update is not None]
    assert updates[-1] == a2a.TaskState.COMPLETED
    assert any(e.artifact_update is not None for e in streamed)
    assert canceled.status.state == a2a.TaskState.CANCELED
    assert set(v03_agent.app.versions) == {"0.3"}, "every call went out as 0.3"


async def test_registry_and_orchestrator_use_a_v03_agent(v03_agent: V03Agent, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'scaleout.db'}"
    with Registry(db_url) as registry:
        with anyio.fail_after(10):
            record = await register_url(registry, v03_agent.url)
        assert record.url == v03_agent.url and [s.id for s in record.skills] == ["legacy_echo"]
        assert record.interfaces[0]["protocolVersion"].startswith("0.3")
        orchestrator = Orchestrator(registry, db_url, router=Router(registry, cache_ttl_s=0))
        try:
            async with orchestrator.running():
                with anyio.fail_after(30):
                    spec = {"skill": "legacy_echo", "input": {"sku": "D-4"}, "constraints": {"max_attempts": 1}}
                    run = await orchestrator.run(spec)
        finally:
            orchestrator.store.close()
    assert run["status"] == "succeeded", run["attempts"]
    assert run["tasks"][0]["output"] == {"echo": {"sku": "D-4"}}
    assert {"sku": "D-4"} in v03_agent.worker.received


async def test_1_0_client_still_speaks_1_0_to_our_agent(shop_base: str) -> None:
    """Our agent's card declares both versions; our client picks 1.0 (the 0.3 interface comes after it)."""
    with anyio.fail_after(20):
        client = await HttpAgentClient.from_card_url(shop_base + "/.well-known/agent-card.json", token="")
        assert isinstance(client.binding, JsonRpcBinding)
        async with client:
            task = await client.send_message(skill_message("quote", {"sku": "E-5", "quantity": 1}))
    assert task.status.state == a2a.TaskState.COMPLETED


# -- same boundary, and the card's 0.3 fields ---------------------------------------------------------------------


async def test_v03_calls_pass_the_same_boundary_and_get_the_extended_card(keys: Keys) -> None:  # noqa: F811 (the imported fixture)
    port = free_port()
    app = create_app(shop_agent(), f"http://127.0.0.1:{port}", auth=keys.auth())
    call = {"jsonrpc": "2.0", "id": 1, "method": "agent/getAuthenticatedExtendedCard"}
    with serve_in_thread(app, port=port) as base:
        async with httpx.AsyncClient(timeout=10) as http:
            anonymous = await http.post(base + "/", json=call)
            narrow = await http.post(
                base + "/", json=call, headers={"Authorization": f"Bearer {keys.token(scopes=())}"}
            )
            allowed = await http.post(base + "/", json=call, headers={"Authorization": f"Bearer {keys.token()}"})
    assert anonymous.status_code == 401 and narrow.status_code == 403
    card = allowed.json()["result"]
    assert card["url"] == base + "/" and card["protocolVersion"] == "0.3.0"
    assert card["supportsAuthenticatedExtendedCard"] is True and card["security"] == [{"bearer": ["agents:call"]}]
    assert card["securitySchemes"]["bearer"]["type"] == "http"


@pytest.mark.parametrize("how", ["environment", "argument"])
async def test_the_card_carries_the_0_3_fields_when_asked(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "environment":
        monkeypatch.setenv(V03_CARD_ENV, "1")
    port = free_port()
    app = create_app(shop_agent(), f"http://127.0.0.1:{port}", v03_card=True if how == "argument" else None)
    with serve_in_thread(app, port=port) as base:
        async with httpx.AsyncClient(timeout=10) as http:
            card = (await http.get(base + a2a.AGENT_CARD_PATH)).json()
    assert (card["url"], card["preferredTransport"], card["protocolVersion"]) == (base + "/", "JSONRPC", "0.3.0")
    assert card["supportedInterfaces"][0]["protocolVersion"] == "1.0"  # the 1.0 fields stay beside
    assert isinstance(parse_any_card(card), a2a.AgentCard)
