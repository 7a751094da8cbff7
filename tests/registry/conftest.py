"""Registry fixtures: every store test runs on SQLite and on PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from protocol.a2a import AgentCard, AgentInterface, AgentSkill
from registry import Registry

PG_ENV = "SCALEOUT_TEST_PG_URL"


def _pg_reason() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return f"{PG_ENV} is not set (CI sets it; locally run .ci/start-postgres)"
    try:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {PG_ENV} is unreachable: {exc.__class__.__name__}: {str(exc)[:200]}"
    return None


@pytest.fixture(autouse=True)
def _no_ambient_token(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Clients send no token unless a test gives one: not the developer's $SCALEOUT_TOKEN nor token file."""
    monkeypatch.delenv("SCALEOUT_TOKEN", raising=False)
    monkeypatch.setenv("SCALEOUT_TOKEN_FILE", str(tmp_path_factory.getbasetemp() / "no-token-file"))


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    return os.environ[PG_ENV].replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_base_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_base_url else "?"
    yield f"{pg_base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A database URL: a SQLite file in a temp dir, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    reg = Registry(db_url)
    yield reg
    reg.close()


@pytest.fixture
def card() -> object:
    """The ``make_card`` factory."""
    return make_card


def make_card(
    name: str,
    *,
    version: str = "1.0.0",
    description: str | None = None,
    skills: list[tuple[str, list[str]]] | None = None,
    examples: list[str] | None = None,
    url: str | None = None,
) -> AgentCard:
    """A small valid Agent Card; ``skills`` is a list of (skill id, tags)."""
    skills = skills if skills is not None else [("echo", ["test"])]
    return AgentCard(
        name=name,
        description=description if description is not None else f"the {name} agent",
        version=version,
        supported_interfaces=[AgentInterface(url=url or f"http://127.0.0.1:9/{name}/")],
        skills=[
            AgentSkill(
                id=sid,
                name=sid.replace("_", " ").title(),
                description=f"does {sid.replace('_', ' ')}",
                tags=tags,
                examples=examples or [],
            )
            for sid, tags in skills
        ],
    )
