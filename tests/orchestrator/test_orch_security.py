"""Issue 9 on the orchestrator's HTTP API, over real HTTP on loopback, on SQLite and PostgreSQL: bad input, web
pages and oversized work are refused with a one-line 4xx before anything is stored, and a good run works after."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

from agents.agent import Agent, SkillContext
from agents.errors import AgentError
from agents.mcp_client import McpToolClient, McpToolError
from agents.testing import serve_in_thread
from orchestrator.api import create_app
from orchestrator.client import OrchestratorClient
from orchestrator.limits import RunLimits
from orchestrator.runs import RunStore, now
from orchestrator.writer import RunWriter
from tests.orchestrator.conftest import Behaviour, Platform, WorkIn, WorkOut, worker

pytestmark = pytest.mark.anyio

GOOD = {"skill": "work", "input": {"text": "ok"}}
JSON = {"Content-Type": "application/json"}


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


@dataclass
class Case:
    """One bad request: what is sent, and the status, error type and message fragment expected back."""

    name: str
    method: str
    path: str
    status: int
    kind: str
    fragment: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def post(name: str, status: int, kind: str, fragment: str, content: bytes, **headers: str) -> Case:
    return Case(name, "POST", "/runs", status, kind, fragment, content, {_header(k): v for k, v in headers.items()})


def get(name: str, path: str, status: int, kind: str, fragment: str, **headers: str) -> Case:
    return Case(name, "GET", path, status, kind, fragment, None, {_header(k): v for k, v in headers.items()})


def _header(name: str) -> str:
    return name.replace("_", "-").replace("Last-Event-Id", "Last-Event-ID")


BAD = "InvalidRequest"
DEEP_INPUT = b'{"skill": "work", "input": ' + b"[" * 900 + b"]" * 900 + b"}"
CASES = [
    post("NUL in the run name", 400, BAD, "name", _body({"name": "a\x00b", "tasks": [GOOD]})),
    post("task id with a trailing newline", 400, BAD, "one line", _body({**GOOD, "id": "a\n"})),
    post("64 characters and a newline", 400, BAD, "at most 64", _body({**GOOD, "id": "a" * 64 + "\n"})),
    post("65-character task id", 400, BAD, "at most 64", _body({**GOOD, "id": "a" * 65})),
    post("NUL in the skill", 400, BAD, "skill", _body({"skill": "wo\x00rk"})),
    post("NUL in a tag", 400, BAD, "tags", _body({"tags": ["a\x00"]})),
    post("NUL in the text", 400, BAD, "text", _body({"text": "do\x00it"})),
    post("NaN in the input", 400, "InvalidJSON", "not valid", b'{"skill": "work", "input": {"x": NaN}}'),
    post("1e400 in the input", 400, "InvalidJSON", "too large", b'{"skill": "work", "input": {"x": 1e400}}'),
    post("900-deep input", 400, "JSONTooDeep", "deeper than", DEEP_INPUT),
    post("a JSON array", 400, BAD, "JSON object", b"[1, 2]"),
    post("text/plain", 415, "UnsupportedMediaType", "application/json", _body(GOOD), Content_Type="text/plain"),
    post("no content type", 415, "UnsupportedMediaType", "none", _body(GOOD), Content_Type=""),
    post("foreign Origin", 403, "ForbiddenOrigin", "evil.example.com", _body(GOOD), Origin="http://evil.example.com"),
    get("foreign Host", "/runs", 421, "MisdirectedRequest", "evil.example.com", Host="evil.example.com"),
    get("offset=1e20", "/runs?offset=1e20", 400, "InvalidQuery", "offset"),
    get("offset past 2**31", "/runs?offset=99999999999999999999", 400, "InvalidQuery", "offset"),
    get("status=bogus", "/runs?status=bogus", 400, "InvalidQuery", "status must be one of"),
    get("limit=-1", "/runs?limit=-1", 400, "InvalidQuery", "limit"),
    get("limit=1e20", "/runs?limit=1e20", 400, "InvalidQuery", "limit"),
    get("limit=x", "/runs?limit=x", 400, "InvalidQuery", "limit"),
    get("Last-Event-ID: 1e20", "/runs/{run}/events", 400, "InvalidQuery", "Last-Event-ID", Last_Event_Id="1e20"),
    get("Last-Event-ID over 2**31", "/runs/{run}/events", 400, "InvalidQuery", "Last-Event-ID", Last_Event_Id="9" * 11),
    get("after=-1", "/runs/{run}/events?after=-1", 400, "InvalidQuery", "Last-Event-ID"),
    get("NUL in a run id", "/runs/%00", 404, "RunNotFound", "no run"),
    get("300-character run id", "/runs/" + "r" * 300 + "/events", 404, "RunNotFound", "no run"),
]


async def test_bad_input_is_refused_and_the_next_run_succeeds(any_platform: Platform) -> None:
    p = any_platform
    p.add(worker("w1"))
    with serve_in_thread(create_app(p.orchestrator())) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http, OrchestratorClient(base) as client:
            with anyio.fail_after(120):
                first = await client.run(GOOD)
                good_runs = 1
                for case in CASES:
                    headers = {**(JSON if case.method == "POST" else {}), **case.headers}
                    path = case.path.format(run=first["id"])
                    response = await http.request(case.method, path, content=case.content, headers=headers)
                    assert response.status_code == case.status, (case.name, response.text)
                    error = response.json()["error"]
                    assert error["type"] == case.kind and case.fragment in error["message"], (case.name, error)
                    assert "\n" not in error["message"], case.name
                    record = await client.run(GOOD)
                    assert record["status"] == "succeeded", (case.name, record["error"])
                    good_runs += 1
                runs = await client.list_runs(limit=500)
    assert len(runs) == good_runs  # not one refused request reached the store


def _liar() -> Agent:
    agent = Agent("liar", "fails with a NUL in its reason")

    @agent.skill(id="lie", description="fails, for tests")
    async def lie(ctx: SkillContext, req: WorkIn) -> WorkOut:
        raise AgentError("bad\x00reason " + "x" * 100)

    return agent


async def test_nul_inside_json_round_trips_and_an_agent_cannot_break_the_store(any_platform: Platform) -> None:
    p = any_platform
    p.add(worker("w1"))
    p.add(_liar())
    value = {"text": "a\x00b", "nested": {"k\x00ey": ["\x00", "end"]}}
    with serve_in_thread(create_app(p.orchestrator())) as base:
        async with OrchestratorClient(base) as client:
            with anyio.fail_after(60):
                record = await client.run({"name": "nul", "tasks": [{"id": "t", "skill": "work", "input": value}]})
                events = [e async for e in client.events(record["id"])]
                lied = await client.run({"skill": "lie", "input": {"text": "x"}, "constraints": {"max_attempts": 1}})
                after = await client.run(GOOD)
    assert record["status"] == "succeeded", record["error"]
    assert record["tasks"][0]["input"] == value
    assert record["attempts"][0]["request"]["input"] == value
    assert record["tasks"][0]["output"]["text"] == "A\x00B"
    assert next(e for e in events if e["kind"] == "task.succeeded")["data"]["output"]["text"] == "A\x00B"
    # The agent's NUL is stored (as U+FFFD) on both databases instead of failing the write.
    assert lied["status"] == "failed" and "bad\ufffdreason" in lied["attempts"][0]["error"]
    assert after["status"] == "succeeded"


async def test_cancel_without_json_is_refused_and_nothing_happens(any_platform: Platform) -> None:
    p = any_platform
    slow = Behaviour(mode="slow", delay=30)
    p.add(worker("slow", slow, skill="sleep"))
    with serve_in_thread(create_app(p.orchestrator())) as base:
        async with OrchestratorClient(base) as client, httpx.AsyncClient(base_url=base, timeout=20) as http:
            with anyio.fail_after(30):
                run_id = await client.submit({"skill": "sleep", "input": {"text": "x"}})
                await slow.wait(slow.started)
                refused = await http.post(
                    f"/runs/{run_id}/cancel", content=b"{}", headers={"Content-Type": "text/plain"}
                )
                still = await client.get_run(run_id)
                untouched = not slow.was_cancelled.is_set()
                assert await client.cancel(run_id)  # the client sends JSON, as every POST must
                cancelled = await client.get_run(run_id)
    assert refused.status_code == 415 and refused.json()["error"]["type"] == "UnsupportedMediaType"
    assert still["status"] == "running" and untouched
    assert cancelled["status"] == "cancelled"


async def _health_answers_while(base: str, work: Any) -> tuple[Any, int]:
    """Run ``work()`` while /health is asked again and again; each answer must come within 2 s."""
    result: list[Any] = []
    answered = 0
    async with httpx.AsyncClient(base_url=base, timeout=20) as http, anyio.create_task_group() as tg:

        async def run() -> None:
            result.append(await work())
            tg.cancel_scope.cancel()

        tg.start_soon(run)
        while True:
            with anyio.fail_after(2):
                assert (await http.get("/health")).status_code == 200
            answered += 1
    return result[0], answered


async def test_huge_graph_is_refused_fast_while_health_answers(any_platform: Platform) -> None:
    p = any_platform
    p.add(worker("w1"))
    huge = _body({"tasks": [{"id": f"t{i}", "skill": "work"} for i in range(100_000)]})
    big = {"tasks": [{"id": f"t{i}", "skill": "work", "input": {"text": "x"}} for i in range(1_000)]}
    with serve_in_thread(create_app(p.orchestrator())) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, OrchestratorClient(base) as client:
            with anyio.fail_after(120):
                started = time.perf_counter()
                response, answered = await _health_answers_while(
                    base, lambda: http.post("/runs", content=huge, headers=JSON)
                )
                elapsed = time.perf_counter() - started
                # At the limit (1,000 tasks) the graph is accepted; building it must not starve /health either.
                run_id, _ = await _health_answers_while(base, lambda: client.submit(big))
                await client.cancel(run_id)
                after = await client.run(GOOD)
    error = response.json()["error"]
    assert response.status_code == 413 and error["type"] == "RunTooLarge", error
    assert "100000 tasks" in error["message"] and "max_tasks" in error["message"] and "--max-tasks" in error["message"]
    assert elapsed < 10, f"refusing took {elapsed:.1f} s"
    assert answered >= 1
    assert after["status"] == "succeeded"


async def test_run_limits_are_configurable_and_named(any_platform: Platform) -> None:
    p = any_platform
    p.add(worker("w1"))
    slow = Behaviour(mode="slow", delay=30)
    p.add(worker("slow", slow, skill="sleep"))
    limits = RunLimits(max_tasks=5, max_concurrency=4, max_active_runs=1, max_queued_runs=0, max_input_bytes=200)
    six = {"tasks": [{"id": f"t{i}", "skill": "work", "input": {"text": "x"}} for i in range(6)]}
    wide = {"tasks": [GOOD], "concurrency": 5}
    fat = {"skill": "work", "input": {"text": "x" * 300}}
    with serve_in_thread(create_app(p.orchestrator(limits=limits))) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http, OrchestratorClient(base) as client:
            with anyio.fail_after(60):
                answers = [await http.post("/runs", content=_body(spec), headers=JSON) for spec in (six, wide, fat)]
                sleeper = await client.submit({"skill": "sleep", "input": {"text": "x"}})
                busy = await http.post("/runs", content=_body(GOOD), headers=JSON)
                await client.cancel(sleeper)
                after = await client.run(GOOD)
    got = [(a.status_code, a.json()["error"]["type"], a.json()["error"]["message"]) for a in (*answers, busy)]
    assert [(status, kind) for status, kind, _ in got] == [
        (413, "RunTooLarge"),
        (400, "LimitExceeded"),
        (413, "RunTooLarge"),
        (429, "TooManyRuns"),
    ]
    flags = ("--max-tasks", "--max-concurrency", "--max-input-bytes", "--max-queued-runs")
    for (_, _, message), flag in zip(got, flags, strict=True):
        assert flag in message, message
    assert after["status"] == "succeeded"


async def test_mcp_tools_validate_and_mcp_checks_host_and_origin(any_platform: Platform) -> None:
    p = any_platform
    p.add(worker("w1"))
    with serve_in_thread(create_app(p.orchestrator())) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            with anyio.fail_after(60):
                rebinding = await http.post("/mcp", content=b"{}", headers={**JSON, "Host": "evil.example.com"})
                foreign = await http.post("/mcp", content=b"{}", headers={**JSON, "Origin": "http://evil.example.com"})
                async with McpToolClient.http(base + "/mcp") as tools:
                    with pytest.raises(McpToolError, match="status must be one of"):
                        await tools.call_tool("list_runs", {"status": "bogus"})
                    with pytest.raises(McpToolError, match="limit must be"):
                        await tools.call_tool("list_runs", {"limit": -1})
                    with pytest.raises(McpToolError, match="one line"):
                        await tools.call_tool("submit_task", {"skill": "a\x00", "input": {}, "wait": False})
                    done = await tools.call_tool("submit_task", {"skill": "work", "input": {"text": "mcp"}})
    assert rebinding.status_code == 421 and foreign.status_code == 403
    assert done["status"] == "succeeded"


async def test_the_writer_drops_only_the_write_that_fails(db_url: str) -> None:
    store = RunStore(db_url)
    writer = RunWriter(store, linger_s=0)
    stamp = now()
    row = {"id": "r1", "name": "", "status": "pending", "spec": {}, "created_at": stamp, "updated_at": stamp}
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        with anyio.fail_after(20):
            writer.put("insert_run", row)
            await writer.flush()
            writer.put("insert_run", row)  # the same primary key again: this write fails
            writer.put("insert_run", {**row, "id": "r2"})
            with pytest.raises(RuntimeError, match="run store failed"):
                await writer.flush()
            writer.put("update_run", {"status": "running"}, "r2")
            await writer.flush()  # the failure is not kept forever
            await writer.aclose()
    assert store.get_run("r2")["status"] == "running"  # type: ignore[index]
    store.close()
