"""Registration writes inside one transaction: insert new agents (in bulk), update known ones in place.

``owner`` is who registers (a principal's owner; None for a trusted local caller): new rows record it, and a name
or id already held by another owner is refused with NameConflict unless ``admin`` (or no ``owner``) is given. An
update never changes a row's owner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from registry.bulk import insert_fresh
from registry.convert import Prepared, default_agent_id, now
from registry.errors import NameConflict
from registry.models import LOCAL_OWNER, HealthStatus
from registry.ranking import RANKED, for_update, rank_key
from registry.tables import agent_tags, agents, skills, versions

__all__ = ["new_row", "upsert", "insert_batch", "owned_by"]


def owned_by(row_owner: str | None, owner: str | None) -> bool:
    """Whether a row whose ``owner`` column holds ``row_owner`` belongs to ``owner`` (None: a trusted caller,
    who may change anything). Rows from before owners were recorded (NULL) belong to "local"."""
    return owner is None or (row_owner or LOCAL_OWNER) == owner


def new_row(p: Prepared, stamp: datetime, owner: str | None = None) -> dict[str, Any]:
    """The full registry_agents row of a newly registered agent (healthy, no statistics yet)."""
    row: dict[str, Any] = {
        "model_name": None,
        "model_parameters": None,
        "model_quantisation": None,
        "model_file_size": None,
        "cost_per_call": 0.0,
        "cost_per_1k_tokens": 0.0,
        "card_url": None,
        "provider": None,
        **p.agent,
        "id": p.agent_id or default_agent_id(p.name),
        "status": HealthStatus.HEALTHY.value,
        "consecutive_failures": 0,
        "last_heartbeat": stamp,
        "registered_at": stamp,
        "updated_at": stamp,
        "calls": 0,
        "successes": 0,
        "tokens": 0,
        "latency_p50_ms": None,
        "latency_p95_ms": None,
        "latency_window": [],
        "owner": owner,
    }
    row["rank_key"] = rank_key(row["status"], 0, 0, None, row["cost_per_call"])
    return row


def insert_batch(conn: Connection, batch: list[Prepared], owner: str | None = None, admin: bool = False) -> int:
    """Register a batch: agents new by name and id are bulk-inserted, the others updated in place (when
    ``owner`` may: see ``upsert``)."""
    unique = list({p.name: p for p in batch}.values())
    names = [p.name for p in unique]
    ids = [p.agent_id for p in unique if p.agent_id is not None]
    known = conn.execute(select(agents.c.name, agents.c.id).where(or_(agents.c.name.in_(names), agents.c.id.in_(ids))))
    taken_names, taken_ids = set(), set()
    for row in known:
        taken_names.add(row.name)
        taken_ids.add(row.id)
    fresh = []
    for p in unique:
        if p.name in taken_names or (p.agent_id is not None and p.agent_id in taken_ids):
            upsert(conn, p, owner, admin)
        else:
            fresh.append(p)
    if fresh:
        stamp = now()
        insert_fresh(conn, [new_row(p, stamp, owner) for p in fresh], fresh, stamp)
    return len(unique)


def upsert(conn: Connection, p: Prepared, owner: str | None = None, admin: bool = False) -> int:
    """Insert the agent, or update it in place (same name, or same explicit id); returns its primary key.

    A new agent records ``owner``. An existing one is updated only for its owner, an ``admin`` or a trusted
    caller (``owner`` None); anyone else gets NameConflict, and the stored agent (its URL above all) is unchanged.
    """
    check = None if admin else owner
    cols = (agents.c.pk, agents.c.id, agents.c.version, agents.c.card_hash, agents.c.owner, *RANKED)
    by_name = conn.execute(for_update(conn, select(*cols).where(agents.c.name == p.name))).first()
    if by_name is not None and not owned_by(by_name.owner, check):
        raise NameConflict(
            f"the name {p.name!r} is already registered and belongs to another principal; only its owner or an "
            "admin may re-register it: choose another name"
        )
    if by_name is not None and p.agent_id is not None and by_name.id != p.agent_id:
        raise NameConflict(
            f"the name {p.name!r} is already registered under id {by_name.id!r}, not {p.agent_id!r}; "
            f"deregister {by_name.id!r} first, or register under that id or another name"
        )
    row = by_name
    if row is None and p.agent_id is not None:
        row = conn.execute(for_update(conn, select(*cols).where(agents.c.id == p.agent_id))).first()
        if row is not None and not owned_by(row.owner, check):
            raise NameConflict(
                f"the agent id {p.agent_id!r} is already registered and belongs to another principal; only its "
                "owner or an admin may re-register it: choose another id"
            )
    stamp = now()
    if row is None:
        pk = conn.execute(insert(agents).returning(agents.c.pk), new_row(p, stamp, owner)).scalar_one()
        _replace_children(conn, pk, p)
        conn.execute(insert(versions), {"agent_pk": pk, "version": p.version, "card": p.card, "recorded_at": stamp})
        return int(pk)
    status = row.status if row.status == HealthStatus.DRAINING.value else HealthStatus.HEALTHY.value
    values: dict[str, Any] = {"status": status, "consecutive_failures": 0, "last_heartbeat": stamp}
    changed = row.card_hash != p.agent["card_hash"]
    if changed:
        values |= p.agent | {"updated_at": stamp}
    elif p.has_model or p.has_cost:
        values |= {k: v for k, v in p.agent.items() if k.startswith(("model_", "cost_"))}
    cost = values.get("cost_per_call", row.cost_per_call)
    values["rank_key"] = rank_key(status, row.calls, row.successes, row.latency_p50_ms, cost)
    conn.execute(update(agents).where(agents.c.pk == row.pk).values(**values))
    if changed:
        _replace_children(conn, row.pk, p)
    if row.version != p.version:
        conn.execute(delete(versions).where(versions.c.agent_pk == row.pk, versions.c.version == p.version))
        conn.execute(
            insert(versions),
            {"agent_pk": row.pk, "version": p.version, "card": p.card, "recorded_at": stamp},
        )
    return int(row.pk)


def _replace_children(conn: Connection, pk: int, p: Prepared) -> None:
    conn.execute(delete(skills).where(skills.c.agent_pk == pk))
    conn.execute(delete(agent_tags).where(agent_tags.c.agent_pk == pk))
    if p.skills:
        conn.execute(insert(skills), [s | {"agent_pk": pk} for s in p.skills])
    if p.tags:
        conn.execute(insert(agent_tags), [{"agent_pk": pk, "tag": t} for t in p.tags])
