"""Database plumbing: engine from a URL (SQLite file by default, PostgreSQL by URL), transactions, migrations.

The default database is ``scaleout.db`` in the data directory (``$SCALEOUT_HOME``, else ``~/.local/share/scaleout``:
``protocol.settings``), created with its directory by the first write; ``require_existing`` lets read commands
refuse a SQLite file that is not there instead of creating an empty one.

SQLite write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers (threads or processes) queue
on the busy timeout instead of failing; PostgreSQL migrations are serialised with an advisory lock.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from protocol.settings import KEYS, data_dir, setting
from registry.errors import RegistryError, RegistryReadOnly, RegistryUnavailable

__all__ = [
    "ENV_VAR",
    "resolve_url",
    "sqlite_path",
    "require_existing",
    "make_engine",
    "write",
    "read",
    "migrate",
    "translate_errors",
]

ENV_VAR = KEYS["db_url"]  # SCALEOUT_DB_URL
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "registry_alembic_version"
_WRITE = "registry_write"
_MIGRATION_LOCK = 0x5CA1E0  # advisory lock key shared by every registry process


def resolve_url(url: str | None = None) -> str:
    """The database URL: ``url``, else $SCALEOUT_DB_URL, else ``db_url`` of a config file, else ``scaleout.db`` in the
    data directory; a bare path means a SQLite file."""
    url = url or os.environ.get(ENV_VAR) or setting("db_url")
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser()}"
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ``url`` (None for PostgreSQL, an in-memory database or a URL that is not one)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or "mode=memory" in url:
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def require_existing(url: str, fix: str = "register an agent first (scaleout registry add URL)") -> None:
    """Refuse a SQLite file that does not exist (a read must not create an empty database); ``fix`` says what
    would make one."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise RegistryUnavailable(
            f"no database at {path}; {fix}, or point --db or ${ENV_VAR} at your database ('scaleout config' shows "
            "which one is used)"
        )


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the registry's connection settings; checks a SQLite file's directory."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise RegistryUnavailable(
            f"not a database URL: {url!r}; use sqlite:///path/to/file.db or "
            "postgresql+psycopg://user:password@host:5432/dbname"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(url)
    raise RegistryUnavailable(f"unsupported database {parsed.get_backend_name()!r}; use SQLite or PostgreSQL")


def _postgres_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Registry queries read a few rows each; starting parallel workers would cost more than it saves.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET max_parallel_workers_per_gather = 0")
        dbapi_conn.commit()

    return engine


def _sqlite_engine(url: str, database: str | None) -> Engine:
    memory = not database or database == ":memory:" or "mode=memory" in url
    if not memory and database and not database.startswith("file:"):
        directory = Path(database).expanduser().resolve().parent
        if not directory.is_dir() and directory == data_dir().expanduser().resolve():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # the default place: made on first use
        if not directory.is_dir():
            raise RegistryUnavailable(
                f"the registry database directory {directory} does not exist; create it "
                f"(mkdir -p {directory}) or set {ENV_VAR} to another location"
            )
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        except Exception:  # noqa: BLE001 - a read-only database keeps its journal mode
            pass
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


_READ_ONLY = re.compile(r"readonly|read-only|read only", re.I)


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver errors about the database itself into RegistryError subclasses with a fix in the message."""
    try:
        yield
    except RegistryError:
        raise
    except (OperationalError, ProgrammingError, DBAPIError) as exc:
        detail = str(exc.orig) if exc.orig is not None else str(exc)
        where = _redacted(url)
        if _READ_ONLY.search(detail):
            raise RegistryReadOnly(
                f"the registry database {where} is read-only ({detail.strip()}); make the file and its "
                "directory writable, or connect with a role that may write"
            ) from exc
        if "unable to open database file" in detail or "connection" in detail.lower():
            raise RegistryUnavailable(
                f"cannot open the registry database {where}: {detail.strip()}; check that the path exists "
                f"or the server is running, and {ENV_VAR}"
            ) from exc
        if "no such table" in detail or "does not exist" in detail and "relation" in detail:
            raise RegistryUnavailable(
                f"the registry tables are missing in {where}; run `scaleout registry serve` once or "
                "Registry(url) to migrate"
            ) from exc
        raise


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """One write transaction (committed on success, rolled back on any error)."""
    with engine.execution_options(**{_WRITE: True}).begin() as conn:
        yield conn


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """One read transaction (a consistent snapshot)."""
    with engine.begin() as conn:
        yield conn


@cache
def _head() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the registry tables to the newest schema (safe to call from several processes at once)."""
    with engine.connect() as conn:
        if _current(conn) == _head():
            return
    with write(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        if _current(conn) == _head():
            return
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
