"""Trust fixtures: the registry and the run store on a SQLite file and on a fresh PostgreSQL schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.registry.conftest import pg_base_url, pg_url

__all__ = ["pg_base_url", "pg_url", "db_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a SQLite file in a temp dir, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/trust.db"
    return str(request.getfixturevalue("pg_url"))
