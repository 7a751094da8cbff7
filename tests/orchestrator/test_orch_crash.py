"""Real crashes and a real database outage, with real processes on PostgreSQL.

1. Two orchestrator replicas (``scaleout orchestrator serve`` subprocesses) on a fresh database; a slow agent in
   its own process records every execution (tests/orchestrator/crash_agents.py). Replica 1 is SIGKILLed while step
   b runs on the agent: replica 2 takes the run over within two lease times, adopts b's task instead of sending it
   again, and finishes the run; an SSE client that followed replica 1 resumes on replica 2 with Last-Event-ID.
2. One orchestrator subprocess on a private PostgreSQL cluster that is stopped (``--mode immediate``, a crash)
   while step b runs: reads answer 503 "database unavailable", no agent is called, and once the cluster is back
   the run completes with nothing lost or repeated. A subprocess rather than an in-process ``Orchestrator``: the
   test checks what clients see (HTTP 503), and the orchestrator's blocking database threads (connect timeouts,
   the LISTEN thread) then cannot stall the test's own event loop, which watches and times the outage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from anyio.abc import Process

from agents.testing import free_port
from orchestrator.client import TERMINAL_EVENTS, OrchestratorClient, OrchestratorError
from protocol.a2a import AgentCard
from registry import Registry
from tests.orchestrator import pg_cluster
from tests.orchestrator.conftest import PG_ENV
from tests.orchestrator.crash_agents import LOG_ENV, executions

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLI = ["-c", "import sys; from orchestrator.cli import main; sys.exit(main())"]
LEASE_S = 2.0
FAILOVER_SLACK_S = 1.5  # process scheduling, the claim query and the first commit on a loaded machine
STARTUP_S = 45.0  # three Python servers importing and migrating at once on a slow machine


def _graph(b_delay: float) -> dict[str, Any]:
    """a -> b -> c on the crash agent; b is the slow step the fault hits."""
    return {
        "name": "crash-test",
        "tasks": [
            {"id": "a", "skill": "step", "input": {"step": "a", "delay": 1.0}},
            {"id": "b", "skill": "step", "input": {"step": "b", "text": {"$ref": "a.output.text"}, "delay": b_delay}},
            {"id": "c", "skill": "step", "input": {"step": "c", "text": {"$ref": "b.output.text"}, "delay": 0.5}},
        ],
    }


class Servers:
    """Server subprocesses of one test, each logging to ``<logs>/<name>.log``; all are killed at the end."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = {**os.environ, **env}
        self.procs: dict[str, Process] = {}
        self._files: list[IO[bytes]] = []

    async def start(self, name: str, *args: str) -> Process:
        out = self._log_file(name)
        proc = await anyio.open_process(
            [sys.executable, *CLI, *args], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        self.procs[name] = proc
        return proc

    def _log_file(self, name: str) -> IO[bytes]:
        out = (self.logs / f"{name}.log").open("wb")  # closed in aclose, once the process ended
        self._files.append(out)
        return out

    async def replica(self, name: str, db: str, port: int) -> Process:
        args = ["orchestrator", "serve", "--db", db, "--port", str(port), "--replica-id", name]
        return await self.start(name, *args, "--lease-s", str(LEASE_S))

    def tail(self, name: str, lines: int = 40) -> str:
        """The last lines a server printed (for failure messages)."""
        text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
        return f"--- {name} ---\n" + "\n".join(text[-lines:])

    def tails(self) -> str:
        return "\n".join(self.tail(name) for name in self.procs)

    async def aclose(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()
        with anyio.move_on_after(15):
            for proc in self.procs.values():
                await proc.wait()
        for out in self._files:
            out.close()


@asynccontextmanager
async def servers(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[Servers]:
    started = Servers(tmp_path, env)
    try:
        yield started
    finally:
        with anyio.CancelScope(shield=True):
            await started.aclose()


async def _get_ok(url: str) -> dict[str, Any]:
    """Poll ``url`` until it answers 200 (a server starting); its JSON body."""
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                response = await http.get(url)
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.TransportError:
                pass
            await anyio.sleep(0.1)


async def _start_platform(run: Servers, db: str, replicas: dict[str, int]) -> None:
    """The crash agent (registered in ``db``'s registry) and orchestrator replicas ``{name: port}``, all up."""
    agent_port = free_port()
    base = f"http://127.0.0.1:{agent_port}"
    registry = Registry(db)  # migrates the registry before the replicas start
    try:
        await run.start("agent", "agent", "serve", "tests.orchestrator.crash_agents:agent", "--port", str(agent_port))
        for name, port in replicas.items():
            await run.replica(name, db, port)
        with anyio.fail_after(STARTUP_S):
            card = AgentCard.model_validate(await _get_ok(base + "/.well-known/agent-card.json"))
            registry.register_card(card, url=base + "/")
            for port in replicas.values():
                await _get_ok(f"http://127.0.0.1:{port}/health")
    finally:
        registry.close()


async def _until_executed(log: Path, step: str) -> None:
    """Wait until the agent has started executing ``step`` (it writes the line before it sleeps)."""
    while True:  # another process writes the file: poll it
        if step in [s for s, _ in executions(log)]:
            return
        await anyio.sleep(0.02)


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])


def _check_events(events: list[dict[str, Any]]) -> None:
    """Every event once, in order, numbered 1..N, ending with the run's success."""
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), seqs
    assert events[0]["kind"] == "run.created" and events[-1]["kind"] == "run.succeeded", [e["kind"] for e in events]


