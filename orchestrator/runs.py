"""Runs, tasks, attempts and events persisted with SQLAlchemy 2 (the registry's database, own ``orch_`` tables).

Writes are batched: the executor queues operations on a ``RunWriter`` (orchestrator/writer.py), which applies
them here in one transaction per batch, so thousands of task events cost a few commits, not thousands. A run's
first write (its row, tasks and first event) is one synchronous transaction (``create_run``): a run is in the
database before its submission is acknowledged.

Requests are validated against the columns before they are accepted (``orchestrator.spec``); what agents send
back (error texts, task ids) is fitted to its column here (NUL replaced, length cut), so no reply can make a
write fail. If a batch still fails, its operations are applied one at a time: only the bad one is lost, the
error goes to whoever flushed with that batch, and the writer goes on. A database that cannot be reached
(``is_unavailable``) is not a bad write: the writer keeps the batch and retries it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from pydantic_core import to_json
from sqlalchemy import event as sa_event

from orchestrator import tables as t

__all__ = [
    "RunStore",
    "Op",
    "Fence",
    "StoreUnavailable",
    "is_unavailable",
    "now",
    "owned_by",
    "ACTIVE",
    "TERMINAL",
    "LOCAL_OWNER",
    "RUN_KINDS",
]

ACTIVE = ("pending", "running", "waiting")  # waiting: a task waits for input
TERMINAL = ("succeeded", "failed", "cancelled")
RUN_KINDS = ("graph", "negotiation")  # orch_runs.kind: a task graph, or a negotiation protocol
_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = zlib.crc32(b"scaleout orchestrator migrations")  # the advisory lock key (any fixed int64)
LOCAL_OWNER = "local"  # who owns runs stored without an owner (before access control, or by trusted callers)


def owned_by(run_owner: str | None, owner: str | None) -> bool:
    """True when a run whose stored owner is ``run_owner`` is visible to ``owner`` (None: a trusted caller)."""
    return owner is None or (run_owner or LOCAL_OWNER) == owner


def now() -> datetime:
    return datetime.now(UTC)


class StoreUnavailable(RuntimeError):
    """The run store's database cannot be reached now; the request may be retried later (HTTP 503)."""


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database is away (connection refused or lost, locked), not that a write was bad."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError))


@dataclass(frozen=True)
class Op:
    """One queued write: an insert (insert_run, insert_tasks, insert_attempt, event) or an update_* by key,
    for the run ``run_id`` (whose lease fences it)."""

    kind: str
    values: Any
    key: tuple[str, ...] = ()
    run_id: str | None = None


Fence = Callable[[sa.Connection, set[str]], set[str]]
"""Called inside a write transaction with the runs it writes; returns those whose writes must be dropped."""


