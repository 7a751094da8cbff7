"""The dispatch hot path: coalesced HTTP writes, batched registry statistics."""

from __future__ import annotations

from typing import Any

import anyio
import httpcore
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.testing import serve_in_thread
from orchestrator.http import MAX_PENDING_BYTES, _CoalescingStream, http_client
from orchestrator.router import Router
from orchestrator.runs import RunStore, now
from orchestrator.stats_sink import StatsSink
from orchestrator.writer import RunWriter


class RecordingStream(httpcore.AsyncNetworkStream):
    """Records writes; reads answer a fixed reply."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.writes.append(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return b"reply"

    async def aclose(self) -> None:
        return None


@pytest.mark.anyio
async def test_a_request_leaves_in_one_write_at_the_first_read() -> None:
    inner = RecordingStream()
    stream = _CoalescingStream(inner)
    await stream.write(b"POST / HTTP/1.1\r\n\r\n")
    await stream.write(b"")
    await stream.write(b'{"a": 1}')
    assert inner.writes == []
    assert await stream.read(1024) == b"reply"
    assert inner.writes == [b'POST / HTTP/1.1\r\n\r\n{"a": 1}']
    await stream.read(1024)
    assert len(inner.writes) == 1  # nothing pending, nothing written


@pytest.mark.anyio
async def test_a_large_body_is_sent_as_it_grows() -> None:
    inner = RecordingStream()
    stream = _CoalescingStream(inner)
    await stream.write(b"h" * 100)
    await stream.write(b"x" * MAX_PENDING_BYTES)
    assert [len(w) for w in inner.writes] == [100 + MAX_PENDING_BYTES]
    await stream.write(b"tail")
    await stream.read(10)
    assert inner.writes[-1] == b"tail"


async def _echo(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"size": len(body["blob"]), "tail": body["blob"][-3:]})


@pytest.mark.anyio
async def test_the_coalescing_client_talks_to_a_real_server() -> None:
    app = Starlette(routes=[Route("/", _echo, methods=["POST"])])
    with serve_in_thread(app) as base:
        async with http_client(timeout_s=10) as http:
            with anyio.fail_after(10):
                for size in (1, 200_000, 5):  # small, over the pending limit, small again on the same connection
                    reply = await http.post(base + "/", json={"blob": "ab" * size + "end"})
                    assert reply.json() == {"size": 2 * size + 3, "tail": "end"}


class FakeRegistry:
    """Counts how statistics arrive: batches through record_calls, or single calls."""

    def __init__(self, *, batch_fails: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.single: list[str] = []
        self.batch_fails = batch_fails

    def record_calls(self, calls: list[dict[str, Any]]) -> int:
        if self.batch_fails:
            raise RuntimeError("database is locked")
        self.batches.append(calls)
        return len(calls)

    def record_call(self, agent_id: str, *, success: bool, latency_s: float, tokens: int = 0) -> None:
        self.single.append(agent_id)

    def search(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def get(self, agent_id: str) -> Any:
        raise LookupError(agent_id)


@pytest.mark.anyio
async def test_statistics_go_in_one_batch_and_closing_reports_what_is_queued() -> None:
    registry = FakeRegistry()
    sink = StatsSink(Router(registry), linger_s=60.0)  # only closing can end the linger within the test
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        for i in range(5):
            sink.put(f"a{i % 2}", i != 3, 0.01 * i, i)
        with anyio.fail_after(10):
            await sink.aclose()
    assert len(registry.batches) == 1
    assert [c["agent_id"] for c in registry.batches[0]] == ["a0", "a1", "a0", "a1", "a0"]
    assert registry.batches[0][3] == {"agent_id": "a1", "success": False, "latency_s": 0.03, "tokens": 3}
    sink.put("late", True, 0.1, 0)  # after closing: ignored, not an error
    assert registry.single == []


@pytest.mark.anyio
async def test_a_failing_batch_falls_back_to_single_calls() -> None:
    registry = FakeRegistry(batch_fails=True)
    sink = StatsSink(Router(registry), linger_s=0.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        sink.put("a", True, 0.1, 1)
        sink.put("b", True, 0.1, 1)
        with anyio.fail_after(10):
            await sink.aclose()
    assert sorted(registry.single) == ["a", "b"]


@pytest.mark.anyio
async def test_a_flush_cuts_the_writers_linger_short(tmp_path: Any) -> None:
    store = RunStore(f"sqlite:///{tmp_path}/runs.db")
    writer = RunWriter(store, linger_s=60.0)  # a flush must not wait for the linger
    stamp = now()
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        with anyio.fail_after(10):
            writer.put(
                "insert_run",
                {"id": "r1", "name": "", "status": "running", "spec": {}, "created_at": stamp, "updated_at": stamp},
            )
            await writer.flush()
            assert store.get_run("r1") is not None
            writer.put("update_run", {"status": "succeeded"}, "r1")
            await writer.aclose()
    run = store.get_run("r1")
    assert run is not None and run["status"] == "succeeded"
    store.close()
