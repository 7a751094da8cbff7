"""Outputs by media type: a caller's ``acceptedOutputModes`` decides whether a result comes as a data part, a text
part, or both; a caller that accepts neither gets -32005 naming the modes (over real HTTP, our server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types import Message, Part, Role, SendMessageRequest, TaskState
from google.protobuf import json_format, struct_pb2
from pydantic import BaseModel

from agents.agent import Agent, SkillContext
from agents.client import HttpAgentClient, skill_message
from agents.output_parts import OUTPUT_MODES, accepted_output_modes, output_parts, result_text
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from protocol.a2a import PROTOCOL_VERSION, VERSION_HEADER
from protocol.jsonrpc import ContentTypeNotSupportedError

pytestmark = pytest.mark.anyio

HEADERS = {VERSION_HEADER: PROTOCOL_VERSION}


class Words(BaseModel):
    text: str


class Shout(BaseModel):
    text: str


class Count(BaseModel):
    text: str
    words: int


def _agent() -> Agent:
    """``shout`` answers one string field (its text part is that string), ``count`` two fields (JSON text)."""
    agent = Agent("modes", "Answers in the media types its caller accepts; test agent")

    @agent.skill()
    async def shout(ctx: SkillContext, req: Words) -> Shout:
        """Upper-case the text."""
        return Shout(text=req.text.upper())

    @agent.skill()
    async def count(ctx: SkillContext, req: Words) -> Count:
        """Count the words."""
        return Count(text=req.text, words=len(req.text.split()))

    return agent


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app(_agent(), url), port=port) as served:
        yield served


def _send(base_url: str, skill: str, text: str, accepted: list[str] | None) -> dict[str, Any]:
    message = {"role": "ROLE_USER", "messageId": f"m-{skill}-{accepted}", "parts": [{"data": {"text": text}}]}
    params: dict[str, Any] = {"message": {**message, "metadata": {"skill": skill}}}
    if accepted is not None:
        params["configuration"] = {"acceptedOutputModes": accepted}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
    reply = httpx.post(base_url + "/", json=body, headers=HEADERS, timeout=10.0)
    payload: dict[str, Any] = reply.json()
    return payload


def test_parts_follow_the_accepted_modes() -> None:
    result = {"text": "hi", "words": 1}
    assert [p.data for p in output_parts(result)] == [result]  # nothing said: JSON, as before
    both = output_parts(result, ["application/json", "text/plain"])
    assert [(p.media_type, p.data, p.text) for p in both] == [
        ("application/json", result, None),
        ("text/plain", None, '{"text": "hi", "words": 1}'),
    ]
    assert [p.text for p in output_parts({"text": "HI"}, ["text/plain; charset=utf-8"])] == ["HI"]
    assert [p.media_type for p in output_parts(result, ["*/*"])] == list(OUTPUT_MODES)
    assert accepted_output_modes(["text/*", "image/png"]) == ("text/plain",)
    assert result_text({"n": 3}) == '{"n": 3}' and result_text({"text": "é"}) == "é"
    with pytest.raises(ContentTypeNotSupportedError, match=r"\['image/png'\].*application/json or text/plain"):
        output_parts(result, ["image/png"])


@pytest.mark.parametrize(
    ("accepted", "kinds"),
    [
        (None, ["data"]),
        (["application/json"], ["data"]),
        (["text/plain"], ["text"]),
        (["application/json", "text/plain"], ["data", "text"]),
    ],
    ids=["unsaid", "json", "text", "both"],
)
def test_a_caller_gets_the_parts_it_accepts(base_url: str, accepted: list[str] | None, kinds: list[str]) -> None:
    task = _send(base_url, "count", "two words", accepted)["result"]["task"]
    parts = task["artifacts"][0]["parts"]
    assert [next(k for k in ("data", "text") if k in part) for part in parts] == kinds
    for part in parts:
        value = part["data"] if "data" in part else json.loads(part["text"])
        assert value == {"text": "two words", "words": 2}
    assert "usage" in task["artifacts"][0]["metadata"]


def test_a_single_string_field_is_the_text(base_url: str) -> None:
    task = _send(base_url, "shout", "hey", ["text/plain"])["result"]["task"]
    assert task["artifacts"][0]["parts"] == [{"text": "HEY", "mediaType": "text/plain"}]


def test_modes_no_skill_produces_are_refused_by_name(base_url: str) -> None:
    error = _send(base_url, "count", "x", ["image/png", "audio/wav"])["error"]
    assert error["code"] == -32005
    assert "'image/png', 'audio/wav'" in error["message"] and "application/json or text/plain" in error["message"]


def test_the_card_says_skills_answer_in_json_and_text(base_url: str) -> None:
    card = httpx.get(base_url + "/.well-known/agent-card.json", timeout=10.0).json()
    assert all(skill["outputModes"] == list(OUTPUT_MODES) for skill in card["skills"])
    assert set(OUTPUT_MODES) <= set(card["defaultOutputModes"])


async def test_sdk_client_accepting_only_text_gets_text(base_url: str) -> None:
    value = struct_pb2.Value()
    json_format.ParseDict({"text": "a b c"}, value)
    message = Message(role=Role.ROLE_USER, message_id="sdk-text", parts=[Part(data=value)])
    message.metadata.update({"skill": "count"})
    config = ClientConfig(streaming=False, accepted_output_modes=["text/plain"])
    with anyio.fail_after(20):
        client = await create_client(base_url, client_config=config)
        async with client:
            events = [event async for event in client.send_message(SendMessageRequest(message=message))]
    task = events[-1].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    (part,) = task.artifacts[0].parts
    assert part.WhichOneof("content") == "text" and json.loads(part.text) == {"text": "a b c", "words": 3}


async def test_our_client_names_no_modes_and_gets_json_as_before(base_url: str) -> None:
    with anyio.fail_after(20):
        async with HttpAgentClient(base_url, token="") as client:
            task = await client.send_message(skill_message("count", {"text": "one two"}))
    assert task.artifacts is not None
    assert [p.data for p in task.artifacts[0].parts] == [{"text": "one two", "words": 2}]
