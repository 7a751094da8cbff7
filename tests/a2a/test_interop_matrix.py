"""Interop matrix over real HTTP: our client and the orchestrator against a2a-sdk (1.3) agents that reply with a
Message or with a Task, text-only or data-only. A dict input reaches a text-only agent intact (as JSON text), a
data-only agent as a data part; the result comes back either way. (The Message-reply cases beyond this matrix, and
the refusal of an agent that takes neither text nor JSON, are in test_message_replies.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from a2a.helpers.proto_helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Part, Role, TaskState
from google.protobuf import json_format, struct_pb2

from agents.client import HttpAgentClient, accepted_input_modes, skill_message
from agents.testing import free_port, serve_in_thread
from orchestrator.router import Router
from orchestrator.service import Orchestrator
from orchestrator.transports import call_result
from protocol.a2a import TaskState as OurTaskState
from registry import Registry
from tests.a2a.test_message_replies import _sdk_app

pytestmark = pytest.mark.anyio

REPLIES = ("message", "task")
MODALITIES = ("text", "data")
KINDS = [f"{reply}-{modality}" for reply in REPLIES for modality in MODALITIES]
ORDER = {"sku": "A-1", "quantity": 3, "note": "naïve"}


@dataclass
class Responder(AgentExecutor):
    """An a2a-sdk executor answering with a Message or a completed Task, carrying text (``echo: <its input>``, as
    the sdk samples read input) or data (``{"echo": <its data part>}``)."""

    reply: str
    modality: str
    received: list[list[dict[str, Any]]] = field(default_factory=list)  # each request's parts, as JSON

    def _parts(self, context: RequestContext) -> list[Part]:
        assert context.message is not None
        if self.modality == "text":
            return [Part(text="echo: " + context.get_user_input())]
        data = next(json_format.MessageToDict(p.data) for p in context.message.parts if p.HasField("data"))
        value = struct_pb2.Value()
        json_format.ParseDict({"echo": data}, value)
        return [Part(data=value)]

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None and context.task_id and context.context_id
        self.received.append([json_format.MessageToDict(p) for p in context.message.parts])
        parts = self._parts(context)
        if self.reply == "message":
            reply = Message(role=Role.ROLE_AGENT, message_id=f"r-{len(self.received)}", parts=parts)
            reply.context_id = context.context_id
            await event_queue.enqueue_event(reply)
            return
        task = new_task(context.task_id, context.context_id, TaskState.TASK_STATE_SUBMITTED, history=[context.message])
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.add_artifact(parts, name="result")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError("these tasks finish at once")


@dataclass
class Served:
    url: str
    responder: Responder


@pytest.fixture(scope="module")
def sdk_agents() -> Iterator[dict[str, Served]]:
    with ExitStack() as stack:
        served = {}
        for kind in KINDS:
            reply, modality = kind.split("-")
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            responder = Responder(reply, modality)
            stack.enter_context(serve_in_thread(_sdk_app(responder, url, modality), port=port))  # type: ignore[arg-type]
            served[kind] = Served(url, responder)
        yield served


def _check_output(kind: str, output: Any, received: list[dict[str, Any]]) -> None:
    """The agent got ``ORDER`` in its own media type and answered it back."""
    if kind.endswith("text"):
        assert all("data" not in part for part in received), received  # the dict went as text
        assert json.loads(output["text"].removeprefix("echo: ")) == ORDER  # intact, non-ASCII included
    else:
        assert any("data" in part for part in received), received
        assert output == {"echo": ORDER}


@pytest.mark.parametrize("kind", KINDS)
async def test_our_client_gets_the_result(sdk_agents: dict[str, Served], kind: str) -> None:
    agent = sdk_agents[kind]
    with anyio.fail_after(20):
        async with HttpAgentClient(agent.url, token="") as client:
            modes = accepted_input_modes(await client.get_card(), "echo")
            task = await client.send_message(skill_message("echo", ORDER, accepts=modes))
    assert task.status.state == OurTaskState.COMPLETED
    result = call_result(task)
    assert (result.remote_task_id is None) == kind.startswith("message")  # a Message reply leaves no task
    _check_output(kind, result.output, agent.responder.received[-1])


async def test_the_orchestrator_succeeds_on_every_kind(sdk_agents: dict[str, Served], tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'scaleout.db'}"
    with Registry(db_url) as registry:
        for kind, agent in sdk_agents.items():
            async with HttpAgentClient(agent.url, token="") as client:
                card = await client.get_card()
            card.name = f"sdk-{kind}"  # two agents share each card: the registry keeps agents by name
            card.skills[0].id = kind.replace("-", "_")  # one agent per skill: the router's choice is certain
            registry.register_card(card, transport="a2a", url=agent.url)
        orchestrator = Orchestrator(registry, db_url, router=Router(registry, cache_ttl_s=0))
        try:
            async with orchestrator.running():
                with anyio.fail_after(60):
                    spec = {
                        "tasks": [
                            {
                                "id": kind,
                                "skill": kind.replace("-", "_"),
                                "input": ORDER,
                                "constraints": {"max_attempts": 1},
                            }
                            for kind in KINDS
                        ]
                    }
                    record = await orchestrator.run(spec)
        finally:
            orchestrator.store.close()
    assert record["status"] == "succeeded", record["attempts"]
    outputs = {task["task_id"]: task["output"] for task in record["tasks"]}
    for kind in KINDS:
        _check_output(kind, outputs[kind], sdk_agents[kind].responder.received[-1])
    assert len(record["attempts"]) == len(KINDS)  # one attempt each: nothing failed and was retried
