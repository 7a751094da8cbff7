"""Database set-up: migrations with their own version table, missing or read-only databases, bad URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from registry import Registry, RegistryReadOnly, RegistryUnavailable
from registry.db import resolve_url


def test_migrations_use_their_own_version_table(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:  # another component's tables and Alembic history in the same database
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('orchestrator_head')"))
    Registry(db_url).close()
    Registry(db_url).close()  # second open: already at head, nothing to do
    tables = set(inspect(engine).get_table_names())
    assert {"registry_agents", "registry_skills", "registry_alembic_version"} <= tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "orchestrator_head"
        assert conn.execute(text("SELECT version_num FROM registry_alembic_version")).scalar_one() == "0005"
    engine.dispose()


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "deeper"
    with pytest.raises(RegistryUnavailable, match=r"does not exist; create it \(mkdir -p"):
        Registry(f"sqlite:///{missing}/registry.db")
    assert not missing.exists()


def test_read_only_database_reads_but_refuses_writes(tmp_path: Path, card) -> None:
    path = tmp_path / "r.db"
    with Registry(f"sqlite:///{path}") as reg:
        reg.register_card(card("a"))
    with Registry(f"sqlite:///file:{path}?mode=ro&uri=true") as ro:
        assert [r.name for r in ro.list()] == ["a"]
        with pytest.raises(RegistryReadOnly, match="read-only"):
            ro.register_card(card("b"))
        with pytest.raises(RegistryReadOnly):
            ro.heartbeat(ro.find("a").id)
        assert [r.name for r in ro.list()] == ["a"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_file(tmp_path: Path, card) -> None:
    path = tmp_path / "r.db"
    Registry(f"sqlite:///{path}").close()
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with Registry(f"sqlite:///{path}") as reg, pytest.raises(RegistryReadOnly):
            reg.register_card(card("a"))
    finally:
        tmp_path.chmod(0o755)


def test_unreachable_postgres_and_bad_urls() -> None:
    with pytest.raises(RegistryUnavailable, match="cannot open the registry database"):
        Registry("postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(RegistryUnavailable, match="unsupported database"):
        Registry("mysql://x@127.0.0.1/y")


def test_url_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCALEOUT_DB_URL", f"sqlite:///{tmp_path}/env.db")
    assert resolve_url() == f"sqlite:///{tmp_path}/env.db"
    assert resolve_url(str(tmp_path / "plain.db")) == f"sqlite:///{tmp_path}/plain.db"
    assert resolve_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    monkeypatch.delenv("SCALEOUT_DB_URL")
    monkeypatch.setenv("SCALEOUT_HOME", str(tmp_path / "home"))
    assert resolve_url() == f"sqlite:///{tmp_path}/home/scaleout.db"
