"""Orchestrator benchmark: dispatch overhead in-process and over HTTP, and a 10,000-task fan-out's memory.

Run: ``.venv/bin/python bench/dispatch.py [--tasks 2000] [--http-tasks 100] [--rounds 5] [--fanout 10000]
[--only inproc,http,tracing,fanout] [--before REV]``. Prints figures; nothing is asserted. Targets: in-process overhead
< 100 us per task; HTTP per-task time <= 1.5x a bare httpx POST round trip to a minimal Starlette app on loopback;
flat memory on the fan-out. The HTTP servers (agent and minimal app) run under uvicorn in child processes, so they
share no GIL with the client, and the kinds of call are measured interleaved, round by round, in the same run.
``--before REV`` also serves the agent from git revision REV (extracted to a temporary folder) and measures it in
the same rounds: the cost of a change to the agent's HTTP path (e.g. the security boundary) as a ratio.
Tracing rows (section ``tracing``, and beside the HTTP rows): the same runs with OpenTelemetry off (the default: the
plain rows) and on (the SDK with an in-memory exporter, batched, in the orchestrator and in a traced agent process),
interleaved; and what the instrumentation costs a task with tracing off (its calls timed bare).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agents.client import HttpAgentClient, skill_message
from agents.examples import echo_agent
from agents.serve import create_app
from agents.testing import free_port
from orchestrator.credentials import AgentCredentials
from orchestrator.executor import Executor
from orchestrator.graph import TaskGraph
from orchestrator.limits import RunLimits
from orchestrator.router import Router
from orchestrator.runs import RunStore
from orchestrator.service import Orchestrator
from orchestrator.spec import GraphSpec
from orchestrator.state import RunState
from orchestrator.transports import CallResult, Transports
from orchestrator.writer import RunWriter
from protocol import telemetry
from protocol.auth import AuthSettings, SigningKey
from protocol.logs import log_context
from registry import HealthStatus, Registry

LIMITS = RunLimits(max_tasks=1_000_000)  # the benchmark's graphs are larger than a server's default allows


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

    def put(self, kind: str, values: Any, *key: str, run_id: str | None = None) -> None:
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


class ServerProcess:
    """A uvicorn server for ``kind`` ("agent" or "bare") in a child process on loopback (no GIL shared with us)."""

    def __init__(self, kind: str, root: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root = root or Path(__file__).resolve().parent.parent
        cmd = [sys.executable, str(root / "bench" / "dispatch.py"), "--serve", kind, "--port", str(self.port)]
        env = {**os.environ, "PYTHONPATH": str(root)}  # a --before tree serves its own code
        self.proc = subprocess.Popen(cmd, cwd=root, env=env)

    async def ready(self, timeout_s: float = 30.0) -> str:
        with anyio.fail_after(timeout_s):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"benchmark server exited with {self.proc.returncode}")
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", self.port)
                    await stream.aclose()
                    return self.url
                except OSError:
                    await anyio.sleep(0.05)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far (Linux /proc; 0 elsewhere)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def checkout(rev: str) -> Path:
    """The files of git revision ``rev`` in a temporary folder (``git archive``; the work tree is untouched)."""
    root = Path(__file__).resolve().parent.parent
    target = Path(tempfile.mkdtemp(prefix="scaleout-before-"))
    archive = subprocess.run(["git", "-C", str(root), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def serve(kind: str, port: int) -> None:
    """Child-process entry point: the agent server or the minimal Starlette baseline, same server settings."""
    from protocol.serving import serve as serve_app

    async def minimal(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"text": body["text"], "length": len(body["text"])})

    base = f"http://127.0.0.1:{port}"
    if kind == "agent":
        app: Any = create_app(echo_agent("echo-http"), base_url=base)
    elif kind == "agent-traced":  # the same agent with the OpenTelemetry SDK on (spans and metrics in memory)
        install_sdk()
        app = create_app(echo_agent("echo-http"), base_url=base)
    elif kind == "agent-auth":  # the same agent, every call's bearer token verified (keys from the parent)
        auth = AuthSettings(jwks_file=Path(os.environ["SCALEOUT_BENCH_JWKS"]))
        app = create_app(echo_agent("echo-http"), base_url=base, auth=auth)
    else:
        app = Starlette(routes=[Route("/", minimal, methods=["POST"])])
    serve_app(app, "127.0.0.1", port, access_log=False, lifespan="on")


def install_sdk() -> Any:
    """Tracing and metrics on for this process: the SDK with an in-memory span exporter behind the batching
    processor servers use, and an in-memory metric reader. Returns the tracer provider (shut it down after)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    telemetry.install(provider, MeterProvider(metric_readers=[InMemoryMetricReader()]))
    return provider