class RunStore:
    """Synchronous access to the orchestrator tables; async code calls it through ``anyio.to_thread``."""

    def __init__(self, url: str, *, migrate: bool = True, application_name: str | None = None) -> None:
        """``application_name`` names this process's connections on PostgreSQL (``pg_stat_activity``)."""
        self.url = url
        args: dict[str, Any] = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
        if url.startswith("postgresql"):
            # pre-ping: after a database restart a pooled connection is found dead before use, not mid-write
            args = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
            if application_name:
                args["connect_args"]["application_name"] = application_name[:63]
        self.engine = sa.create_engine(url, json_serializer=_json_text, **args)
        if url.startswith("sqlite"):
            sa_event.listen(self.engine, "connect", _sqlite_pragmas)
        self._text_columns = {
            table.name: [(c.name, getattr(c.type, "length", None)) for c in table.columns if _is_text(c)]
            for table in t.metadata.sorted_tables
        }
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the orchestrator tables to the newest schema (Alembic, version table orchestrator_alembic_version)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            if self.postgres:  # replicas starting together migrate one at a time (lock held until commit)
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def notify(self, conn: sa.Connection, channel: str, payloads: Iterable[str]) -> None:
        """PostgreSQL ``NOTIFY channel`` once per payload, delivered when ``conn``'s transaction commits
        (nothing on SQLite, where one replica runs)."""
        values = sorted(set(payloads))
        if self.postgres and values:
            conn.execute(
                sa.text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p"),
                {"channel": channel, "payloads": values},
            )

    def close(self) -> None:
        self.engine.dispose()

    # -- writes ---------------------------------------------------------------------------------------

    def create_run(self, run: dict[str, Any], tasks: list[dict[str, Any]], event: dict[str, Any]) -> None:
        """Insert a new run with its tasks and first event in one transaction (committed on return); a queued run
        (no ``lease_owner``) wakes the replicas."""
        self._fit(t.runs.name, run)
        with self.engine.begin() as conn:
            conn.execute(t.runs.insert(), [run])
            if tasks:
                conn.execute(t.tasks.insert(), tasks)
            conn.execute(t.events.insert(), [event])
            if run.get("lease_owner") is None:
                self.notify(conn, "scaleout_runs", [run["id"]])

    def apply(self, ops: list[Op], fence: Fence | None = None) -> set[str]:
        """Apply ``ops`` in one transaction, coalesced: updates of a row written earlier in the batch merge into
        that insert (or that update), then each table's rows go as a few executemany statements. With ``fence``,
        the writes of runs it refuses are dropped; returns those runs."""
        with self.engine.begin() as conn:
            lost = fence(conn, {op.run_id for op in ops if op.run_id}) if fence is not None else set()
            kept = [op for op in ops if op.run_id not in lost] if lost else ops
            self._write(conn, kept)
            self.notify(conn, "scaleout_events", [op.run_id for op in kept if op.kind == "event" and op.run_id])
        return lost

    def _write(self, conn: sa.Connection, ops: list[Op]) -> None:
        keyed = {
            "insert_run": ("runs", ("id",)),
            "insert_tasks": ("tasks", ("run_id", "task_id")),
            "insert_attempt": ("attempts", ("id",)),
        }
        updated = {"update_run": "runs", "update_task": "tasks", "update_attempt": "attempts"}
        inserts: dict[str, dict[tuple[str, ...], dict[str, Any]]] = {"runs": {}, "tasks": {}, "attempts": {}}
        updates: dict[str, dict[tuple[str, ...], dict[str, Any]]] = {"runs": {}, "tasks": {}, "attempts": {}}
        events: list[dict[str, Any]] = []
        for op in ops:
            if op.kind == "event":
                events.append(op.values)
            elif op.kind in keyed:
                table, key_cols = keyed[op.kind]
                for row in op.values if isinstance(op.values, list) else [op.values]:
                    inserts[table][tuple(row[c] for c in key_cols)] = dict(row)
            elif op.kind in updated:
                table = updated[op.kind]
                target = inserts[table].get(op.key)
                if target is None:
                    target = updates[table].setdefault(op.key, {})
                target.update(op.values)
            else:
                raise ValueError(f"unknown store operation {op.kind!r}")
        tables = {"runs": t.runs, "tasks": t.tasks, "attempts": t.attempts}
        keys = {"runs": ("id",), "tasks": ("run_id", "task_id"), "attempts": ("id",)}
        for name in ("runs", "tasks", "attempts"):
            for row in (*inserts[name].values(), *updates[name].values()):
                self._fit(tables[name].name, row)
        for row in events:
            self._fit(t.events.name, row)
        for name in ("runs", "tasks", "attempts"):
            for rows in _by_columns(list(inserts[name].values())):
                conn.execute(tables[name].insert(), rows)
        for rows in _by_columns(events):
            conn.execute(t.events.insert(), rows)
        for name in ("runs", "tasks", "attempts"):
            target_table = tables[name]
            items = [
                {**{f"k_{c}": k for c, k in zip(keys[name], key, strict=True)}, **values}
                for key, values in updates[name].items()
            ]
            for rows in _by_columns(items):
                columns = [c for c in rows[0] if not c.startswith("k_")]
                stmt = target_table.update().where(*[target_table.c[c] == sa.bindparam(f"k_{c}") for c in keys[name]])
                stmt = stmt.values({c: sa.bindparam(f"v_{c}") for c in columns})
                conn.execute(stmt, [{(k if k.startswith("k_") else f"v_{k}"): v for k, v in r.items()} for r in rows])

    def _fit(self, table: str, row: dict[str, Any]) -> None:
        """Make the strings of ``row`` storable in ``table`` on every database: no NUL, no longer than the column."""
        for column, length in self._text_columns[table]:
            value = row.get(column)
            if isinstance(value, str) and ("\x00" in value or (length is not None and len(value) > length)):
                value = value.replace("\x00", "\ufffd")
                row[column] = value[: length - 1] + "\u2026" if length is not None and len(value) > length else value

    # -- reads ----------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
            return dict(row) if row else None

    def list_runs(
        self,
        *,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        owner: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """The newest runs (of ``kind``, when given); with ``owner``, only that owner's (``LOCAL_OWNER`` includes
        rows with no owner)."""
        query = sa.select(
            t.runs.c.id,
            t.runs.c.kind,
            t.runs.c.name,
            t.runs.c.status,
            t.runs.c.error,
            t.runs.c.created_at,
            t.runs.c.updated_at,
            t.runs.c.finished_at,
            t.runs.c.owner,
        )
        if status:
            query = query.where(t.runs.c.status == status)
        if kind:
            query = query.where(t.runs.c.kind == kind)
        if owner is not None:
            mine = t.runs.c.owner == owner
            query = query.where(sa.or_(mine, t.runs.c.owner.is_(None)) if owner == LOCAL_OWNER else mine)
        query = query.order_by(t.runs.c.created_at.desc()).limit(min(limit, 500)).offset(offset)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def active_runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.runs).where(t.runs.c.status.in_(ACTIVE))).mappings()
            return [dict(r) for r in rows]

    def tasks_of(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.tasks).where(t.tasks.c.run_id == run_id)).mappings()
            return [dict(r) for r in rows]

    def attempts_of(self, run_id: str, *, status: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(t.attempts).where(t.attempts.c.run_id == run_id)
        if status:
            query = query.where(t.attempts.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.attempts.c.started_at)).mappings()]

    def events_after(self, run_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        query = (
            sa.select(t.events)
            .where(t.events.c.run_id == run_id, t.events.c.seq > after)
            .order_by(t.events.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def attempt_numbers(self, run_id: str) -> dict[str, int]:
        """The highest attempt number made so far for each task of ``run_id`` (numbering goes on after a crash)."""
        query = (
            sa.select(t.attempts.c.task_id, sa.func.max(t.attempts.c.number))
            .where(t.attempts.c.run_id == run_id)
            .group_by(t.attempts.c.task_id)
        )
        with self.engine.connect() as conn:
            return {task_id: int(n or 0) for task_id, n in conn.execute(query).all()}

    def count_queued(self) -> int:
        """Runs waiting for a replica (pending, owned by none)."""
        query = sa.select(sa.func.count()).where(t.runs.c.status == "pending", t.runs.c.lease_owner.is_(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def last_seq(self, run_id: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(t.events.c.seq)).where(t.events.c.run_id == run_id)).scalar()
            return int(value or 0)


def _by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by their column set (executemany needs the same columns in every row)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def _json_text(value: Any) -> str:
    """JSON for a JSON column, the same on every database: NaN and infinities (which an agent's reply may hold,
    and PostgreSQL refuses) become null."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return to_json(value, inf_nan_mode="null").decode()


def _is_text(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.String)  # sa.Text is a String


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
