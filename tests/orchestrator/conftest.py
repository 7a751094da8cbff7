"""Fixtures for orchestrator tests: a registry on a temporary SQLite file and agents over either transport."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from pydantic import BaseModel, ConfigDict

from agents.agent import Agent, SkillContext
from agents.errors import AgentError
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from orchestrator.router import Router
from orchestrator.service import Orchestrator
from registry import CostHints, ModelInfo, Registry
from registry.models import AgentRecord

PG_ENV = "SCALEOUT_TEST_PG_URL"


class WorkIn(BaseModel):
    text: str
    delay: float = 0.0


class WorkOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str | None = None
    by: str


@dataclass
class Behaviour:
    """What a test worker does; ``calls`` and ``active``/``peak`` are read by the tests (thread-safe)."""

    mode: str = "ok"  # ok | fail | invalid | slow
    delay: float = 0.0
    calls: list[str] = field(default_factory=list)
    active: int = 0
    peak: int = 0
    cancelled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: threading.Event = field(default_factory=threading.Event)  # set on every call
    was_cancelled: threading.Event = field(default_factory=threading.Event)

    async def wait(self, event: threading.Event, limit_s: float = 10.0) -> None:
        """Wait (bounded) for ``event``, which the agent sets from whatever thread serves it."""
        assert await anyio.to_thread.run_sync(event.wait, limit_s), "the agent never got there"


def worker(
    name: str, behaviour: Behaviour | None = None, *, skill: str = "work", tags: list[str] | None = None
) -> Agent:
    """An agent with one skill whose behaviour the test controls."""
    b = behaviour or Behaviour()
    agent = Agent(name, f"test worker {name}", tags=["test"])

    @agent.skill(id=skill, tags=tags or ["work"], description="Upper-cases text, for tests")
    async def work(ctx: SkillContext, req: WorkIn) -> WorkOut:
        with b.lock:
            b.calls.append(req.text)
            b.active += 1
            b.peak = max(b.peak, b.active)
        b.started.set()
        try:
            delay = req.delay or b.delay
            if b.mode == "slow" or delay:
                await anyio.sleep(delay)
            if b.mode == "fail":
                raise AgentError(f"{name} fails on purpose")
            if b.mode == "invalid":
                return WorkOut(by=name)
            return WorkOut(text=req.text.upper(), by=name)
        except anyio.get_cancelled_exc_class():
            with b.lock:
                b.cancelled += 1
            b.was_cancelled.set()
            raise
        finally:
            with b.lock:
                b.active -= 1

    return agent


@dataclass
class Platform:
    """A registry, agents on one transport (``local`` in-process or ``http`` on loopback) and orchestrators."""

    mode: str
    registry: Registry
    db_url: str
    stack: ExitStack
    local: list[Agent] = field(default_factory=list)

    def add(self, agent: Agent, *, parameters: int | None = None, cost: float = 0.0) -> AgentRecord:
        if self.mode == "local":
            url, transport = f"local://{agent.name}", "local"
            self.local.append(agent)
        else:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            self.stack.enter_context(serve_in_thread(create_app(agent, base_url=base), port=port))
            url, transport = base + "/", "a2a"
        model = ModelInfo(name=f"{agent.name}-model", parameters=parameters) if parameters else None
        return self.registry.register_card(
            agent.card(url), model=model, cost=CostHints(per_call=cost), transport=transport, url=url
        )

    def orchestrator(self, **kwargs: Any) -> Orchestrator:
        kwargs.setdefault("router", Router(self.registry, cache_ttl_s=0))
        orchestrator = Orchestrator(self.registry, self.db_url, local_agents=self.local, **kwargs)
        self.stack.callback(orchestrator.store.close)
        return orchestrator


@pytest.fixture(autouse=True)
def _own_stdio_allowlist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Orchestrators in tests read a stdio allowlist of their own (empty), never the user's file."""
    monkeypatch.setenv("SCALEOUT_STDIO_ALLOWLIST", str(tmp_path / "stdio-allowlist"))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'scaleout.db'}"


@pytest.fixture(params=["local", "http"])
def platform(request: pytest.FixtureRequest, db_url: str) -> Iterator[Platform]:
    with ExitStack() as stack:
        registry = stack.enter_context(Registry(db_url))
        yield Platform(request.param, registry, db_url, stack)


@pytest.fixture
def local_platform(db_url: str) -> Iterator[Platform]:
    with ExitStack() as stack:
        registry = stack.enter_context(Registry(db_url))
        yield Platform("local", registry, db_url, stack)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh, empty schema (dropped afterwards); skips without one."""
    import sqlalchemy as sa

    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"set {PG_ENV} to a PostgreSQL database to run this test (.ci/start-postgres prints one)")
    base = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"o_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, db_url: str) -> str:
    """The same test on a SQLite file and on a fresh PostgreSQL schema."""
    return db_url if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def any_platform(any_db_url: str) -> Iterator[Platform]:
    """A local-agent platform on SQLite or PostgreSQL (see ``any_db_url``)."""
    with ExitStack() as stack:
        registry = Registry(any_db_url)
        stack.callback(registry.close)
        yield Platform("local", registry, any_db_url, stack)
