"""Ranked search over the registry: skill id, tags, free text (SQLite FTS5 / PostgreSQL tsvector), filters.

User text never reaches the index as query syntax: it is split into words, each quoted, then combined.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, case, func, literal_column, or_, select, text
from sqlalchemy.sql.expression import TextClause

from registry.models import HealthStatus
from registry.tables import FTS_TABLE, agent_tags, agents, skills

__all__ = ["MAX_TERMS", "words", "search_pks"]

MAX_TERMS = 16
_WORD = re.compile(r"\w+", re.UNICODE)


def words(query: str) -> list[str]:
    """The searchable words of ``query`` (lowercase, at most MAX_TERMS, operators and quotes dropped)."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query[:1000])))[:MAX_TERMS]


def _fts5_query(terms: Sequence[str]) -> str:
    # Every term quoted (no FTS5 syntax survives); the last is a prefix so partial words match.
    quoted = [f'"{t}"' for t in terms]
    quoted[-1] += "*"
    return " ".join(quoted)


def _tsquery(terms: Sequence[str]) -> str:
    parts = [f"'{t}'" for t in terms]
    parts[-1] += ":*"
    return " & ".join(parts)


def _text_match(conn: Connection, terms: Sequence[str]) -> tuple[Any, ColumnElement[Any]]:
    """A selectable of (pk, rank) for the text terms, and the ORDER BY expression (best first)."""
    if conn.dialect.name == "sqlite":
        fts: TextClause = text(
            f"SELECT rowid AS pk, bm25({FTS_TABLE}, 10.0, 1.0, 4.0) AS rank "
            f"FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_query"
        ).bindparams(fts_query=_fts5_query(terms))
        sub = fts.columns(literal_column("pk"), literal_column("rank")).subquery("fts")
        return sub, sub.c.rank.asc()
    query = func.to_tsquery(literal_column("'english'"), _tsquery(terms))
    vector: ColumnElement[Any] = literal_column("registry_agents.search_vector")
    sub = (
        select(agents.c.pk.label("pk"), func.ts_rank_cd(vector, query).label("rank"))
        .where(vector.op("@@")(query))
        .subquery("fts")
    )
    return sub, sub.c.rank.desc()


def _success_rate() -> ColumnElement[Any]:
    return case((agents.c.calls > 0, agents.c.successes * 1.0 / agents.c.calls), else_=None)


def search_pks(
    conn: Connection,
    *,
    skill: str | None,
    tags: Collection[str] | None,
    all_tags: bool,
    text_query: str | None,
    status: Collection[HealthStatus] | None,
    max_cost: float | None,
    max_latency_ms: float | None,
    limit: int,
    offset: int = 0,
) -> list[int]:
    """Primary keys of the matching agents, best first."""
    stmt: Select[Any] = select(agents.c.pk)
    order: list[Any] = []
    if text_query is not None:
        terms = words(text_query)
        if not terms:
            return []
        match, rank_order = _text_match(conn, terms)
        stmt = stmt.join(match, match.c.pk == agents.c.pk)
        order.append(rank_order)
    wanted = sorted({t.strip().lower() for t in tags or () if t.strip()})
    if len(wanted) == 1:
        stmt = stmt.where(agents.c.pk.in_(select(agent_tags.c.agent_pk).where(agent_tags.c.tag == wanted[0])))
    elif wanted:
        counts = (
            select(agent_tags.c.agent_pk, func.count().label("hits"))
            .where(agent_tags.c.tag.in_(wanted))
            .group_by(agent_tags.c.agent_pk)
        )
        if all_tags:
            counts = counts.having(func.count() == len(wanted))
        tag_hits = counts.subquery("tag_hits")
        stmt = stmt.join(tag_hits, tag_hits.c.agent_pk == agents.c.pk)
        order.insert(0, tag_hits.c.hits.desc())
    if skill is not None:
        stmt = stmt.where(agents.c.pk.in_(select(skills.c.agent_pk).where(skills.c.skill_id == skill)))
    filters: list[ColumnElement[bool]] = []
    if status is not None:
        filters.append(agents.c.status.in_([HealthStatus(s).value for s in status]))
    if max_cost is not None:
        filters.append(agents.c.cost_per_call <= max_cost)
    if max_latency_ms is not None:
        filters.append(or_(agents.c.latency_p50_ms.is_(None), agents.c.latency_p50_ms <= max_latency_ms))
    if filters:
        stmt = stmt.where(and_(*filters))
    order += [
        case((agents.c.status == HealthStatus.HEALTHY.value, 0), else_=1),
        _success_rate().desc().nulls_last(),
        agents.c.latency_p50_ms.asc().nulls_last(),
        agents.c.cost_per_call.asc(),
        agents.c.name.asc(),
    ]
    stmt = stmt.order_by(*order).limit(limit).offset(offset)
    return [row[0] for row in conn.execute(stmt)]
