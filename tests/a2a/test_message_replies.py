"""Interop: our client and orchestrator against a2a-sdk (1.3) agents that answer SendMessage with a Message, one
of them text-only (a dict input must reach it as text, intact)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Message, Part, Role
from google.protobuf import json_format, struct_pb2
from starlette.applications import Starlette

from agents.client import (
    MESSAGE_REPLY_KEY,
    HttpAgentClient,
    InputModeError,
    accepted_input_modes,
    input_part,
    skill_message,
)
from agents.testing import free_port, serve_in_thread
from orchestrator.router import Router
from orchestrator.service import Orchestrator
from protocol.a2a import TaskState
from registry import Registry

pytestmark = pytest.mark.anyio

USAGE = {"promptTokens": 7, "completionTokens": 3, "wallSeconds": 0.5}


@dataclass
class Replier(AgentExecutor):
    """An a2a-sdk executor that answers every message with one Message (no task), as the sdk samples do."""

    text_only: bool
    received: list[dict[str, Any]] = field(default_factory=list)  # the parts each request carried, as JSON

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        self.received.append({"parts": [json_format.MessageToDict(p) for p in context.message.parts]})
        if self.text_only:  # like the sdk samples: reads the text, ignores anything else
            parts = [Part(text="echo: " + context.get_user_input())]
        else:
            data = next(json_format.MessageToDict(p.data) for p in context.message.parts if p.HasField("data"))
            value = struct_pb2.Value()
            json_format.ParseDict({"echo": data}, value)
            parts = [Part(text="done"), Part(data=value)]
        reply = Message(role=Role.ROLE_AGENT, message_id=f"reply-{len(self.received)}", parts=parts)
        if context.context_id:
            reply.context_id = context.context_id
        reply.metadata.update({"usage": USAGE})
        await event_queue.enqueue_event(reply)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError("a Message reply leaves nothing to cancel")


@dataclass
class SdkAgent:
    url: str
    executor: Replier


MODES = {"data": ["application/json"], "text": ["text/plain"], "image": ["image/png"]}


def _sdk_app(executor: Replier, url: str, kind: str) -> Starlette:
    modes = MODES[kind]
    card = AgentCard(
        name=f"sdk-{kind}",
        description="an a2a-sdk agent that replies with a Message",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=modes,
        default_output_modes=modes,
        skills=[AgentSkill(id="echo", name="echo", description="echoes its input", input_modes=modes)],
    )
    handler = DefaultRequestHandler(agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card)
    return Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")])


@pytest.fixture(scope="module")
def sdk_agents() -> Iterator[dict[str, SdkAgent]]:
    with ExitStack() as stack:
        agents = {}
        for kind in MODES:
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            executor = Replier(text_only=kind != "data")
            stack.enter_context(serve_in_thread(_sdk_app(executor, url, kind), port=port))
            agents[kind] = SdkAgent(url, executor)
        yield agents


async def test_client_takes_a_message_reply_as_a_completed_task(sdk_agents: dict[str, SdkAgent]) -> None:
    agent = sdk_agents["data"]
    with anyio.fail_after(20):
        async with HttpAgentClient(agent.url, token="") as client:
            task = await client.send_message(skill_message("echo", {"sku": "A-1", "quantity": 3}))
    assert task.status.state == TaskState.COMPLETED
    assert task.metadata is not None and task.metadata[MESSAGE_REPLY_KEY] is True
    assert task.metadata["usage"] == USAGE
    assert task.status.message is not None and task.status.message.text() == "done"
    assert task.artifacts is not None
    assert [p.data for p in task.artifacts[0].parts if p.data is not None] == [{"echo": {"sku": "A-1", "quantity": 3}}]


async def test_client_sends_a_dict_as_text_to_a_text_only_skill(sdk_agents: dict[str, SdkAgent]) -> None:
    agent = sdk_agents["text"]
    with anyio.fail_after(20):
        async with HttpAgentClient(agent.url, token="") as client:
            modes = accepted_input_modes(await client.get_card(), "echo")
            single = await client.send_message(skill_message("echo", {"text": "hello there"}, accepts=modes))
            whole = await client.send_message(skill_message("echo", {"sku": "A-1", "quantity": 3}, accepts=modes))
    assert modes == ["text/plain"]
    assert single.status.message is not None and single.status.message.text() == "echo: hello there"
    assert whole.status.message is not None
    assert json.loads(whole.status.message.text().removeprefix("echo: ")) == {"sku": "A-1", "quantity": 3}
    assert all("data" not in part for request in agent.executor.received[-2:] for part in request["parts"])


def test_input_part_maps_by_media_type_and_refuses_what_would_lose_data() -> None:
    assert input_part({"a": 1}).data == {"a": 1}  # no modes known: as before
    assert input_part({"a": 1}, ["application/json", "text/plain"]).data == {"a": 1}
    assert input_part({"text": "hi"}, ["text/plain; charset=utf-8"]).text == "hi"
    assert input_part({"a": 1, "b": "x"}, ["text/*"]).text == '{"a":1,"b":"x"}'
    assert input_part("hi", ["application/json"]).data == "hi"
    with pytest.raises(InputModeError, match="accepts only image/png"):
        input_part({"a": 1}, ["image/png"])


async def test_orchestrator_succeeds_on_message_replies(sdk_agents: dict[str, SdkAgent], tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'scaleout.db'}"
    with Registry(db_url) as registry:
        for kind, agent in sdk_agents.items():
            async with HttpAgentClient(agent.url, token="") as client:
                card = await client.get_card()
            card.skills[0].id = f"{kind}_echo"  # one agent per skill: the router's choice is certain
            registry.register_card(card, transport="a2a", url=agent.url)
        orchestrator = Orchestrator(registry, db_url, router=Router(registry, cache_ttl_s=0))
        try:
            async with orchestrator.running():
                with anyio.fail_after(30):
                    spec = {"skill": "data_echo", "input": {"sku": "B-2"}, "constraints": {"max_attempts": 1}}
                    data = await orchestrator.run(spec)
                    spec = {"skill": "text_echo", "input": {"sku": "B-2", "n": 2}, "constraints": {"max_attempts": 1}}
                    text = await orchestrator.run(spec)
                    spec = {"skill": "image_echo", "input": {"sku": "B-2"}, "constraints": {"max_attempts": 3}}
                    image = await orchestrator.run(spec)
        finally:
            orchestrator.store.close()
    assert data["status"] == "succeeded", data["attempts"]
    assert data["tasks"][0]["output"] == {"echo": {"sku": "B-2"}}
    attempt = data["attempts"][0]
    assert len(data["attempts"]) == 1 and attempt["remote_task_id"] is None  # the agent kept no task
    assert (attempt["prompt_tokens"], attempt["completion_tokens"]) == (7, 3)  # usage from the message metadata
    assert text["status"] == "succeeded", text["attempts"]
    output = text["tasks"][0]["output"]["text"]
    assert json.loads(output.removeprefix("echo: ")) == {"sku": "B-2", "n": 2}  # arrived intact, as JSON text
    assert image["status"] == "failed" and len(image["attempts"]) == 1  # the caller's mistake: not retried
    assert "accepts only image/png" in image["attempts"][0]["error"]
    assert sdk_agents["image"].executor.received == []  # refused before anything was sent
