"""Orchestrator benchmark: dispatch overhead in-process and over HTTP, and a 10,000-task fan-out's memory.

Run: ``.venv/bin/python bench/orchestrator.py [--tasks 2000] [--http-tasks 300] [--fanout 10000]``.
Prints figures; nothing is asserted. Targets: in-process overhead < 100 us per task; HTTP per-task time
<= 1.5x a bare httpx POST round trip to a minimal Starlette app on loopback; flat memory on the fan-out.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the package it measures: keep bench/ off the import path.
sys.path[:] = [str(Path(__file__).resolve().parents[1])] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import argparse  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import anyio  # noqa: E402
import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from agents.client import HttpAgentClient, skill_message  # noqa: E402
from agents.examples import echo_agent  # noqa: E402
from agents.serve import create_app  # noqa: E402
from agents.testing import free_port, serve_in_thread  # noqa: E402
from orchestrator.executor import Executor  # noqa: E402
from orchestrator.graph import TaskGraph  # noqa: E402
from orchestrator.router import Router  # noqa: E402
from orchestrator.runs import RunStore, RunWriter  # noqa: E402
from orchestrator.service import Orchestrator  # noqa: E402
from orchestrator.spec import GraphSpec  # noqa: E402
from orchestrator.state import RunState  # noqa: E402
from orchestrator.transports import CallResult, Transports  # noqa: E402
from registry import HealthStatus, Registry  # noqa: E402


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc), else the peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chain(n: int, skill: str = "echo", concurrency: int = 1) -> dict[str, Any]:
    """n independent echo tasks run one at a time (concurrency 1): per-task latency, not throughput."""
    return {
        "tasks": [
            {"id": f"t{i}", "skill": skill, "input": {"text": "x"}, "constraints": {"max_attempts": 1}}
            for i in range(n)
        ],
        "concurrency": concurrency,
    }


async def bare_skill_us(n: int) -> float:
    agent = echo_agent()
    for _ in range(200):
        await agent.call("echo", {"text": "x"})
    start = time.perf_counter()
    for _ in range(n):
        await agent.call("echo", {"text": "x"})
    return (time.perf_counter() - start) / n * 1e6


class DirectTransport:
    """Calls the in-process agent's skill directly (no A2A task runtime): isolates the executor's own cost."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    async def call(self, agent: Any, skill: str, arguments: Any, *, attempt_id: str) -> CallResult:
        result, usage = await self.agent.call(skill, arguments)
        return CallResult(result.model_dump(mode="json"), usage)

    async def cancel(self, agent: Any, attempt_id: str) -> None:
        return None


class NullWriter(RunWriter):
    """Discards every write: isolates the executor's in-memory work from persistence."""

    def put(self, kind: str, values: Any, *key: str) -> None:
        return None


async def executor_only_us(registry: Registry, db: str, n: int, *, direct: bool, persist: bool = True) -> float:
    """Executor.execute on n tasks one at a time (store writes batched), via LocalAgentClient or directly."""
    router = Router(registry, cache_ttl_s=60)
    store = RunStore(db)
    writer = RunWriter(store) if persist else NullWriter(store)
    run_id = f"bench-executor-{direct}-{time.time_ns()}"
    async with Transports([echo_agent("echo-local")]) as transports, anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        executor = Executor(router, DirectTransport(echo_agent()) if direct else transports)
        graph = TaskGraph(GraphSpec.model_validate(chain(n)))
        state = RunState(run_id, graph, writer)
        writer.put(
            "insert_run",
            {"id": run_id, "status": "running", "spec": {}, "name": "", "created_at": _now(), "updated_at": _now()},
        )
        writer.put(
            "insert_tasks", [{"run_id": run_id, "task_id": t, "status": "pending", "attempts": 0} for t in graph.tasks]
        )
        await writer.flush()
        start = time.perf_counter()
        await executor.execute(state)
        elapsed = time.perf_counter() - start
        writer.put("update_run", {"status": "succeeded"}, run_id)
        await writer.aclose()
    return elapsed / n * 1e6


async def full_run_us(orch: Orchestrator, n: int, skill: str = "echo") -> float:
    start = time.perf_counter()
    record = await orch.run(chain(n, skill))
    elapsed = time.perf_counter() - start
    assert record["status"] == "succeeded", record["error"]
    return elapsed / n * 1e6


def _now() -> Any:
    from orchestrator.runs import now

    return now()


async def bare_post_us(url: str, n: int) -> float:
    async with httpx.AsyncClient() as http:
        for _ in range(50):
            await http.post(url, json={"text": "x"})
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            await http.post(url, json={"text": "x"})
            samples.append(time.perf_counter() - start)
    return statistics.mean(samples) * 1e6