def _check_record(record: dict[str, Any], log: Path) -> None:
    """The run succeeded; each step ran once on the agent, under its one attempt; attempt numbers are unique."""
    assert record["status"] == "succeeded", record["error"]
    assert {t["task_id"]: t["status"] for t in record["tasks"]} == dict.fromkeys("abc", "succeeded")
    assert {t["task_id"]: t["output"]["text"] for t in record["tasks"]} == {"a": "a", "b": "ab", "c": "abc"}
    ran = executions(log)
    assert [step for step, _ in ran] == ["a", "b", "c"], ran
    numbers = Counter((a["task_id"], a["number"]) for a in record["attempts"])
    assert all(n == 1 for n in numbers.values()), numbers
    by_task = {a["task_id"]: a for a in record["attempts"] if a["status"] == "succeeded"}
    assert {step: attempt for step, attempt in ran} == {t: a["id"] for t, a in by_task.items()}, record["attempts"]


# -- 1. a replica SIGKILLed mid-run ----------------------------------------------------------------------------


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """A new, empty database on the $SCALEOUT_TEST_PG_URL server (dropped afterwards), so no other test's runs
    or agents are there for the replicas to claim or route to."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"set {PG_ENV} to a PostgreSQL database to run this test (.ci/start-postgres prints one)")
    url = sa.make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"scaleout_crash_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


async def test_sigkilled_replica_run_is_finished_by_another(fresh_pg: str, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    ports = {"r1": free_port(), "r2": free_port()}
    first, second = (f"http://127.0.0.1:{port}" for port in ports.values())
    seen: list[dict[str, Any]] = []  # what one SSE client saw: replica 1 until the kill, then replica 2
    broke: list[BaseException] = []
    b_attempt = anyio.Event()

    async def follow(run_id: str) -> None:
        async with OrchestratorClient(first) as client:
            try:
                async for event in client.events(run_id, reconnects=0):
                    seen.append(event)
                    if event["kind"] == "attempt.started" and event["task_id"] == "b":
                        b_attempt.set()
            except httpx.TransportError as exc:  # replica 1 died mid-stream
                broke.append(exc)
        async with OrchestratorClient(second) as client:
            async for event in client.events(run_id, last_event_id=seen[-1]["seq"]):
                seen.append(event)

    async with servers(tmp_path, {LOG_ENV: str(log)}) as run:
        await _start_platform(run, fresh_pg, ports)
        with anyio.fail_after(40):  # b in flight (~1.5 s), failover (<= ~3 s), b's rest and c (~4 s), slack
            async with OrchestratorClient(first) as client, anyio.create_task_group() as tg:
                run_id = await client.submit(_graph(b_delay=4.0))
                tg.start_soon(follow, run_id)
                await b_attempt.wait()
                await _until_executed(log, "b")  # b's message reached the agent: it is in flight there
                killed_at, killed = datetime.now(UTC), time.monotonic()
                run.procs["r1"].kill()
                await run.procs["r1"].wait()
            finished = time.monotonic()  # the follower saw the run's last event
            async with OrchestratorClient(second) as client:
                record = await client.get_run(run_id)
                stored = [e async for e in client.events(run_id)]
        failure_context = run.tails()

    assert broke, "the SSE stream from replica 1 should break when it is killed"
    _check_events(seen)
    assert seen == stored, "the client saw exactly the stored events"
    kinds = [(e["kind"], e["task_id"]) for e in seen]
    resumed = next(e for e in seen if e["kind"] == "run.resumed")
    assert resumed["data"]["replica"] == "r2", failure_context
    assert ("attempt.adopting", "b") in kinds, kinds  # the attempt in flight was adopted...
    _check_record(record, log)  # ...not sent again: b ran once on the agent, under its first attempt
    failover = (_at(resumed) - killed_at).total_seconds()
    print(f"failover: SIGKILL -> run.resumed on r2 {failover:.2f} s; kill -> run end {finished - killed:.2f} s")
    assert 0 < failover <= 2 * LEASE_S + FAILOVER_SLACK_S, (failover, failure_context)


# -- 2. the database stops mid-run ------------------------------------------------------------------------------


@pytest.fixture
def private_pg() -> Iterator[pg_cluster.PgCluster]:
    """A PostgreSQL cluster of this test's own (it is stopped and started mid-test), dropped afterwards."""
    why = pg_cluster.unavailable()
    if why:
        pytest.skip(f"needs a private PostgreSQL cluster: {why}")
    with pg_cluster.private_cluster() as cluster:
        yield cluster


