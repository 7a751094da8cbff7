"""Orchestrator replicas on one PostgreSQL: completed runs/s with 1, 2 and 4 replicas, failover after a SIGKILL,
and the database connections each replica holds.

Run: ``.venv/bin/python bench/replicas.py [--replicas 1,2,4] [--runs-per-replica 120] [--max-active-runs 2]
[--tasks 3] [--sleep-ms 50] [--lease-s 3] [--failovers 5] [--quick]``. PostgreSQL 13+: $SCALEOUT_TEST_PG_URL, else
``.ci/start-postgres``; every measurement gets a fresh database (dropped afterwards), so one row's runs cannot slow
the next. Every replica is a ``scaleout orchestrator serve`` process on loopback; the agent is one
``scaleout agent serve`` process whose skill sleeps --sleep-ms per call (I/O-bound: it waits, so it is never the
bottleneck). Each replica runs at most --max-active-runs runs at once, so the replicas' capacity bounds the
throughput and each row shows what adding replicas buys. Runs are submitted round-robin over the replicas' HTTP APIs.
Figures are printed beside their baselines measured in the same run (one replica; lease_s), never asserted.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import sqlalchemy as sa
from pydantic import BaseModel

from agents import Agent, SkillContext
from agents.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
SCALEOUT = str(Path(sys.executable).with_name("scaleout"))
SLEEP_ENV = "SCALEOUT_BENCH_SLEEP_MS"


class NapIn(BaseModel):
    text: str


class NapOut(BaseModel):
    text: str


def sleepy_agent() -> Agent:
    """The benchmark's agent (``scaleout agent serve bench.replicas:sleepy_agent``): each call waits
    $SCALEOUT_BENCH_SLEEP_MS milliseconds, as a call to a remote model would, then repeats its text."""
    agent = Agent("sleepy", "Waits, then repeats its text", tags=["bench"])
    delay_s = float(os.environ.get(SLEEP_ENV, "50")) / 1000

    @agent.skill(tags=["bench"])
    async def nap(ctx: SkillContext, req: NapIn) -> NapOut:
        """Wait, then repeat the text."""
        await anyio.sleep(delay_s)
        return NapOut(text=req.text)

    return agent


def chain(n: int) -> dict[str, Any]:
    """A run of ``n`` tasks, each needing the previous one's output (so they run one after another)."""
    tasks = [{"id": "t0", "skill": "nap", "input": {"text": "x"}}]
    tasks += [
        {"id": f"t{i}", "skill": "nap", "input": {"text": {"$ref": f"t{i - 1}.output.text"}}} for i in range(1, n)
    ]
    return {"name": "bench-chain", "tasks": tasks, "concurrency": 1}