def off_path_us(n: int) -> float:
    """What the instrumentation of one in-process task costs with tracing off: the telemetry and log-context calls
    a task, its attempt and its skill run make (executor, task runtime), timed bare."""
    telemetry.install(None)
    start = time.perf_counter()
    for _ in range(n):
        with log_context(task_id="t"), telemetry.span(telemetry.SPAN_TASK) as task:
            task.is_recording()
            telemetry.current_span().is_recording()  # the routing decision
            with log_context(attempt_id="a"), telemetry.span(telemetry.SPAN_ATTEMPT) as attempt:
                attempt.is_recording()
                with log_context(task_id="x"), telemetry.span(telemetry.SPAN_SKILL) as skill:
                    skill.is_recording()
                    time.perf_counter()
                telemetry.record_skill("a", "s", "completed", 0.0)
                telemetry.current_span().is_recording()  # the attempt's usage
                telemetry.record_attempt("a", "s", "succeeded", 0.0, 0, 0, 0.1)
            task.is_recording()
    return (time.perf_counter() - start) / n * 1e6


async def tracing(args: argparse.Namespace, registry: Registry, db: str, local: Any) -> None:
    """Full in-process runs with tracing off (plain) and on (SDK + in-memory exporter), interleaved round by round."""
    print(f"\n== tracing, in-process full runs of {args.tasks} sequential tasks, {args.rounds} interleaved rounds")
    orch = Orchestrator(registry, db, local_agents=[local], router=Router(registry, cache_ttl_s=60), limits=LIMITS)
    wall: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}  # this process's CPU time: steadier on a shared machine
    async with orch.running():
        await full_run_us(orch, 100)
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                provider = install_sdk() if mode == "on" else None
                gc.collect()
                cpu0 = time.process_time()
                wall[mode].append(await full_run_us(orch, args.tasks))
                cpu[mode].append((time.process_time() - cpu0) / args.tasks * 1e6)
                telemetry.install(None)
                if provider is not None:
                    provider.shutdown()  # exports what is left, stops the batching thread
    bare = off_path_us(20_000)
    print(f"{'per task, median of round means':44}{'wall':>9} {'cpu':>9}  (us)")
    off_wall, off_cpu = statistics.median(wall["off"]), statistics.median(cpu["off"])
    on_wall, on_cpu = statistics.median(wall["on"]), statistics.median(cpu["on"])
    print(f"{'full run, tracing off (plain)':44}{off_wall:9.1f} {off_cpu:9.1f}")
    print(
        f"{'full run, SDK + in-memory exporter':44}{on_wall:9.1f} {on_cpu:9.1f}  -> "
        f"{(on_wall / off_wall - 1) * 100:+5.1f}% wall, {(on_cpu / off_cpu - 1) * 100:+5.1f}% cpu vs off"
    )
    share = bare / off_cpu * 100
    print(f"{'instrumentation alone, tracing off':44}{bare:9.2f} {'':9}  -> {share:5.2f}% of the plain task's cpu")


