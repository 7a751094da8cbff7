"""Observed calls folded into agent statistics: counts, tokens, the latency window and its percentiles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, select, update

from registry.errors import InvalidQuery
from registry.models import CallReport
from registry.ranking import RANKED, for_update, rank_key
from registry.stats import percentiles
from registry.tables import agents

__all__ = ["MAX_CALLS", "validate_calls", "apply_calls"]

MAX_CALLS = 10_000

_READ = (agents.c.pk, agents.c.id, agents.c.tokens, agents.c.latency_window, *RANKED)


def validate_calls(calls: Sequence[CallReport | Mapping[str, Any]]) -> list[CallReport]:
    """``calls`` as CallReports (mappings are validated); at most MAX_CALLS."""
    if len(calls) > MAX_CALLS:
        raise InvalidQuery(f"at most {MAX_CALLS} calls per record_calls, got {len(calls)}; send them in batches")
    reports = []
    for i, call in enumerate(calls):
        try:
            reports.append(call if isinstance(call, CallReport) else CallReport.model_validate(call))
        except ValidationError as exc:
            fields = "agent_id, success, latency_s, tokens"
            raise InvalidQuery(f"call #{i} is not a valid CallReport ({fields}): {exc}") from None
    return reports


def apply_calls(conn: Connection, reports: Sequence[CallReport], window: int) -> set[str]:
    """Add ``reports`` (in order) to their agents' statistics in one pass; returns the agent ids not found."""
    ids = sorted({r.agent_id for r in reports})
    if not ids:
        return set()
    # Locked in primary-key order, so concurrent batches over the same agents cannot deadlock.
    stmt = for_update(conn, select(*_READ).where(agents.c.id.in_(ids)).order_by(agents.c.pk))
    rows = {r.id: dict(r._mapping) for r in conn.execute(stmt)}
    for row in rows.values():
        row["latency_window"] = list(row["latency_window"] or [])
    for report in reports:
        if (seen := rows.get(report.agent_id)) is not None:
            seen["calls"] += 1
            seen["successes"] += 1 if report.success else 0
            seen["tokens"] += report.tokens
            seen["latency_window"].append(round(report.latency_s * 1000.0, 3))
    changes = []
    for row in rows.values():
        latencies = row["latency_window"][-window:]
        p50, p95 = percentiles(latencies, (50, 95))
        key = rank_key(row["status"], row["calls"], row["successes"], p50, row["cost_per_call"])
        changes.append(
            {
                "b_pk": row["pk"],
                "b_calls": row["calls"],
                "b_successes": row["successes"],
                "b_tokens": row["tokens"],
                "b_window": latencies,
                "b_p50": p50,
                "b_p95": p95,
                "b_key": key,
            }
        )
    if changes:
        conn.execute(
            update(agents)
            .where(agents.c.pk == bindparam("b_pk"))
            .values(
                calls=bindparam("b_calls"),
                successes=bindparam("b_successes"),
                tokens=bindparam("b_tokens"),
                latency_window=bindparam("b_window", type_=agents.c.latency_window.type),
                latency_p50_ms=bindparam("b_p50"),
                latency_p95_ms=bindparam("b_p95"),
                rank_key=bindparam("b_key"),
            ),
            changes,
        )
    return set(ids) - set(rows)
