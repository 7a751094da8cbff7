"""Observed calls folded into statistics: per agent (its totals, which rank it in search) and per (agent, skill)
(which the orchestrator's router ranks a candidate by): counts, tokens, the latency window and its percentiles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, insert, select, update

from registry.errors import InvalidQuery
from registry.models import CallReport
from registry.ranking import RANKED, for_update, rank_key
from registry.stats import percentiles
from registry.tables import agents, skill_stats, skills

__all__ = ["MAX_CALLS", "validate_calls", "apply_calls"]

MAX_CALLS = 10_000

_READ = (agents.c.pk, agents.c.id, agents.c.tokens, agents.c.latency_window, *RANKED)
_COUNTED = ("calls", "successes", "tokens", "latency_window", "latency_p50_ms", "latency_p95_ms")


def validate_calls(calls: Sequence[CallReport | Mapping[str, Any]]) -> list[CallReport]:
    """``calls`` as CallReports (mappings are validated); at most MAX_CALLS."""
    if len(calls) > MAX_CALLS:
        raise InvalidQuery(f"at most {MAX_CALLS} calls per record_calls, got {len(calls)}; send them in batches")
    reports = []
    for i, call in enumerate(calls):
        try:
            reports.append(call if isinstance(call, CallReport) else CallReport.model_validate(call))
        except ValidationError as exc:
            fields = "agent_id, success, latency_s, tokens, skill"
            raise InvalidQuery(f"call #{i} is not a valid CallReport ({fields}): {exc}") from None
    return reports


def apply_calls(conn: Connection, reports: Sequence[CallReport], window: int) -> set[str]:
    """Add ``reports`` (in order) to their agents' statistics in one pass; returns the agent ids not found.

    A report that names a skill the agent's card declares also counts in that skill's statistics.
    """
    ids = sorted({r.agent_id for r in reports})
    if not ids:
        return set()
    # Locked in primary-key order, so concurrent batches over the same agents cannot deadlock. The agent row's
    # lock also covers its skill statistics (every writer of those takes it first).
    stmt = for_update(conn, select(*_READ).where(agents.c.id.in_(ids)).order_by(agents.c.pk))
    rows = {r.id: dict(r._mapping) for r in conn.execute(stmt)}
    for row in rows.values():
        row["latency_window"] = list(row["latency_window"] or [])
    for report in reports:
        if (seen := rows.get(report.agent_id)) is not None:
            _fold(seen, report)
    changes = []
    for row in rows.values():
        _summarise(row, window)
        key = rank_key(row["status"], row["calls"], row["successes"], row["latency_p50_ms"], row["cost_per_call"])
        changes.append({"b_pk": row["pk"], "b_key": key} | {f"b_{c}": row[c] for c in _COUNTED})
    if changes:
        conn.execute(
            update(agents)
            .where(agents.c.pk == bindparam("b_pk"))
            .values(**_bound(agents), rank_key=bindparam("b_key")),
            changes,
        )
    _apply_skill_calls(conn, [(rows[r.agent_id]["pk"], r) for r in reports if r.agent_id in rows], window)
    return set(ids) - set(rows)


def _apply_skill_calls(conn: Connection, calls: list[tuple[int, CallReport]], window: int) -> None:
    """Fold the calls that name a declared skill into ``registry_skill_stats`` (rows created on first use)."""
    named = [(pk, r) for pk, r in calls if r.skill is not None]
    if not named:
        return
    pks = sorted({pk for pk, _ in named})
    wanted = sorted({r.skill for _, r in named if r.skill is not None})
    declared = {
        (row.agent_pk, row.skill_id)
        for row in conn.execute(
            select(skills.c.agent_pk, skills.c.skill_id).where(
                skills.c.agent_pk.in_(pks), skills.c.skill_id.in_(wanted)
            )
        )
    }
    stored = {
        (row.agent_pk, row.skill_id): dict(row._mapping, latency_window=list(row.latency_window or []))
        for row in conn.execute(
            select(skill_stats).where(skill_stats.c.agent_pk.in_(pks), skill_stats.c.skill_id.in_(wanted))
        )
    }
    known = set(stored)
    touched: set[tuple[int, str]] = set()
    for pk, report in named:
        key = (pk, report.skill or "")
        if key not in declared:
            continue  # a skill the card does not (or no longer) declare: the totals count it, nothing else
        row = stored.setdefault(key, {"agent_pk": pk, "skill_id": key[1], "calls": 0, "successes": 0, "tokens": 0})
        row.setdefault("latency_window", [])
        _fold(row, report)
        touched.add(key)
    for key in touched:
        _summarise(stored[key], window)
    inserts = [stored[key] for key in sorted(touched - known)]
    updates = [
        {"b_pk": key[0], "b_skill": key[1]} | {f"b_{c}": stored[key][c] for c in _COUNTED}
        for key in sorted(touched & known)
    ]
    if inserts:
        conn.execute(insert(skill_stats), inserts)
    if updates:
        conn.execute(
            update(skill_stats)
            .where(skill_stats.c.agent_pk == bindparam("b_pk"), skill_stats.c.skill_id == bindparam("b_skill"))
            .values(**_bound(skill_stats)),
            updates,
        )


def _fold(row: dict[str, Any], report: CallReport) -> None:
    row["calls"] += 1
    row["successes"] += 1 if report.success else 0
    row["tokens"] += report.tokens
    row["latency_window"].append(round(report.latency_s * 1000.0, 3))


def _summarise(row: dict[str, Any], window: int) -> None:
    """Trim the latency window to its last ``window`` calls and set p50/p95 from it."""
    row["latency_window"] = row["latency_window"][-window:]
    row["latency_p50_ms"], row["latency_p95_ms"] = percentiles(row["latency_window"], (50, 95))


def _bound(table: Any) -> dict[str, Any]:
    """The counted columns of ``table`` set from ``b_<column>`` parameters (an executemany's rows)."""
    values: dict[str, Any] = {c: bindparam(f"b_{c}") for c in _COUNTED}
    values["latency_window"] = bindparam("b_latency_window", type_=table.c.latency_window.type)
    return values
