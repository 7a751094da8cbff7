"""Several orchestrator replicas on one PostgreSQL database, in one process (fast; the process-level crash tests
are in test_orch_crash.py): submit anywhere, read anywhere, cancel anywhere, queueing, leases and fencing,
the write queue through a database outage, and SQLite's one-replica rule."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from agents.client import HttpAgentClient, skill_message
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from orchestrator import tables
from orchestrator.router import Router
from orchestrator.runs import RunStore, now
from orchestrator.service import Orchestrator, ReplicaConflict, StoreUnavailable
from orchestrator.transports import Transports
from orchestrator.writer import RunWriter
from protocol.a2a import TaskState
from protocol.egress import EgressPolicy
from registry import Registry
from registry.models import AgentRecord
from tests.orchestrator.conftest import Behaviour, worker

pytestmark = pytest.mark.anyio
LEASE_S = 1.0
SLOW = {"skill": "work", "input": {"text": "slow", "delay": 1.5}, "constraints": {"max_attempts": 1}}


@pytest.fixture
def cluster(pg_url: str) -> Iterator[tuple[Registry, Behaviour, ExitStack]]:
    """A registry on a fresh PostgreSQL schema and one worker agent served over HTTP on loopback."""
    behaviour = Behaviour()
    with ExitStack() as stack:
        registry = Registry(pg_url)
        stack.callback(registry.close)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        stack.enter_context(serve_in_thread(create_app(worker("w", behaviour), base_url=base), port=port))
        registry.register_card(worker("w").card(base + "/"), transport="a2a", url=base + "/")
        yield registry, behaviour, stack


@asynccontextmanager
async def replicas(registry: Registry, *names: str, **kwargs: Any) -> AsyncIterator[list[Orchestrator]]:
    async with AsyncExitStack() as stack:
        started = []
        for name in names:
            orch = Orchestrator(
                registry,
                registry.url,
                router=Router(registry, cache_ttl_s=0),
                replica_id=name,
                lease_s=LEASE_S,
                poll_s=0.2,
                **kwargs,
            )
            stack.callback(orch.store.close)
            started.append(await stack.enter_async_context(orch.running()))
        yield started


def _lease_of(store: RunStore, run_id: str) -> str | None:
    run = store.get_run(run_id)
    assert run is not None
    return run["lease_owner"]  # type: ignore[no-any-return]


@pytest.mark.postgres
async def test_submit_read_follow_and_cancel_on_any_replica(cluster: tuple[Registry, Behaviour, ExitStack]) -> None:
    registry, behaviour, _ = cluster
    async with replicas(registry, "r1", "r2") as (r1, r2):
        with anyio.fail_after(30):
            run_id = await r1.submit(SLOW)
            assert _lease_of(r2.store, run_id) == "r1"  # committed (and leased) before submit returned
            seen = [e async for e in r2.events(run_id)]  # followed on the replica that does not run it
            record = await r2.wait(run_id)
            behaviour.started.clear()
            doomed = await r1.submit({**SLOW, "input": {"text": "doomed", "delay": 30}})
            await behaviour.wait(behaviour.started)
            assert await r2.cancel(doomed) is True  # reaches r1, which owns it
            cancelled = await r2.get_run(doomed)
    assert record["status"] == "succeeded" and record["lease_owner"] is None
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1)) and seen[-1]["kind"] == "run.succeeded"
    assert next(e for e in seen if e["kind"] == "run.started")["data"]["replica"] == "r1"
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "cancelled by request"
    await behaviour.wait(behaviour.was_cancelled)  # the agent's task was cancelled too


@pytest.mark.postgres
async def test_a_full_replica_queues_runs_for_the_others(cluster: tuple[Registry, Behaviour, ExitStack]) -> None:
    registry, _, _ = cluster
    from orchestrator.limits import RunLimits

    async with replicas(registry, "small", limits=RunLimits(max_active_runs=1)) as (small,):
        async with replicas(registry, "big") as (big,):
            with anyio.fail_after(30):
                ids = [await small.submit(SLOW) for _ in range(3)]
                records = [await small.wait(i) for i in ids]
                started = [
                    [e["data"]["replica"] async for e in small.events(i) if e["kind"] == "run.started"][0] for i in ids
                ]
    assert [r["status"] for r in records] == ["succeeded"] * 3
    assert started[0] == "small" and set(started[1:]) <= {"small", "big"} and "big" in started[1:]


@pytest.mark.postgres
async def test_a_replica_that_lost_its_lease_never_writes_again(
    cluster: tuple[Registry, Behaviour, ExitStack],
) -> None:
    registry, behaviour, _ = cluster
    spec = {"tasks": [{"id": "a", "skill": "work", "input": {"text": "fenced", "delay": 1.5}}]}
    async with replicas(registry, "old") as (old,):
        with anyio.fail_after(30):
            run_id = await old.submit(spec)
            await behaviour.wait(behaviour.started)
            with old.store.engine.begin() as conn:  # as if "old" had paused past its lease and "new" claimed it
                conn.execute(tables.runs.update().where(tables.runs.c.id == run_id).values(lease_owner="new"))
            await old.active[run_id].done.wait()  # its next heartbeat or write finds the run gone: it stops
            async with replicas(registry, "new") as (new,):  # a restart under the same name takes it back at once
                record = await new.wait(run_id)
                events = [e async for e in new.events(run_id)]
    seqs = [e["seq"] for e in events]
    assert record["status"] == "succeeded"
    assert seqs == list(range(1, len(seqs) + 1))  # no number given twice, none skipped
    assert behaviour.calls == ["fenced"]  # the attempt in flight was adopted on the agent, not sent again
    kinds = [e["kind"] for e in events]
    assert "attempt.adopting" in kinds and "run.resumed" in kinds
    assert [a["number"] for a in record["attempts"]] == [1]


async def test_a_second_orchestrator_on_one_sqlite_file_refuses(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    registry = Registry(url)
    first, second = Orchestrator(registry, url), Orchestrator(registry, url)
    try:
        async with first.running():
            with pytest.raises(ReplicaConflict, match="SQLite allows one orchestrator.*PostgreSQL"):
                async with second.running():
                    pass
        async with second.running():  # the first one stopped: the lock is free again
            pass
    finally:
        first.store.close()
        second.store.close()
        registry.close()


class FlakyStore(RunStore):
    """A store whose database is 'away' while ``down`` is set (writes raise OperationalError; ``hit`` tells)."""

    down = False
    hit = threading.Event()

    def apply(self, ops: Any, fence: Any = None) -> set[str]:
        if self.down:
            self.hit.set()
            raise sa.exc.OperationalError("INSERT ...", {}, ConnectionRefusedError("connection refused"))
        return super().apply(ops, fence)


async def test_writes_wait_out_a_database_outage_and_lose_nothing(db_url: str) -> None:
    store = FlakyStore(db_url)
    writer = RunWriter(store, linger_s=0, max_retry_delay_s=0.05)
    stamp = now()
    row = {"id": "r1", "name": "", "status": "pending", "spec": {}, "created_at": stamp, "updated_at": stamp}
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        with anyio.fail_after(20):
            writer.put("insert_run", row)
            await writer.flush()
            store.down = True
            for seq in range(1, 4):
                writer.put("event", {"run_id": "r1", "seq": seq, "kind": "k", "task_id": None, "data": {}, "at": stamp})
            writer.put("update_run", {"status": "running"}, "r1")
            flushed = anyio.Event()

            async def flush() -> None:
                await writer.flush()
                flushed.set()

            tg.start_soon(flush)
            assert await anyio.to_thread.run_sync(store.hit.wait, 10)
            with anyio.move_on_after(0.3):
                await writer.room()  # where runs wait before each agent call
                pytest.fail("room() let a run go on while the database was away")
            assert writer.unavailable is not None and not flushed.is_set()
            store.down = False
            await flushed.wait()
            assert writer.unavailable is None
            await writer.room()
            await writer.aclose()
    assert store.get_run("r1")["status"] == "running"  # type: ignore[index]
    assert [e["seq"] for e in store.events_after("r1")] == [1, 2, 3]
    assert writer.pending == 0 and writer.error is None
    store.close()


async def test_readers_get_database_unavailable_while_the_writer_retries(local_platform: Any) -> None:
    p = local_platform
    p.add(worker("w1"))
    orch = p.orchestrator()
    async with orch.running():
        with anyio.fail_after(20):
            run_id = await orch.run({"skill": "work", "input": {"text": "x"}})
            orch.writer.unavailable = sa.exc.OperationalError("SELECT", {}, ConnectionRefusedError())
            with pytest.raises(StoreUnavailable, match="database is unavailable"):
                await orch.get_run(run_id["id"])
            with pytest.raises(StoreUnavailable):
                await orch.submit({"skill": "work", "input": {"text": "y"}})
            orch.writer.unavailable = None
            assert (await orch.get_run(run_id["id"]))["status"] == "succeeded"


async def test_a_run_being_submitted_is_never_claimed_twice(local_platform: Any) -> None:
    """The replica loop claims all the time (a tiny lease): runs submitted meanwhile still run exactly once."""
    p = local_platform
    behaviour = Behaviour()
    p.add(worker("w1", behaviour))
    orch = p.orchestrator(lease_s=0.06, poll_s=0.05)
    async with orch.running():
        with anyio.fail_after(60):
            ids: list[str] = []

            async def submit(i: int) -> None:
                ids.append(await orch.submit({"skill": "work", "input": {"text": f"t{i}"}}))

            async with anyio.create_task_group() as tg:
                for i in range(60):
                    tg.start_soon(submit, i)
            records = [await orch.wait(i) for i in ids]
            started = [[e async for e in orch.events(r["id"]) if e["kind"] == "run.started"] for r in records]
    assert all(r["status"] == "succeeded" for r in records)
    assert sorted(behaviour.calls) == sorted(f"t{i}" for i in range(60))  # each once
    assert all(len(s) == 1 for s in started)


@pytest.mark.parametrize("finished", [True, False])
async def test_adopting_an_attempt_takes_the_agents_task_whether_finished_or_not(finished: bool) -> None:
    behaviour = Behaviour()
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    with serve_in_thread(create_app(worker("w", behaviour), base_url=base.rstrip("/")), port=port):
        record = AgentRecord(id="w", name="w", description="", version="1", url=base, transport="a2a")
        async with Transports(egress=EgressPolicy.for_bind("127.0.0.1")) as transports, HttpAgentClient(base) as agent:
            with anyio.fail_after(20):
                message = skill_message("work", {"text": "once", "delay": 0 if finished else 0.5}, context_id="att-1")
                if finished:
                    await agent.send_message(message.model_copy(update={"message_id": "att-1"}))
                else:
                    sent = await agent.send_message(message, return_immediately=True)
                    assert sent.status.state != TaskState.COMPLETED
                adopted = await transports.adopt(record, "att-1")
                nothing = await transports.adopt(record, "never-sent")
    assert adopted is not None and adopted.output == {"text": "ONCE", "by": "w"}
    assert nothing is None
    assert behaviour.calls == ["once"]  # adopted, never sent again
