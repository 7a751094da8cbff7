"""A2A 0.3 <-> 1.0 conversions (protocol.a2a_v03, a2a_v03_rpc, a2a_v03_card): what a 0.3 peer sends and reads."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.a2a import (
    AgentCard,
    AgentInterface,
    AgentSkill,
    Artifact,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from protocol.a2a_v03 import (
    WRAPPED_DATA_KEY,
    MessageV03,
    PartV03,
    event_from_v03,
    event_to_v03,
    is_v03_version,
    message_from_v03,
    message_to_v03,
    part_from_v03,
    part_to_v03,
    state_from_v03,
    state_to_v03,
)
from protocol.a2a_v03_card import card_from_v03, card_to_v03, jsonrpc_interface, speaks_v03, with_v03_interface
from protocol.a2a_v03_rpc import request_from_v03, request_to_v03, result_from_v03, result_to_v03
from protocol.jsonrpc import InvalidParamsError

V03_CARD: dict[str, Any] = {
    "name": "legacy",
    "description": "a 0.3 agent",
    "version": "2.1",
    "protocolVersion": "0.3.0",
    "url": "https://legacy.example/a2a",
    "preferredTransport": "JSONRPC",
    "additionalInterfaces": [
        {"url": "https://legacy.example/a2a", "transport": "JSONRPC"},
        {"url": "https://legacy.example/rest", "transport": "HTTP+JSON"},
    ],
    "capabilities": {"streaming": True, "stateTransitionHistory": False},
    "defaultInputModes": ["text/plain"],
    "defaultOutputModes": ["text/plain"],
    "supportsAuthenticatedExtendedCard": True,
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "key": {"type": "apiKey", "in": "header", "name": "X-Key"},
    },
    "security": [{"bearer": ["agents:call"]}],
    "skills": [{"id": "summarize", "name": "Summarize", "description": "short summaries", "tags": ["text"]}],
}


def _task(state: TaskState = TaskState.COMPLETED) -> Task:
    return Task(
        id="t-1",
        context_id="c-1",
        status=TaskStatus(state=state, message=Message.agent(Part.from_text("ok"))),
        artifacts=[Artifact(artifact_id="a-1", parts=[Part.from_data({"x": 1})])],
        history=[Message.user(Part.from_text("hi"), message_id="m-1")],
    )


def test_states_round_trip_and_unknown_names_read_as_unspecified() -> None:
    for state in TaskState:
        assert state_from_v03(state_to_v03(state)) == state
    assert state_to_v03(TaskState.INPUT_REQUIRED) == "input-required"
    assert state_from_v03("paused") == TaskState.UNSPECIFIED


@pytest.mark.parametrize(("header", "v03"), [(None, True), ("", True), ("0.3", True), ("0.3.2", True), ("1.0", False)])
def test_version_header_means_0_3_when_missing_empty_or_0_3(header: str | None, v03: bool) -> None:
    assert is_v03_version(header) is v03


def test_parts_convert_both_ways_keeping_non_object_data() -> None:
    assert part_to_v03(Part.from_text("hi")).wire() == {"kind": "text", "text": "hi"}
    assert part_to_v03(Part.from_data({"a": 1})).wire() == {"kind": "data", "data": {"a": 1}}
    wrapped = part_to_v03(Part.from_data([1, 2]))
    assert wrapped.data == {"value": [1, 2]} and wrapped.metadata == {WRAPPED_DATA_KEY: True}
    assert part_from_v03(wrapped).data == [1, 2] and part_from_v03(wrapped).metadata is None
    sdk_wrapped = PartV03(kind="data", data={"value": "s"}, metadata={"data_part_compat": True})
    assert part_from_v03(sdk_wrapped).data == "s"
    file = part_to_v03(Part(url="https://x/y.png", media_type="image/png", filename="y.png")).wire()
    assert file == {"kind": "file", "file": {"name": "y.png", "mimeType": "image/png", "uri": "https://x/y.png"}}
    raw = part_from_v03(PartV03.model_validate({"kind": "file", "file": {"bytes": "eHg=", "mimeType": "a/b"}}))
    assert (raw.raw, raw.media_type) == ("eHg=", "a/b")
    with pytest.raises(ValueError, match="exactly one of file.bytes, file.uri"):
        part_from_v03(PartV03(kind="file"))


def test_messages_round_trip() -> None:
    message = Message.user(Part.from_data({"q": 1}), Part.from_text("t"), context_id="c", task_id="t")
    v03 = message_to_v03(message).wire()
    assert v03["kind"] == "message" and v03["role"] == "user" and v03["contextId"] == "c"
    back = message_from_v03(MessageV03.model_validate(v03))
    assert back.role == Role.USER and [p.data for p in back.parts] == [{"q": 1}, None] and back.parts[1].text == "t"


def test_send_params_from_v03_map_blocking_and_refuse_bad_params() -> None:
    message = {"kind": "message", "messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}
    method, params = request_from_v03("message/send", {"message": message, "configuration": {"blocking": False}})
    request = SendMessageRequest.model_validate(params)
    assert method == "SendMessage" and request.configuration is not None and request.configuration.return_immediately
    _, params = request_from_v03("message/stream", {"message": message, "configuration": {"historyLength": 2}})
    config = SendMessageRequest.model_validate(params).configuration
    assert config is not None and not config.return_immediately and config.history_length == 2
    assert request_from_v03("tasks/get", {"id": "t", "historyLength": 0}) == (
        "GetTask",
        {"id": "t", "historyLength": 0},
    )
    assert request_from_v03("tasks/resubscribe", {"id": "t"}) == ("SubscribeToTask", {"id": "t"})
    assert request_from_v03("tasks/pushNotificationConfig/get", {"id": "t"})[0] == "GetTaskPushNotificationConfig"
    with pytest.raises(InvalidParamsError, match="message/send"):
        request_from_v03("message/send", {"message": {**message, "role": "robot"}})
    with pytest.raises(InvalidParamsError, match="tasks/cancel"):
        request_from_v03("tasks/cancel", {})


def test_requests_to_v03() -> None:
    send = SendMessageRequest(
        message=Message.user(Part.from_text("x"), message_id="m"),
        configuration=SendMessageConfiguration(return_immediately=True, history_length=0),
    )
    method, params = request_to_v03("SendMessage", send)
    assert method == "message/send" and params["configuration"] == {"historyLength": 0, "blocking": False}
    assert params["message"]["parts"] == [{"kind": "text", "text": "x"}]
    assert request_to_v03("SendStreamingMessage", send)[0] == "message/stream"
    assert request_to_v03("GetTask", GetTaskRequest(id="t")) == ("tasks/get", {"id": "t"})
    assert request_to_v03("CancelTask", CancelTaskRequest(id="t")) == ("tasks/cancel", {"id": "t"})
    with pytest.raises(ValueError, match="0.3 has no method ListTasks"):
        request_to_v03("ListTasks", ListTasksRequest())


def test_results_both_ways() -> None:
    task = _task()
    v03_task = result_to_v03("message/send", {"task": task.wire()})
    assert v03_task["kind"] == "task" and v03_task["status"]["state"] == "completed"
    assert v03_task["artifacts"][0]["parts"] == [{"kind": "data", "data": {"x": 1}}]
    assert Task.model_validate(result_from_v03("GetTask", v03_task)) == task
    reply = Message.agent(Part.from_text("direct"), message_id="r")
    v03_reply = result_to_v03("message/send", {"message": reply.wire()})
    assert v03_reply["kind"] == "message" and v03_reply["role"] == "agent"
    assert result_from_v03("SendMessage", v03_reply)["message"]["parts"][0]["text"] == "direct"
    assert "task" in result_from_v03("SendMessage", {k: v for k, v in v03_task.items() if k != "kind"})
    assert result_to_v03("tasks/cancel", task.wire())["id"] == "t-1"
    with pytest.raises(ValueError, match="not a JSON object"):
        result_from_v03("GetTask", [])


@pytest.mark.parametrize(
    ("state", "final"), [(TaskState.WORKING, False), (TaskState.INPUT_REQUIRED, True), (TaskState.FAILED, True)]
)
def test_status_updates_are_final_when_the_stream_ends(state: TaskState, final: bool) -> None:
    update = TaskStatusUpdateEvent(task_id="t", context_id="c", status=TaskStatus(state=state))
    event = event_to_v03(StreamResponse(status_update=update))
    assert event["kind"] == "status-update" and event["final"] is final
    assert event_from_v03(event).status_update == update


def test_artifact_and_task_events_round_trip_and_kind_is_guessed_when_missing() -> None:
    change = TaskArtifactUpdateEvent(
        task_id="t", context_id="c", artifact=Artifact(artifact_id="a", parts=[Part.from_text("p")]), last_chunk=True
    )
    event = event_to_v03(StreamResponse(artifact_update=change))
    assert event["kind"] == "artifact-update" and event["lastChunk"] is True
    assert event_from_v03({k: v for k, v in event.items() if k != "kind"}).artifact_update == change
    task = _task()
    assert event_from_v03(event_to_v03(StreamResponse(task=task))).task == task
    with pytest.raises(ValueError, match="unknown 0.3 stream event kind"):
        event_from_v03({"kind": "sparkle"})


def test_a_v03_card_reads_as_1_0_with_its_skills_url_and_security() -> None:
    card = AgentCard.model_validate(card_from_v03(V03_CARD))
    assert [(i.url, i.protocol_binding, i.protocol_version) for i in card.supported_interfaces] == [
        ("https://legacy.example/a2a", "JSONRPC", "0.3.0"),
        ("https://legacy.example/rest", "HTTP+JSON", "0.3.0"),
    ]
    assert card.url == "https://legacy.example/a2a" and [s.id for s in card.skills] == ["summarize"]
    assert card.capabilities.extended_agent_card and card.capabilities.streaming
    assert card.security_schemes["bearer"] == {"httpAuthSecurityScheme": {"scheme": "bearer", "bearerFormat": "JWT"}}
    assert card.security_schemes["key"] == {"apiKeySecurityScheme": {"location": "header", "name": "X-Key"}}
    assert card.security_requirements == [{"schemes": {"bearer": {"list": ["agents:call"]}}}]
    assert speaks_v03(card)
    assert card_from_v03(card.wire()) == card.wire()  # a 1.0 card passes unchanged


def test_a_1_0_card_declares_0_3_and_has_a_0_3_view() -> None:
    card = AgentCard(
        name="ours",
        description="d",
        version="1",
        supported_interfaces=[AgentInterface(url="http://127.0.0.1:9/")],
        skills=[AgentSkill(id="s", name="s", description="d")],
        security_schemes={"bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}}},
        security_requirements=[{"schemes": {"bearer": {"list": ["agents:call"]}}}],
    )
    both = with_v03_interface(card)
    assert [i.protocol_version for i in both.supported_interfaces] == ["1.0", "0.3"]
    assert with_v03_interface(both) == both and not speaks_v03(both)
    assert jsonrpc_interface(both) == card.supported_interfaces[0]
    view = card_to_v03(both.wire())
    assert (view["url"], view["preferredTransport"], view["protocolVersion"]) == (
        "http://127.0.0.1:9/",
        "JSONRPC",
        "0.3.0",
    )
    assert view["security"] == [{"bearer": ["agents:call"]}]
    assert (
        view["securitySchemes"]["bearer"]["type"] == "http" and view["securitySchemes"]["bearer"]["scheme"] == "Bearer"
    )
    assert view["supportedInterfaces"] == both.wire()["supportedInterfaces"]  # the 1.0 fields stay beside
    only_v03 = card.model_copy(update={"supported_interfaces": [AgentInterface(url="u", protocol_version="0.3")]})
    assert speaks_v03(only_v03) and with_v03_interface(only_v03) == only_v03
