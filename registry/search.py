"""Search over the registry: skill id, tags, free text (SQLite FTS5 / PostgreSQL tsvector), filters.

Matches come in the stored ranking order (``registry.ranking``), so the database walks one index in that order
and stops after ``limit`` matches instead of ranking every match.

User text never reaches the index as query syntax: it is split into words, each quoted, then combined.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, exists, func, literal_column, or_, select, text, union_all

from registry.models import HealthStatus
from registry.tables import FTS_TABLE, agent_tags, agents, skills

__all__ = ["MAX_TERMS", "words", "search_rows"]

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


def _text_filter(conn: Connection, terms: Sequence[str]) -> ColumnElement[bool]:
    """Agents whose indexed text has every term (the last also as a prefix)."""
    if conn.dialect.name == "sqlite":
        fts = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_query").bindparams(
            fts_query=_fts5_query(terms)
        )
        return agents.c.pk.in_(fts.columns(literal_column("rowid")))
    query = func.to_tsquery(literal_column("'english'"), _tsquery(terms))
    return literal_column("registry_agents.search_vector").op("@@")(query)


def _has_tag(tags: Sequence[str]) -> ColumnElement[bool]:
    owned = select(agent_tags.c.agent_pk).where(agent_tags.c.agent_pk == agents.c.pk)
    return exists(owned.where(agent_tags.c.tag == tags[0] if len(tags) == 1 else agent_tags.c.tag.in_(tags)))


def _has_skill(skill: str) -> ColumnElement[bool]:
    return exists(select(skills.c.agent_pk).where(skills.c.agent_pk == agents.c.pk, skills.c.skill_id == skill))


def search_rows(
    conn: Connection,
    columns: Sequence[ColumnElement[Any]],
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
) -> list[Row[Any]]:
    """``columns`` of the matching agents in ranking order (``rank_key``, then name)."""
    where: list[ColumnElement[bool]] = []
    if text_query is not None:
        terms = words(text_query)
        if not terms:
            return []
        where.append(_text_filter(conn, terms))
    wanted = sorted({t.strip().lower() for t in tags or () if t.strip()})
    if wanted:
        where += [_has_tag([t]) for t in wanted] if all_tags else [_has_tag(wanted)]
    if skill is not None:
        where.append(_has_skill(skill))
    if max_cost is not None:
        where.append(agents.c.cost_per_call <= max_cost)
    if max_latency_ms is not None:
        where.append(or_(agents.c.latency_p50_ms.is_(None), agents.c.latency_p50_ms <= max_latency_ms))
    statuses = sorted({HealthStatus(s).value for s in (HealthStatus if status is None else status)})
    if not statuses:
        return []
    # One ordered walk of the (status, rank_key, name) index per status, each stopping after limit + offset rows.
    branches = [
        select(agents.c.pk, agents.c.rank_key, agents.c.name)
        .where(agents.c.status == value, *where)
        .order_by(agents.c.rank_key, agents.c.name)
        .limit(limit + offset)
        for value in statuses
    ]
    if len(branches) == 1:
        ranked = branches[0].offset(offset).limit(limit).subquery("ranked")
    else:
        merged = union_all(*(b.subquery().select() for b in branches)).subquery("merged")
        ranked = (
            select(merged).order_by(merged.c.rank_key, merged.c.name).limit(limit).offset(offset).subquery("ranked")
        )
    # The narrow walk picks the page; only its rows are then read in full.
    stmt = (
        select(*columns)
        .join_from(ranked, agents, ranked.c.pk == agents.c.pk)
        .order_by(ranked.c.rank_key, ranked.c.name)
    )
    return list(conn.execute(stmt))
