"""The agents' HTTP surfaces (A2A JSON-RPC, MCP, the card) as an attacker on this machine would try them, over
real HTTP on loopback: content type, version header, Host/Origin (DNS rebinding), body size, nesting, UTF-8,
the MCP session flood and the bytes retained by finished tasks. Each refusal is a clear JSON-RPC error with its
HTTP status, and the server answers the next good request."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field

from agents.agent import Agent, SkillContext
from agents.examples import echo_agent
from agents.serve import create_app
from agents.tasks import TaskRuntime
from agents.testing import free_port, serve_in_thread
from protocol.a2a import AGENT_CARD_PATH, PROTOCOL_VERSION, VERSION_HEADER

HEADERS = {VERSION_HEADER: PROTOCOL_VERSION}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}
EVIL = "evil.example.com"


def _send(text: str = "hi", skill: str = "echo", **configuration: Any) -> dict[str, Any]:
    message = {
        "role": "ROLE_USER",
        "messageId": "m-1",
        "metadata": {"skill": skill},
        "parts": [{"data": {"text": text}}],
    }
    params: dict[str, Any] = {"message": message}
    if configuration:
        params["configuration"] = configuration
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    """An echo agent served as ``scaleout agent serve`` serves it (default limits), on loopback."""
    port = free_port()
    with serve_in_thread(create_app(echo_agent(), f"http://127.0.0.1:{port}"), port) as url:
        yield url


@pytest.fixture
def http(agent_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agent_url, timeout=20.0) as client:
        yield client


def _rpc_error(reply: httpx.Response, status: int, code: int) -> str:
    """The JSON-RPC error message of ``reply``, checking its HTTP status and error code; one line."""
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    body = reply.json()
    assert body["jsonrpc"] == "2.0" and "result" not in body, body
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert message and "\n" not in message
    return message


def _still_serves(http: httpx.Client) -> None:
    reply = http.post("/", json=_send("after"), headers=HEADERS)
    assert reply.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS).status_code == 200


# -- content type and version header: what a cross-site form or a link could send -----------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "", None], ids=["text-plain", "empty", "absent"])
def test_a2a_post_without_json_content_type_is_415(http: httpx.Client, content_type: str | None) -> None:
    headers = dict(HEADERS)
    if content_type is not None:
        headers["Content-Type"] = content_type
    reply = http.post("/", content=json.dumps(_send()).encode(), headers=headers)
    assert "application/json" in _rpc_error(reply, 415, -32005)
    _still_serves(http)


def test_mcp_post_without_json_content_type_is_415(http: httpx.Client) -> None:
    reply = http.post("/mcp", content=json.dumps(INITIALIZE), headers={**MCP_HEADERS, "Content-Type": "text/plain"})
    assert "application/json" in _rpc_error(reply, 415, -32005)


def test_a2a_version_in_the_query_string_is_not_read(http: httpx.Client) -> None:
    reply = http.post("/", json=_send(), params={VERSION_HEADER: PROTOCOL_VERSION})
    message = _rpc_error(reply, 200, -32009)
    assert f"{VERSION_HEADER}: {PROTOCOL_VERSION}" in message
    _still_serves(http)


# -- DNS rebinding: a foreign Host or Origin on every route ---------------------------------------------------------


def _request(http: httpx.Client, route: str, headers: dict[str, str]) -> httpx.Response:
    if route == "card":
        return http.get(AGENT_CARD_PATH, headers=headers)
    if route == "mcp":
        return http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
    return http.post("/", json=_send(), headers={**HEADERS, **headers})


@pytest.mark.parametrize("route", ["a2a", "mcp", "card"])
@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("Host", EVIL, 421),
        ("Host", f"{EVIL}:{{port}}", 421),
        ("Origin", f"http://{EVIL}", 403),
        ("Origin", "http://{host}.evil.example.com", 403),
        ("Origin", "null", 403),
    ],
)
def test_foreign_host_and_origin_are_refused(
    http: httpx.Client, agent_url: str, route: str, header: str, value: str, status: int
) -> None:
    port = agent_url.rsplit(":", 1)[1]
    value = value.format(port=port, host="127.0.0.1")
    reply = _request(http, route, {header: value})
    message = _rpc_error(reply, status, -32600)
    assert (f"--allow-{header.lower()}") in message
    own = {"Host": f"127.0.0.1:{port}"} if header == "Host" else {"Origin": f"http://127.0.0.1:{port}"}
    assert _request(http, route, own).status_code == 200
    assert _request(http, route, {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}).status_code == 200


# -- bodies: size, nesting, UTF-8 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/mcp"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_two_megabyte_body_is_413(http: httpx.Client, path: str, chunked: bool) -> None:
    body = json.dumps(_send("x" * 2_000_000)).encode()
    content: Any = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    reply = http.post(path, content=content, headers={**HEADERS, **MCP_HEADERS, "Content-Type": "application/json"})
    assert "limit of 1000000 bytes" in _rpc_error(reply, 413, -32600)
    _still_serves(http)


@pytest.mark.parametrize("path", ["/", "/mcp"])
@pytest.mark.parametrize("depth", [100, 100_000])
def test_deep_nesting_is_400(http: httpx.Client, path: str, depth: int) -> None:
    body = '{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"x": ' + "[" * depth + "]" * depth + "}}"
    reply = http.post(path, content=body, headers={**HEADERS, **MCP_HEADERS, "Content-Type": "application/json"})
    assert "deeper than 64 levels" in _rpc_error(reply, 400, -32600)
    _still_serves(http)


@pytest.mark.parametrize("path", ["/", "/mcp"])
def test_invalid_utf8_is_a_parse_error(http: httpx.Client, path: str) -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"text": "\xff\xfe"}}'
    reply = http.post(path, content=body, headers={**HEADERS, **MCP_HEADERS, "Content-Type": "application/json"})
    assert "UTF-8" in _rpc_error(reply, 400, -32700)
    _still_serves(http)


# -- MCP sessions: one client cannot lock everyone out --------------------------------------------------------------


def _open_session(http: httpx.Client) -> str:
    reply = http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert reply.status_code == 200, reply.text
    return reply.headers["mcp-session-id"]


def _on_session(session_id: str) -> dict[str, str]:
    return {**MCP_HEADERS, "Mcp-Session-Id": session_id, "Mcp-Protocol-Version": "2025-11-25"}


def _tools_list(http: httpx.Client, session_id: str) -> httpx.Response:
    request = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    return http.post("/mcp", json=request, headers=_on_session(session_id))


def test_a_session_flood_evicts_the_flooders_idle_sessions() -> None:
    app = create_app(echo_agent(), mcp_sessions_per_client=4)
    mcp = app.agent_server.mcp_apps["echo"]
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=20) as http:
        flood = [_open_session(http) for _ in range(40)]
        assert mcp.session_count("127.0.0.1") == 4
        assert _tools_list(http, flood[0]).status_code == 404  # the least recently used went first
        assert _tools_list(http, flood[-1]).status_code == 200
        newcomer = _open_session(http)
        assert _tools_list(http, newcomer).status_code == 200
        assert _tools_list(http, flood[-1]).status_code == 200  # used just now, so not the one evicted
        assert mcp.session_count() == 4


def test_sessions_all_busy_get_a_clear_503_until_one_ends() -> None:
    app = create_app(echo_agent(), mcp_sessions_per_client=2)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=20) as http:
        first, second = _open_session(http), _open_session(http)
        get = {**_on_session(first), "Accept": "text/event-stream"}
        with (
            http.stream("GET", "/mcp", headers=get) as one,
            http.stream("GET", "/mcp", headers={**get, "Mcp-Session-Id": second}) as two,
        ):
            assert one.status_code == two.status_code == 200  # both sessions now have a request in flight
            refused = http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            message = _rpc_error(refused, 503, -32603)
            assert "2 MCP sessions" in message and "Mcp-Session-Id" in message
            assert http.delete("/mcp", headers=_on_session(first)).status_code == 200
            assert _tools_list(http, _open_session(http)).status_code == 200


@pytest.mark.slow
def test_one_client_opening_more_sessions_than_the_global_cap_does_not_lock_others_out(agent_url: str) -> None:
    """The issue's probe at the default limits: 1,050 sessions from one address, then another still opens."""
    with httpx.Client(base_url=agent_url, timeout=20) as http:
        for _ in range(1_050):
            _open_session(http)
        assert _tools_list(http, _open_session(http)).status_code == 200


