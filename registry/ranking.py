"""The stored ranking key: search order packed into one indexed integer, so a search can stop at ``limit``.

Lower is better. From the most significant bits down: health (healthy first), success rate (highest first,
unmeasured last), p50 latency (lowest first, unmeasured last), declared per-call cost (lowest first). Search
orders by ``(rank_key, name)``; the key is rewritten in the same transaction as every change of status,
statistics or cost.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, select, update

from registry.models import HealthStatus
from registry.tables import agents

__all__ = ["SUCCESS_STEPS", "RANKED", "rank_key", "for_update", "ranked_row", "write_ranked"]

_SUCCESS_BITS, _LATENCY_BITS, _COST_BITS = 14, 24, 24
SUCCESS_STEPS = 10_000  # success rates are compared to 0.01 %
_LATENCY_SHIFT = _COST_BITS
_SUCCESS_SHIFT = _LATENCY_SHIFT + _LATENCY_BITS
_HEALTH_SHIFT = _SUCCESS_SHIFT + _SUCCESS_BITS  # 62: the key stays below 2**63, a signed 64-bit integer


def _float_key(value: float | None, bits: int) -> int:
    """The top ``bits`` of a non-negative double's bit pattern (which orders like the number); None sorts last.

    Keeps the exponent and ``bits - 11`` mantissa bits, so values within about 1 part in 2**(bits - 11) tie.
    """
    if value is None or math.isnan(value):
        return (1 << bits) - 1
    pattern: int = struct.unpack(">q", struct.pack(">d", max(0.0, float(value)) + 0.0))[0]
    return pattern >> (63 - bits)


def rank_key(status: str, calls: int, successes: int, latency_p50_ms: float | None, cost_per_call: float) -> int:
    """The ranking key of an agent with these values (lower ranks first)."""
    health = 0 if status == HealthStatus.HEALTHY.value else 1
    if calls > 0:
        success = round((1.0 - min(1.0, max(0.0, successes / calls))) * SUCCESS_STEPS)
    else:
        success = (1 << _SUCCESS_BITS) - 1
    return (
        health << _HEALTH_SHIFT
        | success << _SUCCESS_SHIFT
        | _float_key(latency_p50_ms, _LATENCY_BITS) << _LATENCY_SHIFT
        | _float_key(cost_per_call, _COST_BITS)
    )


RANKED = (agents.c.status, agents.c.calls, agents.c.successes, agents.c.latency_p50_ms, agents.c.cost_per_call)


def for_update(conn: Connection, stmt: Select[Any]) -> Select[Any]:
    """``stmt`` locking the rows it reads until the transaction ends (PostgreSQL; SQLite writers are serial)."""
    return stmt.with_for_update() if conn.dialect.name == "postgresql" else stmt


def ranked_row(conn: Connection, pk: int, *extra: ColumnElement[Any]) -> dict[str, Any]:
    """The ranked columns (and ``extra``) of agent ``pk``, locked for the rest of the transaction."""
    stmt = for_update(conn, select(*RANKED, *extra).where(agents.c.pk == pk))
    return dict(conn.execute(stmt).one()._mapping)


def write_ranked(conn: Connection, pk: int, row: dict[str, Any], values: dict[str, Any]) -> None:
    """Write ``values`` to agent ``pk`` (read before as ``row``) with the ranking key they lead to."""
    merged = row | values
    key = rank_key(
        merged["status"], merged["calls"], merged["successes"], merged["latency_p50_ms"], merged["cost_per_call"]
    )
    conn.execute(update(agents).where(agents.c.pk == pk).values(**values, rank_key=key))
