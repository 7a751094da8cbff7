"""Several processes registering and reporting at once: no lost or duplicated rows."""

from __future__ import annotations

import multiprocessing as mp

from sqlalchemy import func, select

from protocol.a2a import AgentCard, AgentInterface, AgentSkill
from registry import Registry
from registry.tables import agent_tags, agents, skills, versions

WORKERS = 4
PER_WORKER = 30


def make_card(name: str, skills: list[tuple[str, list[str]]] | None = None) -> AgentCard:
    skills = skills if skills is not None else [("echo", ["test"])]
    return AgentCard(
        name=name,
        description=f"the {name} agent",
        version="1",
        supported_interfaces=[AgentInterface(url=f"http://127.0.0.1:9/{name}/")],
        skills=[AgentSkill(id=sid, name=sid, description=sid, tags=tags) for sid, tags in skills],
    )


def _register(url: str, worker: int, out: mp.Queue) -> None:
    try:
        with Registry(url) as reg:
            for i in range(PER_WORKER):
                # half the names are shared by all workers, half are the worker's own
                name = f"shared-{i}" if i % 2 == 0 else f"w{worker}-{i}"
                reg.register_card(make_card(name, skills=[("echo", ["t1", "t2"]), ("sum", [])]))
            shared = reg.find("shared-0")
            for _ in range(10):
                reg.record_call(shared.id, success=True, latency_s=0.01, tokens=1)
            reg.register_many([make_card(f"bulk-{i}") for i in range(40)], batch_size=7)
        out.put(("ok", worker))
    except BaseException as exc:  # noqa: BLE001 - report to the parent
        out.put(("error", repr(exc)))


def test_concurrent_registrations_from_processes(db_url: str) -> None:
    Registry(db_url).close()  # migrate once; workers also race on the (no-op) migration check
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_register, args=(db_url, w, out)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    results = [out.get(timeout=5) for _ in procs]
    assert all(r[0] == "ok" for r in results), results
    expected = PER_WORKER // 2 + WORKERS * (PER_WORKER // 2) + 40
    with Registry(db_url) as reg, reg.engine.connect() as conn:
        assert reg.count() == expected
        assert conn.execute(select(func.count()).select_from(skills)).scalar_one() == expected * 2 - 40
        assert conn.execute(select(func.count()).select_from(agent_tags)).scalar_one() == (expected - 40) * 2 + 40
        assert conn.execute(select(func.count()).select_from(versions)).scalar_one() == expected
        assert conn.execute(select(func.count(func.distinct(agents.c.name)))).scalar_one() == expected
        assert reg.find("shared-0").stats.calls == WORKERS * 10
        assert len(reg.search(text="shared", limit=1000)) == PER_WORKER // 2