# -- finished tasks: bounded in bytes, live tasks kept --------------------------------------------------------------


class BlobIn(BaseModel):
    size: int = Field(ge=0, le=2_000_000)


class BlobOut(BaseModel):
    data: str


class Key(BaseModel):
    text: str


def _bulk_agent() -> Agent:
    agent = Agent("bulk", "Answers with large outputs; holds tasks open on request")
    gate: dict[str, Any] = {}

    @agent.skill()
    async def blob(ctx: SkillContext, req: BlobIn) -> BlobOut:
        """A ``size``-character answer."""
        return BlobOut(data="x" * req.size)

    @agent.skill()
    async def hold(ctx: SkillContext, req: Key) -> Key:
        """Stay running until ``release``."""
        import anyio

        gate.setdefault("event", anyio.Event())
        await gate["event"].wait()
        return req

    @agent.skill()
    async def release(ctx: SkillContext, req: Key) -> Key:
        """Let ``hold`` finish."""
        import anyio

        gate.setdefault("event", anyio.Event()).set()
        return req

    return agent


def _rpc(http: httpx.Client, method: str, params: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = http.post(
        "/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, headers=HEADERS
    ).json()
    return body


_BLOBS = itertools.count()  # a new message id per call: a repeated one would answer with the same task


def _blob(http: httpx.Client, size: int) -> str:
    message = {
        "role": "ROLE_USER",
        "messageId": f"b-{size}-{next(_BLOBS)}",
        "metadata": {"skill": "blob"},
        "parts": [{"data": {"size": size}}],
    }
    task = _rpc(http, "SendMessage", {"message": message, "configuration": {"historyLength": 0}})["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    return str(task["id"])


def test_retained_tasks_are_bounded_in_bytes_and_live_tasks_stay() -> None:
    app = create_app(_bulk_agent())
    app.agent_server.runtimes["bulk"].max_retained_bytes = 8_000_000
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        held = _rpc(http, "SendMessage", _send(skill="hold", returnImmediately=True)["params"])["result"]["task"]
        finished = [_blob(http, 1_000_000) for _ in range(20)]
        assert _rpc(http, "GetTask", {"id": finished[0]})["error"]["code"] == -32001  # the oldest went first
        assert _rpc(http, "GetTask", {"id": finished[-1], "historyLength": 0})["result"]["id"] == finished[-1]
        kept = [t for t in finished if "result" in _rpc(http, "GetTask", {"id": t, "historyLength": 0})]
        assert 4 <= len(kept) <= 8 and kept == finished[-len(kept) :]
        live = _rpc(http, "GetTask", {"id": held["id"]})["result"]
        assert live["status"]["state"] == "TASK_STATE_WORKING"  # live tasks are never evicted
        _rpc(http, "SendMessage", _send(skill="release")["params"])
    assert TaskRuntime(echo_agent()).max_retained_bytes == 64 * 1024 * 1024  # the default


# -- the command line ----------------------------------------------------------------------------------------------


def test_agent_serve_command_applies_its_security_settings() -> None:
    port = free_port()
    command = [sys.executable, "-c", "import sys; from orchestrator.cli import main; sys.exit(main())"]
    command += ["agent", "serve", "agents.examples:echo_agent", "--port", str(port)]
    command += ["--allow-host", "agents.example.org", "--allow-origin", "https://app.example.org"]
    command += ["--max-body-bytes", "2000", "--header-timeout", "0.5", "--mcp-sessions-per-client", "1"]
    command += ["--mcp-idle-timeout", "60"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        assert "agent-card.json" in server.stderr.readline()  # printed just before it starts listening
        assert "callers are not authenticated" in server.stderr.readline()  # no --jwks: said once, at start-up
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=10, transport=httpx.HTTPTransport(retries=20)
        ) as http:
            assert http.get(AGENT_CARD_PATH, headers={"Host": "agents.example.org"}).status_code == 200
            assert http.get(AGENT_CARD_PATH, headers={"Host": EVIL}).status_code == 421
            assert http.get(AGENT_CARD_PATH, headers={"Origin": "https://app.example.org"}).status_code == 200
            assert http.get(AGENT_CARD_PATH, headers={"Origin": f"https://{EVIL}"}).status_code == 403
            reply = http.post("/", json=_send("x" * 3000), headers=HEADERS)
            assert "limit of 2000 bytes" in _rpc_error(reply, 413, -32600)
            first = _open_session(http)
            _open_session(http)  # over the cap of 1: the first (idle) session ends
            assert _tools_list(http, first).status_code == 404
        with socket.create_connection(("127.0.0.1", port), timeout=10) as half_sent:
            half_sent.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finishes its head
            assert half_sent.recv(1024) == b""  # closed by the server after the header deadline, not our timeout
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--max-body-bytes", "0", "max_body_bytes"),
        ("--header-timeout", "-1", "header_timeout_s"),
        ("--mcp-sessions-per-client", "0", "at least 1"),
        ("--mcp-idle-timeout", "0", "positive number of seconds"),
    ],
)
def test_agent_serve_refuses_bad_settings_before_serving(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli import main

    assert main(["agent", "serve", "agents.examples:echo_agent", "--port", "1", flag, value]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and says in error and error.count("\n") == 1
