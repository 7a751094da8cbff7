"""Bad input over real HTTP: every malformed or unsupported request gets the right JSON-RPC error, and the
server keeps serving good requests afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from agents.client import HttpAgentClient, skill_message
from agents.jsonrpc_server import MAX_BODY_BYTES
from protocol.a2a import PROTOCOL_VERSION, VERSION_HEADER, TaskState

pytestmark = pytest.mark.anyio

HEADERS = {VERSION_HEADER: PROTOCOL_VERSION}


def _envelope(method: str, params: dict[str, Any] | None, rpc_id: int | str = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params or {}}


def _send_params(data: Any, skill: str | None = "quote", **message: Any) -> dict[str, Any]:
    metadata = {"skill": skill} if skill else None
    part = {"data": data} if not isinstance(data, str) else {"text": data}
    msg = {"role": "ROLE_USER", "messageId": "m-1", "parts": [part], **message}
    if metadata:
        msg["metadata"] = metadata
    return {"message": msg}


@pytest.fixture
def http(shop_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shop_url, timeout=10.0) as client:
        yield client


def _good_request_still_works(http: httpx.Client) -> None:
    reply = http.post("/", json=_envelope("SendMessage", _send_params({"sku": "A1", "quantity": 2})), headers=HEADERS)
    task = reply.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"][0]["data"] == {"sku": "A1", "quantity": 2, "total_cents": 500}


def _error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert "result" not in body, body
    assert body["jsonrpc"] == "2.0"
    error: dict[str, Any] = body["error"]
    assert error["data"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    return error


def _completed_task_id(http: httpx.Client) -> str:
    reply = http.post("/", json=_envelope("SendMessage", _send_params({"sku": "B", "quantity": 1})), headers=HEADERS)
    task = reply.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    return str(task["id"])


def test_malformed_json_is_a_parse_error(http: httpx.Client) -> None:
    reply = http.post(
        "/", content=b'{"jsonrpc": "2.0", "method": ', headers={**HEADERS, "Content-Type": "application/json"}
    )
    assert reply.status_code == 400
    error = _error(reply)
    assert error["code"] == -32700
    assert reply.json()["id"] is None
    _good_request_still_works(http)


def test_wrong_content_type_is_rejected(http: httpx.Client) -> None:
    body = json.dumps(_envelope("SendMessage", _send_params({"sku": "A", "quantity": 1})))
    reply = http.post("/", content=body, headers={**HEADERS, "Content-Type": "text/plain"})
    assert reply.status_code == 415
    error = _error(reply)
    assert error["code"] == -32005
    assert "application/json" in error["message"]
    _good_request_still_works(http)


@pytest.mark.parametrize("payload", [[1, 2], {"jsonrpc": "1.0", "method": "GetTask"}, {"method": "GetTask", "id": 3}])
def test_not_a_jsonrpc_request(http: httpx.Client, payload: Any) -> None:
    error = _error(http.post("/", json=payload, headers=HEADERS))
    assert error["code"] == -32600
    _good_request_still_works(http)


def test_unknown_method(http: httpx.Client) -> None:
    reply = http.post("/", json=_envelope("DoMagic", {}, rpc_id="abc"), headers=HEADERS)
    error = _error(reply)
    assert error["code"] == -32601
    assert "DoMagic" in error["message"]
    assert reply.json()["id"] == "abc"
    _good_request_still_works(http)


@pytest.mark.parametrize("method", ["GetTask", "CancelTask", "SubscribeToTask"])
def test_unknown_task_id(http: httpx.Client, method: str) -> None:
    error = _error(http.post("/", json=_envelope(method, {"id": "no-such-task"}), headers=HEADERS))
    assert error["code"] == -32001
    assert "no-such-task" in error["message"]
    _good_request_still_works(http)


def test_follow_up_on_unknown_task_id(http: httpx.Client) -> None:
    params = _send_params({"sku": "A", "quantity": 1}, taskId="missing-task")
    error = _error(http.post("/", json=_envelope("SendMessage", params), headers=HEADERS))
    assert error["code"] == -32001
    _good_request_still_works(http)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_size_limit(http: httpx.Client, chunked: bool) -> None:
    big = json.dumps(_envelope("SendMessage", _send_params("x" * (MAX_BODY_BYTES + 10)))).encode()
    content: Any = iter([big[i : i + 65536] for i in range(0, len(big), 65536)]) if chunked else big
    reply = http.post("/", content=content, headers={**HEADERS, "Content-Type": "application/json"})
    assert reply.status_code == 413
    error = _error(reply)
    assert error["code"] == -32600
    assert f"limit of {MAX_BODY_BYTES} bytes" in error["message"]
    _good_request_still_works(http)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"sku": "A", "quantity": 0}, "quantity"),
        ({"quantity": 3}, "sku"),
        ({"sku": "A", "quantity": "many"}, "quantity"),
    ],
)
def test_skill_arguments_failing_validation(http: httpx.Client, data: dict[str, Any], field: str) -> None:
    error = _error(http.post("/", json=_envelope("SendMessage", _send_params(data)), headers=HEADERS))
    assert error["code"] == -32602
    assert field in error["message"] and "quote" in error["message"]
    _good_request_still_works(http)


def test_unknown_skill(http: httpx.Client) -> None:
    params = _send_params({"sku": "A", "quantity": 1}, skill="teleport")
    error = _error(http.post("/", json=_envelope("SendMessage", params), headers=HEADERS))
    assert error["code"] == -32602
    assert "teleport" in error["message"] and "quote" in error["message"]
    _good_request_still_works(http)


def test_params_failing_the_wire_model(http: httpx.Client) -> None:
    params = {"message": {"role": "ROLE_USER", "messageId": "m", "parts": []}}
    error = _error(http.post("/", json=_envelope("SendMessage", params), headers=HEADERS))
    assert error["code"] == -32602
    assert "message.parts" in error["message"]
    _good_request_still_works(http)


def test_unsupported_part_media_type(http: httpx.Client) -> None:
    params = {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"raw": "dGNr", "mediaType": "image/png"}]}}
    error = _error(http.post("/", json=_envelope("SendMessage", params), headers=HEADERS))
    assert error["code"] == -32005
    assert "image/png" in error["message"]
    _good_request_still_works(http)


@pytest.mark.parametrize("version", ["0.3", "99.0", "2.0", "banana"])
def test_unsupported_version_header(http: httpx.Client, version: str) -> None:
    body = _envelope("SendMessage", _send_params({"sku": "A", "quantity": 1}))
    error = _error(http.post("/", json=body, headers={VERSION_HEADER: version}))
    assert error["code"] == -32009
    assert "1.0" in error["message"]
    _good_request_still_works(http)


@pytest.mark.parametrize("headers", [{}, {VERSION_HEADER: ""}], ids=["missing", "empty"])
def test_missing_version_header_means_0_3(http: httpx.Client, headers: dict[str, str]) -> None:
    body = _envelope("SendMessage", _send_params({"sku": "A", "quantity": 1}))
    error = _error(http.post("/", json=body, headers=headers))
    assert error["code"] == -32009
    assert "0.3" in error["message"] and f"{VERSION_HEADER}: {PROTOCOL_VERSION}" in error["message"]
    _good_request_still_works(http)


def test_patch_version_is_accepted(http: httpx.Client) -> None:
    body = _envelope("SendMessage", _send_params({"sku": "A", "quantity": 1}))
    reply = http.post("/", json=body, headers={VERSION_HEADER: "1.0.3"})
    assert reply.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_cancel_of_a_finished_task(http: httpx.Client) -> None:
    task_id = _completed_task_id(http)
    error = _error(http.post("/", json=_envelope("CancelTask", {"id": task_id}), headers=HEADERS))
    assert error["code"] == -32002
    assert task_id in error["message"]
    _good_request_still_works(http)


def test_follow_up_on_a_finished_task(http: httpx.Client) -> None:
    task_id = _completed_task_id(http)
    params = _send_params({"sku": "A", "quantity": 1}, taskId=task_id)
    error = _error(http.post("/", json=_envelope("SendMessage", params), headers=HEADERS))
    assert error["code"] == -32004
    _good_request_still_works(http)


def test_follow_up_with_a_mismatching_context(http: httpx.Client) -> None:
    task_id = _completed_task_id(http)
    params = _send_params({"sku": "A", "quantity": 1}, taskId=task_id, contextId="another-context")
    error = _error(http.post("/", json=_envelope("SendMessage", params), headers=HEADERS))
    assert error["code"] == -32602
    assert "another-context" in error["message"]
    _good_request_still_works(http)


@pytest.mark.parametrize(
    "method",
    [
        "CreateTaskPushNotificationConfig",
        "GetTaskPushNotificationConfig",
        "ListTaskPushNotificationConfigs",
        "DeleteTaskPushNotificationConfig",
    ],
)
def test_push_notification_methods(http: httpx.Client, method: str) -> None:
    error = _error(http.post("/", json=_envelope(method, {"taskId": "t"}), headers=HEADERS))
    assert error["code"] == -32003
    _good_request_still_works(http)


def test_push_config_in_send_message(http: httpx.Client) -> None:
    params = _send_params({"sku": "A", "quantity": 1})
    params["configuration"] = {"taskPushNotificationConfig": {"url": "http://127.0.0.1:1/hook"}}
    error = _error(http.post("/", json=_envelope("SendMessage", params), headers=HEADERS))
    assert error["code"] == -32003
    _good_request_still_works(http)


def test_get_extended_agent_card(http: httpx.Client) -> None:
    error = _error(http.post("/", json=_envelope("GetExtendedAgentCard", {}), headers=HEADERS))
    assert error["code"] == -32007
    _good_request_still_works(http)


def test_unsupported_output_mode(http: httpx.Client) -> None:
    params = _send_params({"sku": "A", "quantity": 1})
    params["configuration"] = {"acceptedOutputModes": ["image/png"]}
    error = _error(http.post("/", json=_envelope("SendMessage", params), headers=HEADERS))
    assert error["code"] == -32005
    _good_request_still_works(http)


async def test_streaming_errors_before_the_first_event_are_plain_jsonrpc(shop_url: str) -> None:
    with anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=shop_url, headers=HEADERS) as client:
            reply = await client.post("/", json=_envelope("SendStreamingMessage", _send_params({"quantity": 1})))
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json()["error"]["code"] == -32602


async def test_our_client_sends_the_version_even_through_a_shared_httpx_client(shop_url: str) -> None:
    with anyio.fail_after(20):
        async with httpx.AsyncClient() as shared:  # no A2A-Version default header on it
            client = HttpAgentClient(shop_url + "/", http=shared)
            task = await client.send_message(skill_message("quote", {"sku": "S", "quantity": 1}))
            streamed = [e async for e in client.stream_message(skill_message("quote", {"sku": "S", "quantity": 1}))]
    assert task.status.state == TaskState.COMPLETED
    last = streamed[-1].status_update
    assert last is not None and last.status.state == TaskState.COMPLETED
