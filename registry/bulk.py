"""Bulk insertion of new agents and their rows: COPY on PostgreSQL, one prepared executemany per table on SQLite.

Primary keys of the new agents are allocated up front (the sequence on PostgreSQL; after the current maximum on
SQLite, whose write transaction holds the database lock), so child rows need no round trip per agent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table, func, select
from sqlalchemy.exc import DBAPIError

from registry.convert import Prepared
from registry.tables import agent_tags, agents, skills, versions

__all__ = ["insert_fresh"]

Rows = list[dict[str, Any]]


def insert_fresh(conn: Connection, rows: Rows, fresh: Sequence[Prepared], stamp: datetime) -> None:
    """Insert complete agent ``rows`` (no ``pk``) for ``fresh`` with their skills, tags and first version."""
    pks = _allocate(conn, len(rows))
    for row, pk in zip(rows, pks, strict=True):
        row["pk"] = pk
    children: list[tuple[Table, Rows]] = [
        (skills, [s | {"agent_pk": pk} for pk, p in zip(pks, fresh, strict=True) for s in p.skills]),
        (agent_tags, [{"agent_pk": pk, "tag": t} for pk, p in zip(pks, fresh, strict=True) for t in p.tags]),
        (
            versions,
            [
                {"agent_pk": pk, "version": p.version, "card": p.card, "recorded_at": stamp}
                for pk, p in zip(pks, fresh, strict=True)
            ],
        ),
    ]
    write = _copy if conn.dialect.name == "postgresql" else _executemany
    write(conn, agents, rows)
    for table, payload in children:
        if payload:
            write(conn, table, payload)


def _allocate(conn: Connection, n: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        sql = "SELECT nextval(pg_get_serial_sequence('registry_agents', 'pk')) FROM generate_series(1, %(n)s)"
        return [int(pk) for pk in conn.exec_driver_sql(sql, {"n": n}).scalars()]
    top = int(conn.execute(select(func.coalesce(func.max(agents.c.pk), 0))).scalar_one())
    return list(range(top + 1, top + 1 + n))


def _copy(conn: Connection, table: Table, rows: Rows) -> None:
    names = [c.name for c in table.c if c.name in rows[0]]
    as_json = {c.name for c in table.c if isinstance(c.type, JSON)}
    sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    raw: Any = conn.connection.dbapi_connection
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row([json.dumps(row[n]) if n in as_json else row[n] for n in names])
    except driver_error as exc:
        # The same SQLAlchemy exception a Core statement would raise (a duplicate is retried by the caller).
        raise DBAPIError.instance(sql, None, exc, driver_error) from exc


def _executemany(conn: Connection, table: Table, rows: Rows) -> None:
    columns = [c for c in table.c if c.name in rows[0]]
    # The column types' own bind processors, so rows are stored exactly as SQLAlchemy Core would store them.
    processors = [c.type.bind_processor(conn.dialect) for c in columns]
    marks = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) VALUES ({marks})"
    data = [
        tuple(p(row[c.name]) if p else row[c.name] for c, p in zip(columns, processors, strict=True)) for row in rows
    ]
    conn.exec_driver_sql(sql, data)