class Server:
    """A ``scaleout ... serve`` command in a child process on a loopback port; its output goes to a log file."""

    def __init__(self, name: str, args: list[str], logs: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logs / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [SCALEOUT, *args, "--port", str(self.port)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def ready(self, path: str, timeout_s: float = 60.0) -> None:
        with anyio.fail_after(timeout_s):
            async with httpx.AsyncClient() as http:
                while True:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
                    try:
                        if (await http.get(self.url + path)).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.05)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the process has used so far (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def replica(name: str, db: str, args: argparse.Namespace, logs: Path) -> Server:
    """An orchestrator replica on ``db``, given in $SCALEOUT_DB_URL (docs/deploy.md: it holds a password)."""
    flags = ["--replica-id", name, "--lease-s", str(args.lease_s), "--max-active-runs", str(args.max_active_runs)]
    return Server(name, ["orchestrator", "serve", *flags], logs, {"SCALEOUT_DB_URL": db})


async def start(servers: list[Server], path: str) -> None:
    async with anyio.create_task_group() as tg:
        for server in servers:
            tg.start_soon(server.ready, path)


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Databases:
    """Fresh databases on the PostgreSQL server of ``url`` (its role needs CREATEDB), dropped when done."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        self.made: list[str] = []

    def _admin(self, sql: str) -> None:
        with psycopg.connect(conninfo(self.url.render_as_string(hide_password=False)), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # our own names below, not input

    def fresh(self, label: str) -> str:
        name = f"scaleout_bench_{os.getpid()}_{label}"
        self._admin(f'DROP DATABASE IF EXISTS "{name}"')
        self._admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database made here; retried a few times, since FORCE cannot end an autovacuum worker."""
        for name in self.made:
            for attempt in range(20):
                try:
                    self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    break
                except psycopg.Error as exc:
                    if attempt == 19:
                        print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
                    time.sleep(0.5)
        self.made.clear()


def register_agent(db: str, agent_url: str) -> None:
    """Migrate the registry tables of ``db`` and register the sleepy agent served at ``agent_url``."""
    from registry import Registry

    with Registry(db) as registry:
        registry.register_card(sleepy_agent().card(agent_url + "/"), url=agent_url + "/")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (Linux /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


def socket_owners(servers: list[Server]) -> dict[int, str]:
    """Local TCP port -> name of the server process holding that socket (Linux /proc)."""
    inodes: dict[str, str] = {}
    for server in servers:
        fd_dir = Path(f"/proc/{server.proc.pid}/fd")
        for fd in fd_dir.iterdir() if fd_dir.is_dir() else ():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = server.name
    owners: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                owners[int(fields[1].rsplit(":", 1)[1], 16)] = inodes[fields[9]]
    return owners


def connections(db: str, servers: list[Server]) -> tuple[Counter[str], Counter[str]]:
    """Connections to ``db`` now: counted by the process that holds the client socket, and by application_name."""
    name = sa.make_url(db).database
    with psycopg.connect(conninfo(db), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name, client_port FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    owners = socket_owners(servers)
    return Counter(owners.get(port, "other") for _, port in rows), Counter(app or "(none)" for app, _ in rows)


async def submit(http: httpx.AsyncClient, url: str, spec: dict[str, Any]) -> str:
    response = await http.post(url + "/runs", json=spec)
    if response.status_code != 202:
        raise RuntimeError(f"POST {url}/runs answered {response.status_code}: {response.text}")
    return str(response.json()["id"])


async def drive(
    http: httpx.AsyncClient, replicas: list[Server], n: int, db: str, tasks: int, timeout_s: float
) -> Counter[str]:
    """Submit ``n`` runs round-robin over ``replicas`` (16 requests in flight) and wait until every one has ended,
    for at most ``timeout_s``; returns how many runs are in each status."""
    ids: list[str] = []
    limiter = anyio.CapacityLimiter(16)

    async def one(i: int) -> None:
        async with limiter:
            ids.append(await submit(http, replicas[i % len(replicas)].url, chain(tasks)))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    statuses: Counter[str] = Counter()
    with anyio.move_on_after(timeout_s), psycopg.connect(conninfo(db), autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT status, count(*) FROM orch_runs WHERE id = ANY(%s) GROUP BY status", [ids]
            ).fetchall()
            statuses = Counter({status: count for status, count in rows})
            if sum(statuses[s] for s in ("succeeded", "failed", "cancelled")) == n:
                break
            await anyio.sleep(0.02)
    return statuses


async def sampled(
    work: Callable[[], Awaitable[Any]], sample: Callable[[], Counter[str]], every_s: float = 0.25
) -> tuple[Any, Counter[str]]:
    """Run ``work`` while sampling ``sample()`` in a thread; returns its result and each key's highest count."""
    peak: Counter[str] = Counter()
    result: list[Any] = []
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while True:
                for key, count in (await anyio.to_thread.run_sync(sample)).items():
                    peak[key] = max(peak[key], count)
                await anyio.sleep(every_s)

        tg.start_soon(watch)
        result.append(await work())
        tg.cancel_scope.cancel()
    return result[0], peak


async def throughput_row(args: argparse.Namespace, dbs: Databases, agent: Server, k: int, logs: Path) -> dict:
    """Completed runs/s with ``k`` replicas on a fresh database, the CPU it took and the connections held."""
    agent_url = agent.url
    db = dbs.fresh(f"r{k}")
    register_agent(db, agent_url)
    replicas = [replica(f"r{k}-{i}", db, args, logs) for i in range(k)]
    try:
        await start(replicas, "/health")
        async with httpx.AsyncClient(timeout=60) as http:
            # warm-up: connections, code paths, caches
            await drive(http, replicas, k * args.max_active_runs, db, args.tasks, args.timeout_s)
            idle = (await anyio.to_thread.run_sync(connections, db, replicas))[0]
            n = k * args.runs_per_replica
            cpu0, agent0, machine0 = sum(r.cpu_s() for r in replicas), agent.cpu_s(), machine_busy()
            began = time.perf_counter()
            statuses, peak = await sampled(
                lambda: drive(http, replicas, n, db, args.tasks, args.timeout_s), lambda: connections(db, replicas)[0]
            )
            elapsed = time.perf_counter() - began
            cpu, agent_cpu = sum(r.cpu_s() for r in replicas) - cpu0, agent.cpu_s() - agent0
            busy, total = (after - before for after, before in zip(machine_busy(), machine0, strict=True))
        apps = (await anyio.to_thread.run_sync(connections, db, replicas))[1]
    finally:
        for server in replicas:
            server.stop()
    names = [r.name for r in replicas]
    lost = sum(r.log.read_text(errors="replace").count("lost the lease") for r in replicas)
    return {
        "lost": lost,
        "k": k,
        "n": n,
        "s": elapsed,
        "statuses": statuses,
        "idle": [idle[name] for name in names],
        "peak": [peak[name] for name in names],
        "apps": apps,
        "cpu_ms": cpu / n * 1000,
        "agent_ms": agent_cpu / n * 1000,
        "busy": busy / total if total else 0.0,
    }


async def failover_trials(args: argparse.Namespace, dbs: Databases, agent_url: str, logs: Path) -> list[dict]:
    """SIGKILL the replica that owns a run in progress; when does another replica resume it?"""
    db = dbs.fresh("failover")
    register_agent(db, agent_url)
    standby = replica("standby", db, args, logs)
    victims: list[Server] = []
    results = []
    try:
        await start([standby], "/health")
        async with httpx.AsyncClient(timeout=60) as http:
            for trial in range(args.failovers):
                victim = replica(f"victim-{trial}", db, args, logs)
                victims.append(victim)
                await start([victim], "/health")
                run_id = await submit(http, victim.url, chain(args.failover_tasks))
                try:
                    results.append(await kill_owner(db, run_id, victim, standby.name))
                except TimeoutError:
                    nan = float("nan")
                    stuck = {"status": "not ended", "resumed_s": nan, "task_s": nan, "by": "?"}
                    results.append({**stuck, "owner": victim.name, "expected_by": standby.name})
    finally:
        for server in [standby, *victims]:
            server.stop()
    return results


async def kill_owner(db: str, run_id: str, victim: Server, standby: str) -> dict:
    """Kill ``victim`` once two tasks of ``run_id`` are done there; times from the kill to the run's ``run.resumed``
    event on another replica and to the next task done, read from the events' own timestamps."""
    with psycopg.connect(conninfo(db), autocommit=True) as conn:

        def count(status: str) -> int:
            query = "SELECT count(*) FROM orch_tasks WHERE run_id = %s AND status = %s"
            return int(conn.execute(query, [run_id, status]).fetchone()[0])  # type: ignore[index]

        with anyio.fail_after(60):  # polling: the database is the only place that says how far the run got
            while True:
                if count("succeeded") >= 2:
                    break
                await anyio.sleep(0.01)
        owner = conn.execute("SELECT lease_owner FROM orch_runs WHERE id = %s", [run_id]).fetchone()
        victim.kill()
        killed = datetime.now(UTC)
        with anyio.fail_after(120):
            while True:
                row = conn.execute("SELECT status, lease_owner FROM orch_runs WHERE id = %s", [run_id]).fetchone()
                if row is not None and row[0] in ("succeeded", "failed", "cancelled"):
                    break
                await anyio.sleep(0.05)
        events = conn.execute(
            "SELECT kind, at, data FROM orch_events WHERE run_id = %s AND at > %s ORDER BY seq", [run_id, killed]
        ).fetchall()
    resumed = next((at for kind, at, data in events if kind == "run.resumed"), None)
    done = next((at for kind, at, _ in events if kind == "task.succeeded" and resumed and at >= resumed), None)
    replicas = {data.get("replica") for kind, _, data in events if kind == "run.resumed" and data}
    return {
        "owner": owner[0] if owner else None,
        "status": row[0],
        "resumed_s": (resumed - killed).total_seconds() if resumed else float("nan"),
        "task_s": (done - killed).total_seconds() if done else float("nan"),
        "by": ",".join(sorted(r for r in replicas if r)) or "?",
        "expected_by": standby,
    }


def pg_url() -> str:
    url = os.environ.get("SCALEOUT_TEST_PG_URL")
    if url:
        return url
    out = subprocess.run([str(ROOT / ".ci" / "start-postgres")], check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def print_throughput(rows: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\n== completed runs/s: {args.tasks}-task chains, each task an A2A call sleeping {args.sleep_ms:g} ms; "
        f"--max-active-runs {args.max_active_runs} per replica"
    )
    print(
        f"{'replicas':>8} {'runs':>6} {'seconds':>8} {'runs/s':>8} {'vs 1':>7} {'ideal':>6} {'cpu ms/run':>10} "
        f"{'agent':>6} {'machine':>8}  conns/replica idle; peak"
    )
    base = rows[0]["n"] / rows[0]["s"] / rows[0]["k"]  # per replica, from the first row (one replica by default)
    for row in rows:
        rate = row["n"] / row["s"]
        bad = {s: c for s, c in row["statuses"].items() if s != "succeeded"}
        note = f"  NOT SUCCEEDED within --timeout-s: {bad}" if bad else ""
        note += f"  ({row['lost']} 'lost the lease' warnings: no replica was stopped)" if row["lost"] else ""
        idle, peak = ",".join(map(str, row["idle"])), ",".join(map(str, row["peak"]))
        print(
            f"{row['k']:>8} {row['n']:>6} {row['s']:>8.2f} {rate:>8.1f} {rate / base:>6.2f}x {row['k']:>5}x "
            f"{row['cpu_ms']:>10.1f} {row['agent_ms']:>6.1f} {row['busy']:>7.0%}  {idle}; {peak}{note}"
        )
    print(
        f"(ratios: to one replica's rate. cpu ms/run: the replicas' CPU per completed run (agent: the agent's);"
        f" machine: busy share of all {os.cpu_count()} cores (replicas, agent, PostgreSQL, this client): near 100%"
        " the machine, not the replicas' capacity, bounds the row. connections: pg_stat_activity rows whose client"
        " port belongs to that replica's process, after warm-up; highest seen under load)"
    )
    last = rows[-1]
    print(f"by application_name after the {last['k']}-replica row: {dict(sorted(last['apps'].items()))}")


def print_failover(results: list[dict], args: argparse.Namespace) -> None:
    interval = args.lease_s / 3
    print(
        f"\n== failover: SIGKILL of the replica owning a run ({args.failover_tasks}-task chain, killed after 2 tasks),"
        f" {len(results)} trials"
    )
    resumed = [r["resumed_s"] for r in results if math.isfinite(r["resumed_s"])] or [math.nan]
    tasks = [r["task_s"] for r in results if math.isfinite(r["task_s"])] or [math.nan]
    print(
        f"baseline: lease_s {args.lease_s:g} s; expected bound lease_s + claim interval (lease_s/3) = "
        f"{args.lease_s + interval:.2f} s"
    )
    print(
        f"run resumed on another replica: median {statistics.median(resumed):6.2f} s  "
        f"(min {min(resumed):.2f}, max {max(resumed):.2f})  -> "
        f"{statistics.median(resumed) / args.lease_s:4.2f}x lease_s"
    )
    print(f"next task done there:          median {statistics.median(tasks):6.2f} s  (min {min(tasks):.2f})")
    for r in results:
        if r["status"] != "succeeded" or r["by"] != r["expected_by"]:
            print(f"  note: a run owned by {r['owner']} ended {r['status']}, resumed by {r['by']}")


async def main(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="scaleout-replicas-"))
    dbs = Databases(pg_url())
    agent = Server("agent", ["agent", "serve", "bench.replicas:sleepy_agent"], logs, {SLEEP_ENV: str(args.sleep_ms)})
    try:
        await start([agent], "/.well-known/agent-card.json")
        counts = [int(k) for k in args.replicas.split(",")]
        rows = [await throughput_row(args, dbs, agent, k, logs) for k in counts]
        print_throughput(rows, args)
        if args.failovers:
            print_failover(await failover_trials(args, dbs, agent.url, logs), args)
    finally:
        agent.stop()
        dbs.drop_all()
    print(f"\nserver logs: {logs}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", default="1,2,4", help="replica counts to measure, comma-separated (first: base)")
    parser.add_argument("--runs-per-replica", type=int, default=120, help="runs submitted per replica and row")
    parser.add_argument("--max-active-runs", type=int, default=2, help="runs each replica runs at once")
    parser.add_argument("--tasks", type=int, default=3, help="tasks per run (a chain)")
    parser.add_argument("--sleep-ms", type=float, default=50.0, help="how long each agent call waits")
    parser.add_argument("--lease-s", type=float, default=3.0, help="every replica's --lease-s")
    parser.add_argument("--failovers", type=int, default=5, help="SIGKILL trials (0: skip)")
    parser.add_argument("--failover-tasks", type=int, default=30, help="tasks in the run that loses its replica")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="longest wait for a row's runs to end")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 and 2 replicas, few runs, one failover")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.replicas, parsed.runs_per_replica, parsed.failovers = "1,2", 20, 1
    anyio.run(main, parsed)
