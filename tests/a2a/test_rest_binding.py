"""The A2A 1.0 HTTP+JSON (REST) binding of an agent server, over real HTTP on loopback.

The card declares it after JSON-RPC; the spec's paths and verbs answer with the same tasks as JSON-RPC; errors
are HTTP statuses with google.rpc bodies (section 5.4 / 11.6); streams are SSE of StreamResponse JSON; the
boundary (auth, size, content type, origin) guards the REST routes too; our client picks the binding from the
card; the official a2a-sdk client's HTTP+JSON transport works against us.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types import GetTaskRequest as SdkGetTaskRequest
from a2a.types import Message as SdkMessage
from a2a.types import Part as SdkPart
from a2a.types import Role as SdkRole
from a2a.types import SendMessageRequest as SdkSendMessageRequest
from a2a.types import TaskState as SdkTaskState
from a2a.utils.errors import TaskNotFoundError as SdkTaskNotFoundError
from google.protobuf import json_format, struct_pb2

from agents.client import HttpAgentClient, skill_message
from agents.client_bindings import HttpJsonBinding, JsonRpcBinding
from agents.examples import echo_agent
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from protocol.a2a import AGENT_CARD_PATH, AgentCard, AgentInterface, TaskState
from protocol.auth import AuthSettings, SigningKey
from protocol.jsonrpc import ERROR_DOMAIN, ERROR_INFO_TYPE, TaskNotFoundError, UnsupportedOperationError

from .conftest import shop_agent

pytestmark = pytest.mark.anyio

HEADERS = {"A2A-Version": "1.0"}


def _send_body(skill: str, data: Any, message_id: str) -> dict[str, Any]:
    return {
        "message": {
            "messageId": message_id,
            "role": "ROLE_USER",
            "parts": [{"data": data}],
            "metadata": {"skill": skill},
        }
    }


def _held(key: str) -> dict[str, Any]:
    """A SendMessage body for ``hold`` (a task that runs until ``release``), answered at once."""
    return {**_send_body("hold", {"key": key}, f"hold-{key}"), "configuration": {"returnImmediately": True}}


def _error_info(reply: httpx.Response) -> dict[str, Any]:
    """The google.rpc.Status body's ErrorInfo, after checking the body's shape (AIP-193)."""
    error = reply.json()["error"]
    assert error["code"] == reply.status_code and error["status"] and error["message"]
    (info,) = [d for d in error["details"] if d["@type"] == ERROR_INFO_TYPE]
    assert info["domain"] == ERROR_DOMAIN
    return dict(info)


def _sse_data(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data JSON) of each SSE event in ``text``."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app(shop_agent(), url), port=port) as served:
        yield served


def test_the_card_declares_jsonrpc_then_http_json(shop: str) -> None:
    card = httpx.get(shop + AGENT_CARD_PATH).json()
    interfaces = [(i["protocolBinding"], i["protocolVersion"], i["url"]) for i in card["supportedInterfaces"]]
    assert interfaces[:2] == [("JSONRPC", "1.0", shop + "/"), ("HTTP+JSON", "1.0", shop)]


def test_paths_and_verbs_serve_the_same_tasks(shop: str) -> None:
    with httpx.Client(base_url=shop, headers=HEADERS, timeout=20) as http:
        sent = http.post("/message:send", json=_send_body("quote", {"sku": "R1", "quantity": 2}, "rest-1"))
        assert sent.status_code == 200 and sent.headers["content-type"].startswith("application/json")
        task = sent.json()["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        assert task["artifacts"][0]["parts"][0]["data"] == {"sku": "R1", "quantity": 2, "total_cents": 500}

        fetched = http.get(f"/tasks/{task['id']}", params={"historyLength": "0"})
        assert fetched.status_code == 200 and fetched.json()["id"] == task["id"]
        assert "history" not in fetched.json()
        listed = http.get("/tasks", params={"contextId": task["contextId"], "pageSize": "5"}).json()
        assert [t["id"] for t in listed["tasks"]] == [task["id"]] and listed["pageSize"] == 5

        held = http.post("/message:send", json=_held("rest-c")).json()["task"]
        cancelled = http.post(f"/tasks/{held['id']}:cancel")  # no body, as the a2a-sdk sends it
        assert cancelled.status_code == 200 and cancelled.json()["status"]["state"] == "TASK_STATE_CANCELED"

        wrong_verb = http.get("/message:send")  # the spec's verb only: no route answers another
        assert wrong_verb.status_code == 404 and _error_info(wrong_verb)["reason"] == "METHOD_NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("GET", "/tasks/no-such-task", None, 404, "TASK_NOT_FOUND"),
        ("POST", "/tasks/no-such-task:cancel", None, 404, "TASK_NOT_FOUND"),
        ("POST", "/message:send", {"message": {"role": "ROLE_USER"}}, 400, "INVALID_PARAMS"),
        ("GET", "/tasks", {"pageSize": "0"}, 400, "INVALID_PARAMS"),
        ("GET", "/extendedAgentCard", None, 400, "EXTENDED_AGENT_CARD_NOT_CONFIGURED"),
        ("POST", "/tasks/t-1/pushNotificationConfigs", {"url": "https://x"}, 400, "PUSH_NOTIFICATION_NOT_SUPPORTED"),
        ("DELETE", "/tasks/t-1/pushNotificationConfigs/c-1", None, 400, "PUSH_NOTIFICATION_NOT_SUPPORTED"),
    ],
)
def test_errors_are_http_statuses_with_google_rpc_bodies(
    shop: str, method: str, path: str, body: Any, status: int, reason: str
) -> None:
    params, content = (body, None) if method == "GET" else (None, body)
    reply = httpx.request(method, shop + path, params=params, json=content, headers=HEADERS, timeout=10)
    assert reply.status_code == status, reply.text
    assert _error_info(reply)["reason"] == reason
    if reason == "INVALID_PARAMS":
        assert "invalid params" in reply.json()["error"]["message"]  # it names what was wrong


def test_a_missing_or_unknown_version_is_refused_with_400(shop: str) -> None:
    for headers in ({}, {"A2A-Version": "99.0"}):
        send = _send_body("quote", {"sku": "V", "quantity": 1}, "v")
        reply = httpx.post(shop + "/message:send", json=send, headers=headers)
        assert reply.status_code == 400 and _error_info(reply)["reason"] == "VERSION_NOT_SUPPORTED"


def test_message_stream_and_subscribe_are_sse_of_stream_responses(shop: str) -> None:
    with httpx.Client(base_url=shop, headers=HEADERS, timeout=20) as http:
        streamed = http.post("/message:stream", json=_send_body("quote", {"sku": "S", "quantity": 1}, "rest-s"))
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = _sse_data(streamed.text)
        assert all(name == "message" and "jsonrpc" not in data for name, data in events)
        assert "task" in events[0][1] and events[-1][1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"

        held = http.post("/message:send", json=_held("rest-sub")).json()["task"]
        with http.stream("POST", f"/tasks/{held['id']}:subscribe") as sub:
            assert sub.status_code == 200 and sub.headers["content-type"].startswith("text/event-stream")
            lines = sub.iter_lines()
            first = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
            assert first["task"]["id"] == held["id"]
            http.post("/message:send", json=_send_body("release", {"key": "rest-sub"}, "rest-r"))
            rest = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
        assert rest[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"

        ended = http.post(f"/tasks/{held['id']}:subscribe")  # an ended task: an HTTP error, not a stream
        assert ended.status_code == 400 and _error_info(ended)["reason"] == "UNSUPPORTED_OPERATION"


def test_the_boundary_guards_rest_routes_and_answers_in_their_format(shop: str) -> None:
    send = _send_body("quote", {"sku": "B", "quantity": 1}, "b")
    too_big = httpx.post(
        shop + "/message:send",
        content=b'{"x": "' + b"a" * 1_100_000 + b'"}',
        headers={**HEADERS, "content-type": "application/json"},
    )
    assert too_big.status_code == 413 and _error_info(too_big)["metadata"]["boundary"] == "PayloadTooLarge"
    text = httpx.post(
        shop + "/message:send", content=json.dumps(send), headers={**HEADERS, "content-type": "text/plain"}
    )
    assert text.status_code == 415 and _error_info(text)["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"
    origin = httpx.post(shop + "/message:send", json=send, headers={**HEADERS, "Origin": "https://evil.example"})
    assert origin.status_code == 403 and _error_info(origin)["metadata"]["boundary"] == "ForbiddenOrigin"
    a2a_json = httpx.post(
        shop + "/message:send", content=json.dumps(send), headers={**HEADERS, "content-type": "application/a2a+json"}
    )
    assert a2a_json.status_code == 200  # the spec's media type is JSON too


def test_bearer_tokens_and_scopes_apply_to_rest_routes(tmp_path: Path) -> None:
    key = SigningKey.generate()
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.jwk()]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(echo_agent(), url, auth=AuthSettings(jwks_file=tmp_path / "jwks.json"))
    send = _send_body("echo", {"text": "hi"}, "auth-1")

    def bearer(*scopes: str) -> dict[str, str]:
        token = key.token("rest-caller", scopes, issuer="scaleout", audience="scaleout", ttl_s=600)
        return {**HEADERS, "Authorization": f"Bearer {token}"}

    with serve_in_thread(app, port):
        anonymous = httpx.post(url + "/message:send", json=send, headers=HEADERS)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer ")
        assert _error_info(anonymous)["reason"] == "UNAUTHENTICATED"
        no_scope = httpx.get(url + "/tasks", headers=bearer("runs:read"))
        assert no_scope.status_code == 403 and _error_info(no_scope)["reason"] == "PERMISSION_DENIED"
        assert httpx.post(url + "/message:send", json=send, headers=bearer("agents:call")).status_code == 200
        extended = httpx.get(url + "/extendedAgentCard", headers=bearer("agents:call"))
        assert extended.status_code == 200 and extended.json()["name"] == "echo"


async def test_several_agents_each_serve_the_binding_under_their_prefix() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app([echo_agent("a"), echo_agent("b")], url), port=port):
        with anyio.fail_after(20):
            client = await HttpAgentClient.from_card_url(f"{url}/agents/b{AGENT_CARD_PATH}", binding="HTTP+JSON")
            async with client:
                assert isinstance(client.binding, HttpJsonBinding) and client.binding.url == f"{url}/agents/b"
                task = await client.send_message(skill_message("echo", {"text": "to b"}))
                assert task.status.state == TaskState.COMPLETED
                assert (await client.get_task(task.id)).id == task.id
                with pytest.raises(TaskNotFoundError):
                    await client.get_task("not-there")
            async with httpx.AsyncClient() as http:  # b's task is not a's
                reply = await http.get(f"{url}/agents/a/tasks/{task.id}", headers=HEADERS)
            assert reply.status_code == 404 and _error_info(reply)["reason"] == "TASK_NOT_FOUND"


def test_the_client_picks_the_first_interface_it_speaks(shop: str) -> None:
    card = AgentCard.model_validate(httpx.get(shop + AGENT_CARD_PATH).json())
    default, rest = HttpAgentClient.for_card(card), HttpAgentClient.for_card(card, binding="http+json")
    assert isinstance(default.binding, JsonRpcBinding) and isinstance(rest.binding, HttpJsonBinding)
    assert rest.binding.url == shop
    grpc_only = card.model_copy(
        update={"supported_interfaces": [AgentInterface(url="grpc://x:1", protocol_binding="GRPC")]}
    )
    with pytest.raises(UnsupportedOperationError, match="GRPC 1.0"):
        HttpAgentClient.for_card(grpc_only)
    with pytest.raises(ValueError, match="unknown A2A binding"):
        HttpAgentClient(shop, binding="SOAP")


def _sdk_request(text: str) -> SdkSendMessageRequest:
    value = struct_pb2.Value()
    json_format.ParseDict({"text": text}, value)
    message = SdkMessage(role=SdkRole.ROLE_USER, message_id=f"sdk-rest-{text}", parts=[SdkPart(data=value)])
    message.metadata.update({"skill": "echo"})
    return SdkSendMessageRequest(message=message)


@pytest.mark.parametrize("streaming", [False, True], ids=["message:send", "message:stream"])
async def test_the_a2a_sdk_http_json_transport_works_against_our_agent(streaming: bool) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app(echo_agent(), url), port=port):
        with anyio.fail_after(20):
            config = ClientConfig(streaming=streaming, supported_protocol_bindings=["HTTP+JSON"])
            client = await create_client(url, client_config=config)
            assert type(client._transport).__name__ == "RestTransport"  # the card's HTTP+JSON interface
            async with client:
                events = [event async for event in client.send_message(_sdk_request(f"r-{streaming}"))]
                task = events[0].task
                fetched = await client.get_task(SdkGetTaskRequest(id=task.id))
                with pytest.raises(SdkTaskNotFoundError):
                    await client.get_task(SdkGetTaskRequest(id="no-such-task"))
    states = [e.task.status.state for e in events if e.HasField("task")]
    states += [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert states[-1] == SdkTaskState.TASK_STATE_COMPLETED
    assert fetched.id == task.id and fetched.status.state == SdkTaskState.TASK_STATE_COMPLETED
    assert json_format.MessageToDict(fetched.artifacts[0].parts[0].data) == {
        "text": f"r-{streaming}",
        "length": len(f"r-{streaming}"),
    }
