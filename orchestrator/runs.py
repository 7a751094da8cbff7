"""Runs, tasks, attempts and events persisted with SQLAlchemy 2 (the registry's database, own ``orch_`` tables).

Writes are batched: the executor queues operations on a ``RunWriter``, which applies them in one transaction
per batch in a worker thread (gathered for up to 50 ms, or until someone flushes), so thousands of task events
cost a few commits, not thousands. Everything reaches the database before a run is reported finished.

Requests are validated against the columns before they are accepted (``orchestrator.spec``); what agents send
back (error texts, task ids) is fitted to its column here (NUL replaced, length cut), so no reply can make a
write fail. If a batch still fails, its operations are applied one at a time: only the bad one is lost, the
error goes to whoever flushed with that batch, and the writer goes on.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic_core import to_json
from sqlalchemy import event as sa_event

from orchestrator import tables as t

__all__ = ["RunStore", "RunWriter", "Op", "now", "owned_by", "ACTIVE", "TERMINAL", "LOCAL_OWNER"]

_log = logging.getLogger(__name__)
ACTIVE = ("pending", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
_MIGRATIONS = Path(__file__).parent / "migrations"
LOCAL_OWNER = "local"  # who owns runs stored without an owner (before access control, or by trusted callers)


def owned_by(run_owner: str | None, owner: str | None) -> bool:
    """True when a run whose stored owner is ``run_owner`` is visible to ``owner`` (None: a trusted caller)."""
    return owner is None or (run_owner or LOCAL_OWNER) == owner


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Op:
    """One queued write: an insert (insert_run, insert_tasks, insert_attempt, event) or an update_* by key."""

    kind: str
    values: Any
    key: tuple[str, ...] = ()


class RunStore:
    """Synchronous access to the orchestrator tables; async code calls it through ``anyio.to_thread``."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        args: dict[str, Any] = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
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
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # -- writes ---------------------------------------------------------------------------------------

    def apply(self, ops: list[Op]) -> None:
        """Apply ``ops`` in one transaction, coalesced: updates of a row written earlier in the batch merge into
        that insert (or that update), then each table's rows go as a few executemany statements."""
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
        with self.engine.begin() as conn:
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
                    stmt = target_table.update().where(
                        *[target_table.c[c] == sa.bindparam(f"k_{c}") for c in keys[name]]
                    )
                    stmt = stmt.values({c: sa.bindparam(f"v_{c}") for c in columns})
                    conn.execute(
                        stmt, [{(k if k.startswith("k_") else f"v_{k}"): v for k, v in r.items()} for r in rows]
                    )

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
        self, *, status: str | None = None, limit: int = 50, offset: int = 0, owner: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest runs; with ``owner``, only that owner's (``LOCAL_OWNER`` includes rows with no owner)."""
        query = sa.select(
            t.runs.c.id,
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


class _Flush:
    """A flush request in the writer's queue: set when the writes before it are committed (or failed)."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.error: BaseException | None = None


class RunWriter:
    """Queues store operations and applies them in batches from one background task (use inside ``running``)."""

    def __init__(self, store: RunStore, *, max_batch: int = 5_000, linger_s: float = 0.05) -> None:
        self.store = store
        self.max_batch = max_batch
        # Gather writes this long before a commit (fewer, larger transactions); a flush cuts the wait short.
        self.linger_s = linger_s
        self._wake = anyio.Event()
        send, receive = anyio.create_memory_object_stream[Op | _Flush](max_buffer_size=math.inf)
        self._send: MemoryObjectSendStream[Op | _Flush] = send
        self._receive: MemoryObjectReceiveStream[Op | _Flush] = receive
        self.error: BaseException | None = None  # the last write that failed (it was dropped; later ones go on)

    def put(self, kind: str, values: Any, *key: str) -> None:
        """Queue one write; it reaches the database with the next batch."""
        self._send.send_nowait(Op(kind, values, key))

    async def flush(self) -> None:
        """Wait until everything queued so far is committed; raises if a write of the last batch failed."""
        marker = _Flush()
        self._send.send_nowait(marker)
        self._wake.set()
        await marker.done.wait()
        if marker.error is not None:
            raise RuntimeError(f"the run store failed: {marker.error}") from marker.error

    async def run(self) -> None:
        """The writer loop: take what is queued (up to ``max_batch``), commit it, repeat until closed."""
        async with self._receive:
            async for first in self._receive:
                if self.linger_s and not isinstance(first, _Flush) and not self._wake.is_set():
                    with anyio.move_on_after(self.linger_s):
                        await self._wake.wait()
                self._wake = anyio.Event()
                batch: list[Op] = []
                waiters: list[_Flush] = []
                item: Op | _Flush = first
                while True:
                    if isinstance(item, _Flush):
                        waiters.append(item)
                    else:
                        batch.append(item)
                    if len(batch) >= self.max_batch:
                        break
                    try:
                        item = self._receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                failure = await anyio.to_thread.run_sync(self._apply, batch) if batch else None
                for waiter in waiters:
                    waiter.error = failure
                    waiter.done.set()

    def _apply(self, batch: list[Op]) -> BaseException | None:
        """Commit ``batch``; if it fails, commit its operations one by one and drop only those that fail."""
        try:
            self.store.apply(batch)
            return None
        except Exception as exc:
            first: BaseException = exc
        dropped = 0
        for op in batch:
            try:
                self.store.apply([op])
            except Exception as exc:
                dropped += 1
                first = exc if dropped == 1 else first
        if dropped:
            self.error = first
            _log.warning("run store: %d of %d writes failed and were dropped: %s", dropped, len(batch), first)
            return first
        return None

    async def aclose(self) -> None:
        """Flush, then stop the loop."""
        await self.flush()
        await self._send.aclose()