async def _follow_through_outage(base: str, run_id: str, seen: list[dict[str, Any]], refused: list[int]) -> None:
    """Follow the run's events to its end, resuming with Last-Event-ID whenever the stream breaks or is refused
    (503 while the database is away)."""
    async with OrchestratorClient(base) as client:
        while not seen or seen[-1]["kind"] not in TERMINAL_EVENTS:
            try:
                last = seen[-1]["seq"] if seen else 0
                async for event in client.events(run_id, last_event_id=last, reconnects=0, unavailable_patience_s=0):
                    seen.append(event)
            except OrchestratorError as exc:
                if exc.status != 503:
                    raise
                refused.append(exc.status)
                await anyio.sleep(0.2)  # a client's retry interval, not a synchronisation
            except httpx.TransportError:
                await anyio.sleep(0.2)


async def _until_database(base: str, state: str) -> None:
    """Wait until the orchestrator's /health reports its database as ``state``."""
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            if (await http.get(base + "/health")).json()["database"] == state:
                return
            await anyio.sleep(0.1)


async def test_database_outage_pauses_the_run_and_loses_nothing(
    private_pg: pg_cluster.PgCluster, tmp_path: Path
) -> None:
    log = tmp_path / "executions.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    seen: list[dict[str, Any]] = []
    patient: list[dict[str, Any]] = []  # what a client that leaves the waiting to OrchestratorClient sees
    refused: list[int] = []

    async def follow_patiently(run_id: str) -> None:
        async with OrchestratorClient(base) as client:
            async for event in client.events(run_id, reconnects=20):
                patient.append(event)

    async with servers(tmp_path, {LOG_ENV: str(log)}) as run:
        await _start_platform(run, private_pg.url, {"solo": port})
        with anyio.fail_after(50):  # a and b in flight (~1.5 s), the stop, the outage (~5 s), the start, b's end, c
            async with OrchestratorClient(base) as client, anyio.create_task_group() as tg:
                run_id = await client.submit(_graph(b_delay=2.0))
                tg.start_soon(_follow_through_outage, base, run_id, seen, refused)
                tg.start_soon(follow_patiently, run_id)
                await _until_executed(log, "b")
                await anyio.to_thread.run_sync(private_pg.stop, "immediate")
                down = time.monotonic()  # the server is gone: its port is closed
                with pytest.raises(OrchestratorError) as one:
                    await client.get_run(run_id)
                with pytest.raises(OrchestratorError) as listing:
                    await client.list_runs()
                await _until_database(base, "unavailable")  # b ended: its result waits to be written
                noticed = time.monotonic()
                await anyio.sleep(2 * LEASE_S)  # the outage goes on past the run's lease
                during = [step for step, _ in executions(log)]
                restart = time.monotonic()
                await anyio.to_thread.run_sync(private_pg.start)
                up = time.monotonic()
            ended = time.monotonic()  # the follower saw the run's last event
            async with OrchestratorClient(base) as client:
                record = await client.get_run(run_id)
                stored = [e async for e in client.events(run_id)]
        failure_context = run.tails()

    assert record["status"] == "succeeded", (record["error"], failure_context)
    for refusal in (one.value, listing.value):
        assert refusal.status == 503 and refusal.kind == "DatabaseUnavailable", refusal
        assert "database is unavailable" in refusal.message
    assert during == ["a", "b"], f"no agent call while the database was down: {during}"
    assert refused, "the event stream is refused (503) while the database is down, then resumes"
    _check_events(seen)
    assert seen == stored, "the client saw exactly the stored events, each once"
    assert patient == stored, "OrchestratorClient.events waits out the outage by itself"
    _check_record(record, log)
    print(
        f"outage: down {restart - down:.2f} s (noticed {noticed - down:.2f} s after the stop, when b's result was"
        f" due), restart {up - restart:.2f} s; run ended {ended - restart:.2f} s after the restart began;"
        f" SSE refused {len(refused)} time(s)"
    )