async def bare_post(http: httpx.AsyncClient, url: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = await http.post(url, json={"text": "x"})
        response.json()
        samples.append(time.perf_counter() - start)
    return samples


async def bare_a2a(client: HttpAgentClient, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await client.send_message(skill_message("echo", {"text": "x"}))
        samples.append(time.perf_counter() - start)
    return samples


async def orchestrated(orch: Orchestrator, n: int) -> tuple[list[float], float]:
    """Per-task samples of an n-task sequential run (gaps between consecutive task ends) and its mean per task."""
    start = time.perf_counter()
    record = await orch.run(chain(n))
    mean = (time.perf_counter() - start) / n
    assert record["status"] == "succeeded", record["error"]
    events = await anyio.to_thread.run_sync(orch.store.events_after, record["id"], 0, 100_000)
    ends = [e["at"] for e in events if e["kind"] in ("run.started", "task.succeeded")]
    return [(b - a).total_seconds() for a, b in zip(ends, ends[1:], strict=False)], mean


def summary(samples: list[float]) -> tuple[float, float, float]:
    """Median, p95 and mean of ``samples`` (seconds) in microseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e6, p95 * 1e6, statistics.mean(ordered) * 1e6


async def main(args: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp(prefix="scaleout-bench-")
    db = f"sqlite:///{tmp}/bench.db"
    registry = Registry(db)
    local = echo_agent("echo-local")
    local_id = registry.register_card(local.card("local://echo-local"), transport="local", url="local://echo-local").id
    sections = set(args.only.split(","))
    if "inproc" in sections:
        await in_process(args, registry, db, local)
    if "http" in sections:
        await over_http(args, registry, db, local_id)
    if "tracing" in sections:
        await tracing(args, registry, db, local)
    if "fanout" in sections:
        await fan_out(args, registry, db, local)


async def in_process(args: argparse.Namespace, registry: Registry, db: str, local: Any) -> None:
    """Dispatch overhead per task without a network: executor alone, with persistence, LocalAgentClient, full run."""
    print(f"== in-process (LocalAgentClient), {args.tasks} sequential tasks")
    bare = await bare_skill_us(args.tasks)
    bare_exec = await executor_only_us(registry, db, args.tasks, direct=True, persist=False)
    direct = await executor_only_us(registry, db, args.tasks, direct=True)
    executor = await executor_only_us(registry, db, args.tasks, direct=False)
    orch = Orchestrator(registry, db, local_agents=[local], router=Router(registry, cache_ttl_s=60), limits=LIMITS)
    async with orch.running():
        await full_run_us(orch, 100)
        full = await full_run_us(orch, args.tasks)
    print(f"bare skill call (Agent.call)          {bare:9.1f} us")
    print(f"executor, direct call, no persistence {bare_exec:9.1f} us  -> dispatch overhead {bare_exec - bare:8.1f} us")
    print(f"executor per task, direct skill call  {direct:9.1f} us  -> dispatch overhead {direct - bare:8.1f} us")
    print(f"executor per task, LocalAgentClient   {executor:9.1f} us  -> dispatch overhead {executor - bare:8.1f} us")
    print(f"full run per task (+validation, run)  {full:9.1f} us  -> overhead          {full - bare:8.1f} us")


async def over_http(args: argparse.Namespace, registry: Registry, db: str, local_id: str) -> None:
    """Bare POST, bare A2A and orchestrated tasks against servers in child processes, interleaved."""
    print(
        f"\n== HTTP loopback, servers in child processes, {args.rounds} interleaved rounds of {args.http_tasks} "
        "sequential calls each"
    )
    key = SigningKey.generate()  # the authenticated agent trusts this key; the orchestrator carries a token from it
    jwks = Path(db.removeprefix("sqlite:///")).with_name("jwks.json")
    jwks.write_text(json.dumps({"keys": [key.jwk()]}))
    os.environ["SCALEOUT_BENCH_JWKS"] = str(jwks)
    servers = {"agent": ServerProcess("agent"), "bare": ServerProcess("bare"), "auth": ServerProcess("agent-auth")}
    servers["traced"] = ServerProcess("agent-traced")
    if args.before:
        servers["before"] = ServerProcess("agent", checkout(args.before))
    try:
        base, bare_url = await servers["agent"].ready(), await servers["bare"].ready()
        registry.set_status(local_id, HealthStatus.UNHEALTHY)  # every task of this section goes over HTTP
        http_id = registry.register_card(echo_agent("echo-http").card(base + "/"), url=base + "/").id
        orchestrators = {
            "on": Orchestrator(registry, db, router=Router(registry, cache_ttl_s=60), record_stats=True, limits=LIMITS),
            "off": Orchestrator(  # its own run store: SQLite allows one orchestrator per file
                registry,
                db.replace("bench.db", "off.db"),
                router=Router(registry, cache_ttl_s=60),
                record_stats=False,
                limits=LIMITS,
            ),
        }
        # the token's cost: two orchestrators set up alike (each its own registry with one agent), one calling the
        # plain agent without a token, the other the authenticated agent with one
        token = key.token("bench-orchestrator", ["agents:call"], issuer="scaleout", audience="scaleout", ttl_s=86_400)
        for key_name, url, credentials in (
            ("on_plain", base, None),
            ("on_auth", await servers["auth"].ready(), AgentCredentials(token)),
        ):
            own_db = db.replace("bench.db", f"{key_name}.db")
            own_registry = Registry(own_db)
            own_registry.register_card(echo_agent("echo-http").card(url + "/"), url=url + "/")
            orchestrators[key_name] = Orchestrator(
                own_registry,
                own_db,
                router=Router(own_registry, cache_ttl_s=60),
                agent_credentials=credentials,
                limits=LIMITS,
            )
        # tracing's cost: the orchestrator with the SDK on (only while its rounds run) calling the traced agent
        traced_url = await servers["traced"].ready()
        traced_db = db.replace("bench.db", "traced.db")
        traced_registry = Registry(traced_db)
        traced_registry.register_card(echo_agent("echo-http").card(traced_url + "/"), url=traced_url + "/")
        orchestrators["on_traced"] = Orchestrator(
            traced_registry, traced_db, router=Router(traced_registry, cache_ttl_s=60), limits=LIMITS
        )
        a2a_urls = {"a2a": base + "/"}
        if args.before:  # the old agent behind its own registry, so routing cannot mix the two
            before = await servers["before"].ready()
            before_db = db.replace("bench.db", "before.db")
            before_registry = Registry(before_db)
            before_registry.register_card(echo_agent("echo-http").card(before + "/"), url=before + "/")
            router = Router(before_registry, cache_ttl_s=60)
            orchestrators["on_before"] = Orchestrator(
                before_registry, before_db, router=router, record_stats=True, limits=LIMITS
            )
            a2a_urls["a2a_before"] = before + "/"
        samples: dict[str, list[float]] = {"post": [], **{k: [] for k in a2a_urls}, **{k: [] for k in orchestrators}}
        means: dict[str, list[float]] = {k: [] for k in orchestrators}
        server_of = {"post": "bare", "a2a": "agent", "on": "agent", "off": "agent"}
        server_of |= {"a2a_before": "before", "on_before": "before", "on_auth": "auth", "on_plain": "agent"}
        server_of["on_traced"] = "traced"
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient())
            clients = {k: await stack.enter_async_context(HttpAgentClient(u)) for k, u in a2a_urls.items()}
            for orch in orchestrators.values():
                await stack.enter_async_context(orch.running())
            await bare_post(http, bare_url + "/", 50)  # warm up: connections, caches, code paths
            for client in clients.values():
                await bare_a2a(client, 50)
            for orch in orchestrators.values():
                await orchestrated(orch, 50)
            cpu = {key: [0.0, 0.0, 0] for key in samples}  # client CPU s, server CPU s, calls

            async def measured(key: str, call: Any) -> None:
                server = servers[server_of[key]]
                client0, server0 = time.process_time(), server.cpu_s()
                got = await call()
                per_task, mean = got if isinstance(got, tuple) else (got, None)
                cpu[key][0] += time.process_time() - client0
                cpu[key][1] += server.cpu_s() - server0
                cpu[key][2] += args.http_tasks
                samples[key] += per_task
                if mean is not None:
                    means[key].append(mean)

            for _ in range(args.rounds):
                await measured("post", lambda: bare_post(http, bare_url + "/", args.http_tasks))
                for key, client in clients.items():
                    await measured(key, lambda c=client: bare_a2a(c, args.http_tasks))
                for key, orch in orchestrators.items():
                    provider = install_sdk() if key == "on_traced" else None
                    await measured(key, lambda o=orch: orchestrated(o, args.http_tasks))
                    telemetry.install(None)
                    if provider is not None:
                        provider.shutdown()
        registry.set_status(http_id, HealthStatus.UNHEALTHY)
        registry.set_status(local_id, HealthStatus.HEALTHY)
    finally:
        for server in servers.values():
            server.stop()
    post_med, post_p95, post_mean = summary(samples["post"])

    def cpu_us(key: str) -> str:
        client, server, calls = cpu[key]
        return f"{client / calls * 1e6:7.0f} {server / calls * 1e6:7.0f}"

    print(f"{'':44}{'median':>9} {'p95':>9} {'mean':>9} {'cpu:cli':>7} {'srv':>7}  (us per call; ratios of medians)")
    bare_label = "bare httpx POST to minimal Starlette"
    print(f"{bare_label:44}{post_med:9.1f} {post_p95:9.1f} {post_mean:9.1f} {cpu_us('post')}")
    labels = {
        "a2a": "bare A2A SendMessage (HttpAgentClient)",
        "on": "orchestrated task, registry stats on",
        "off": "orchestrated task, stats reporting off",
        "on_plain": "orchestrated, own registry, no token",
        "on_auth": "orchestrated, own registry, bearer token",
        "on_traced": "orchestrated, own registry, tracing on (SDK)",
        "a2a_before": f"bare A2A SendMessage, agent at {args.before}",
        "on_before": f"orchestrated task, stats on, agent at {args.before}",
    }
    a2a_med = summary(samples["a2a"])[0]
    for key, label in labels.items():
        if key not in samples:
            continue
        med, p95, mean = summary(samples[key])
        if key in means:
            mean = statistics.mean(means[key]) * 1e6  # whole runs: submit, validation and the final record too
        extra = f", {med / a2a_med:4.2f}x bare A2A" if key in ("on", "off") else ""
        figures = f"{med:9.1f} {p95:9.1f} {mean:9.1f} {cpu_us(key)}"
        print(f"{label[:43]:44}{figures}  -> {med / post_med:4.2f}x the bare POST{extra}")
    auth_ratio = summary(samples["on_auth"])[0] / summary(samples["on_plain"])[0]
    print(f"token verification: orchestrated task with a bearer token {auth_ratio:5.3f}x without (medians)")
    traced_ratio = summary(samples["on_traced"])[0] / summary(samples["on_plain"])[0]
    traced_cpu = sum(cpu["on_traced"][:2]) / sum(cpu["on_plain"][:2])
    print(
        f"tracing: orchestrated task, SDK + in-memory exporter in the orchestrator and the agent, {traced_ratio:5.3f}x "
        f"tracing off (medians), {traced_cpu:5.3f}x its cpu (orchestrator + agent)"
    )
    if args.before:
        a2a_ratio = summary(samples["a2a"])[0] / summary(samples["a2a_before"])[0]
        on_ratio = summary(samples["on"])[0] / summary(samples["on_before"])[0]
        print(f"this tree vs {args.before}: bare A2A {a2a_ratio:5.3f}x, orchestrated task {on_ratio:5.3f}x (medians)")


async def fan_out(args: argparse.Namespace, registry: Registry, db: str, local: Any) -> None:
    """Two runs of one root feeding ``args.fanout`` echo tasks: throughput and RSS before/after."""
    print(f"\n== fan-out: 1 root -> {args.fanout} echo tasks, concurrency 64, in-process")
    fan = {
        "tasks": [{"id": "root", "skill": "echo", "input": {"text": "fan"}}]
        + [
            {"id": f"leaf{i}", "skill": "echo", "input": {"text": {"$ref": "root.output.text"}}}
            for i in range(args.fanout)
        ],
        "concurrency": 64,
    }
    orch = Orchestrator(registry, db, local_agents=[local], router=Router(registry, cache_ttl_s=60), limits=LIMITS)
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
    parser.add_argument("--http-tasks", type=int, default=100, help="calls per round and kind")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over HTTP")
    parser.add_argument("--only", default="inproc,http,tracing,fanout", help="sections to run, comma-separated")
    parser.add_argument("--serve", choices=["agent", "agent-auth", "agent-traced", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fanout", type=int, default=10_000)
    parser.add_argument("--before", metavar="REV", help="also serve the agent from this git revision, same rounds")
    parsed = parser.parse_args()
    if parsed.serve:
        serve(parsed.serve, parsed.port)
    else:
        anyio.run(main, parsed)