async def bare_a2a_us(url: str, n: int) -> float:
    async with HttpAgentClient(url) as client:
        for _ in range(50):
            await client.send_message(skill_message("echo", {"text": "x"}))
        start = time.perf_counter()
        for _ in range(n):
            await client.send_message(skill_message("echo", {"text": "x"}))
    return (time.perf_counter() - start) / n * 1e6


async def main(args: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp(prefix="scaleout-bench-")
    db = f"sqlite:///{tmp}/bench.db"
    registry = Registry(db)
    local = echo_agent("echo-local")
    local_id = registry.register_card(local.card("local://echo-local"), transport="local", url="local://echo-local").id

    print(f"== in-process (LocalAgentClient), {args.tasks} sequential tasks")
    bare = await bare_skill_us(args.tasks)
    bare_exec = await executor_only_us(registry, db, args.tasks, direct=True, persist=False)
    direct = await executor_only_us(registry, db, args.tasks, direct=True)
    executor = await executor_only_us(registry, db, args.tasks, direct=False)
    orch = Orchestrator(registry, db, local_agents=[local], router=Router(registry, cache_ttl_s=60))
    async with orch.running():
        await full_run_us(orch, 100)
        full = await full_run_us(orch, args.tasks)
    print(f"bare skill call (Agent.call)          {bare:9.1f} us")
    print(f"executor, direct call, no persistence {bare_exec:9.1f} us  -> dispatch overhead {bare_exec - bare:8.1f} us")
    print(f"executor per task, direct skill call  {direct:9.1f} us  -> dispatch overhead {direct - bare:8.1f} us")
    print(f"executor per task, LocalAgentClient   {executor:9.1f} us  -> dispatch overhead {executor - bare:8.1f} us")
    print(f"full run per task (+validation, run)  {full:9.1f} us  -> overhead          {full - bare:8.1f} us")

    print(f"\n== HTTP loopback, {args.http_tasks} sequential tasks")

    async def minimal(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"text": body["text"], "length": len(body["text"])})

    port, bare_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        serve_in_thread(create_app(echo_agent("echo-http"), base_url=base), port=port),
        serve_in_thread(Starlette(routes=[Route("/", minimal, methods=["POST"])]), port=bare_port) as bare_url,
    ):
        registry.set_status(local_id, HealthStatus.UNHEALTHY)  # every task of this section goes over HTTP
        http_id = registry.register_card(echo_agent("echo-http").card(base + "/"), url=base + "/").id
        post = await bare_post_us(bare_url + "/", args.http_tasks)
        a2a = await bare_a2a_us(base + "/", args.http_tasks)
        figures = {}
        for stats in (True, False):
            orch = Orchestrator(registry, db, router=Router(registry, cache_ttl_s=60), record_stats=stats)
            async with orch.running():
                await full_run_us(orch, 50, "echo")
                figures[stats] = await full_run_us(orch, args.http_tasks, "echo")
    print(f"bare httpx POST to minimal Starlette   {post:9.1f} us")
    print(f"bare A2A SendMessage (HttpAgentClient) {a2a:9.1f} us  -> {a2a / post:4.2f}x the bare POST")
    for stats, label in ((True, "with registry stats"), (False, "stats reporting off")):
        per = figures[stats]
        print(
            f"orchestrated task, {label:<20}{per:9.1f} us  -> {per / post:4.2f}x the bare POST, "
            f"{per / a2a:4.2f}x bare A2A"
        )
    registry.set_status(http_id, HealthStatus.UNHEALTHY)
    registry.set_status(local_id, HealthStatus.HEALTHY)

    print(f"\n== fan-out: 1 root -> {args.fanout} echo tasks, concurrency 64, in-process")
    fan = {
        "tasks": [{"id": "root", "skill": "echo", "input": {"text": "fan"}}]
        + [
            {"id": f"leaf{i}", "skill": "echo", "input": {"text": {"$ref": "root.output.text"}}}
            for i in range(args.fanout)
        ],
        "concurrency": 64,
    }
    orch = Orchestrator(registry, db, local_agents=[local], router=Router(registry, cache_ttl_s=60))
    async with orch.running():
        gc.collect()
        before = rss_mb()
        for round_ in (1, 2):
            start = time.perf_counter()
            record = await orch.wait(await orch.submit(fan))
            elapsed = time.perf_counter() - start
            gc.collect()
            print(
                f"round {round_}: {record['status']}, {len(record['tasks'])} tasks in {elapsed:6.2f} s "
                f"({len(record['tasks']) / elapsed:7.0f} tasks/s); "
                f"RSS before {before:6.1f} MiB, after {rss_mb():6.1f} MiB"
            )
            del record


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--http-tasks", type=int, default=300)
    parser.add_argument("--fanout", type=int, default=10_000)
    anyio.run(main, parser.parse_args())
