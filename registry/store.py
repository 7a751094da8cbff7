"""The registry: register, deregister, heartbeat, look up, search and report on agents (synchronous API).

Every operation is one database transaction, so nothing is ever half-written. Async callers wrap calls in
``anyio.to_thread.run_sync``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from protocol.a2a import AgentCard
from registry import db
from registry.convert import Prepared, default_agent_id, now, prepare, to_record, to_skill, utc
from registry.errors import AgentNotFound, InvalidQuery, NameConflict
from registry.models import (
    AgentRecord,
    AgentVersion,
    CostHints,
    HealthStatus,
    ModelInfo,
    Registration,
    SkillRecord,
    Transport,
)
from registry.search import search_pks
from registry.stats import percentiles
from registry.tables import agent_tags, agents, skills, versions

__all__ = ["Registry", "DEFAULT_STATUS"]

Records = list[AgentRecord]
Versions = list[AgentVersion]
Skills = list[SkillRecord]
Batch = list[Prepared]

T = TypeVar("T")
DEFAULT_STATUS: frozenset[HealthStatus] = frozenset({HealthStatus.HEALTHY})
_RETRIES = 5
# What an AgentRecord needs; the stored card, its hash, the search text and the latency window stay behind.
_RECORD_COLUMNS = [c for c in agents.c if c.name not in {"card", "card_hash", "skills_text", "latency_window"}]


class Registry:
    """Agents by id, name, skill, tag and text, on SQLite (default) or PostgreSQL; migrates on open."""

    def __init__(self, url: str | None = None, *, migrate: bool = True, latency_window: int = 256) -> None:
        self.url = db.resolve_url(url)
        self.latency_window = latency_window
        self.engine: Engine = db.make_engine(self.url)
        if migrate:
            with db.translate_errors(self.url):
                db.migrate(self.engine)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- transactions -------------------------------------------------------------------------------------

    def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction; retry when a concurrent writer inserted the same row first."""
        with db.translate_errors(self.url):
            for attempt in range(_RETRIES):
                try:
                    with db.write(self.engine) as conn:
                        return fn(conn)
                except IntegrityError:
                    if attempt == _RETRIES - 1:
                        raise
            raise AssertionError("unreachable")

    def _read(self, fn: Callable[[Connection], T]) -> T:
        with db.translate_errors(self.url), db.read(self.engine) as conn:
            return fn(conn)

    # -- registration -------------------------------------------------------------------------------------

    def register_card(
        self,
        card: AgentCard,
        *,
        model: ModelInfo | None = None,
        cost: CostHints | None = None,
        transport: Transport = "a2a",
        skill_schemas: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] | None = None,
        agent_id: str | None = None,
        url: str | None = None,
        card_url: str | None = None,
    ) -> AgentRecord:
        """Register (or update in place) the agent described by ``card``; the same card twice is a no-op."""
        return self.register(
            Registration(
                card=card,
                model=model,
                cost=cost,
                transport=transport,
                skill_schemas=skill_schemas,
                agent_id=agent_id,
                url=url,
                card_url=card_url,
            )
        )

    def register(self, registration: Registration) -> AgentRecord:
        """Register one agent from a full Registration."""
        prepared = prepare(registration)
        pk = self._write(lambda conn: self._upsert(conn, prepared))
        return self._read(lambda conn: self._records(conn, [pk])[0])

    def register_many(self, items: Iterable[AgentCard | Registration], *, batch_size: int = 1000) -> int:
        """Register many agents in batched transactions (one per ``batch_size``); returns how many."""
        if batch_size < 1:
            raise InvalidQuery("batch_size must be at least 1")
        total, batch = 0, []
        for item in items:
            reg = item if isinstance(item, Registration) else Registration(card=item)
            batch.append(prepare(reg))
            if len(batch) >= batch_size:
                total += self._write(lambda conn, b=batch: self._insert_batch(conn, b))  # type: ignore[misc]
                batch = []
        if batch:
            total += self._write(lambda conn: self._insert_batch(conn, batch))
        return total

    def _insert_batch(self, conn: Connection, batch: Batch) -> int:
        unique = list({p.name: p for p in batch}.values())
        names = [p.name for p in unique]
        taken = {r.name for r in conn.execute(select(agents.c.name).where(agents.c.name.in_(names)))}
        fresh = [p for p in unique if p.name not in taken]
        for p in unique:
            if p.name in taken:
                self._upsert(conn, p)
        if not fresh:
            return len(unique)
        stamp = now()
        rows = [self._new_row(p, stamp) for p in fresh]
        result = conn.execute(insert(agents).returning(agents.c.pk, sort_by_parameter_order=True), rows).all()
        pks = [r.pk for r in result]
        skill_rows = [s | {"agent_pk": pk} for pk, p in zip(pks, fresh, strict=True) for s in p.skills]
        tag_rows = [{"agent_pk": pk, "tag": t} for pk, p in zip(pks, fresh, strict=True) for t in p.tags]
        version_rows = [
            {"agent_pk": pk, "version": p.version, "card": p.card, "recorded_at": stamp}
            for pk, p in zip(pks, fresh, strict=True)
        ]
        for table, payload in ((skills, skill_rows), (agent_tags, tag_rows), (versions, version_rows)):
            if payload:
                conn.execute(insert(table), payload)
        return len(unique)

    def _new_row(self, p: Prepared, stamp: Any) -> dict[str, Any]:
        return {
            "model_name": None,
            "model_parameters": None,
            "model_quantisation": None,
            "model_file_size": None,
            "cost_per_call": 0.0,
            "cost_per_1k_tokens": 0.0,
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
        }

    def _upsert(self, conn: Connection, p: Prepared) -> int:
        cols = (agents.c.pk, agents.c.id, agents.c.version, agents.c.card_hash, agents.c.status)
        by_name = conn.execute(select(*cols).where(agents.c.name == p.name)).first()
        if by_name is not None and p.agent_id is not None and by_name.id != p.agent_id:
            raise NameConflict(
                f"the name {p.name!r} is already registered under id {by_name.id!r}, not {p.agent_id!r}; "
                f"deregister {by_name.id!r} first, or register under that id or another name"
            )
        row = by_name
        if row is None and p.agent_id is not None:
            row = conn.execute(select(*cols).where(agents.c.id == p.agent_id)).first()
        stamp = now()
        if row is None:
            pk = conn.execute(insert(agents).returning(agents.c.pk), self._new_row(p, stamp)).scalar_one()
            self._replace_children(conn, pk, p)
            conn.execute(insert(versions), {"agent_pk": pk, "version": p.version, "card": p.card, "recorded_at": stamp})
            return int(pk)
        status = row.status if row.status == HealthStatus.DRAINING.value else HealthStatus.HEALTHY.value
        values: dict[str, Any] = {
            "status": status,
            "consecutive_failures": 0,
            "last_heartbeat": stamp,
        }
        changed = row.card_hash != p.agent["card_hash"]
        if changed:
            values |= p.agent | {"updated_at": stamp}
        elif p.has_model or p.has_cost:
            values |= {k: v for k, v in p.agent.items() if k.startswith(("model_", "cost_"))}
        conn.execute(update(agents).where(agents.c.pk == row.pk).values(**values))
        if changed:
            self._replace_children(conn, row.pk, p)
        if row.version != p.version:
            conn.execute(delete(versions).where(versions.c.agent_pk == row.pk, versions.c.version == p.version))
            conn.execute(
                insert(versions),
                {"agent_pk": row.pk, "version": p.version, "card": p.card, "recorded_at": stamp},
            )
        return int(row.pk)

    @staticmethod
    def _replace_children(conn: Connection, pk: int, p: Prepared) -> None:
        conn.execute(delete(skills).where(skills.c.agent_pk == pk))
        conn.execute(delete(agent_tags).where(agent_tags.c.agent_pk == pk))
        if p.skills:
            conn.execute(insert(skills), [s | {"agent_pk": pk} for s in p.skills])
        if p.tags:
            conn.execute(insert(agent_tags), [{"agent_pk": pk, "tag": t} for t in p.tags])

    def deregister(self, agent_id: str) -> None:
        """Remove an agent, its skills and its history."""

        def run(conn: Connection) -> None:
            pk = self._pk(conn, agent_id)
            for table in (skills, agent_tags, versions):
                conn.execute(delete(table).where(table.c.agent_pk == pk))
            conn.execute(delete(agents).where(agents.c.pk == pk))

        self._write(run)

    # -- liveness and observed behaviour ------------------------------------------------------------------

    def heartbeat(self, agent_id: str) -> None:
        """Note that the agent is alive now (an unhealthy agent becomes healthy; draining stays draining)."""
        self._update(agent_id, last_heartbeat=now(), consecutive_failures=0, recover=True)

    def set_status(self, agent_id: str, status: HealthStatus) -> None:
        """Set the health status by hand (e.g. DRAINING before taking an agent down)."""
        self._update(agent_id, status=HealthStatus(status).value, updated_at=now())

    def record_probe(self, agent_id: str, ok: bool, *, failures_to_unhealthy: int = 3) -> HealthStatus:
        """Account one health probe: success recovers, ``failures_to_unhealthy`` failures in a row mark it."""

        def run(conn: Connection) -> HealthStatus:
            pk = self._pk(conn, agent_id, lock=True)
            row = conn.execute(select(agents.c.status, agents.c.consecutive_failures).where(agents.c.pk == pk)).one()
            status = HealthStatus(row.status)
            if ok:
                failures, stamp = 0, now()
                if status is HealthStatus.UNHEALTHY:
                    status = HealthStatus.HEALTHY
                values: dict[str, Any] = {"last_heartbeat": stamp}
            else:
                failures = row.consecutive_failures + 1
                if failures >= failures_to_unhealthy and status is HealthStatus.HEALTHY:
                    status = HealthStatus.UNHEALTHY
                values = {}
            conn.execute(
                update(agents)
                .where(agents.c.pk == pk)
                .values(status=status.value, consecutive_failures=failures, **values)
            )
            return status

        return self._write(run)

    def record_call(self, agent_id: str, *, success: bool, latency_s: float, tokens: int = 0) -> None:
        """Add one observed call (outcome, latency, tokens) to the agent's statistics."""
        if latency_s < 0 or tokens < 0:
            raise InvalidQuery("latency_s and tokens must not be negative")

        def run(conn: Connection) -> None:
            pk = self._pk(conn, agent_id, lock=True)
            row = conn.execute(select(agents.c.latency_window).where(agents.c.pk == pk)).one()
            window = [*(row.latency_window or []), round(latency_s * 1000.0, 3)][-self.latency_window :]
            p50, p95 = percentiles(window, (50, 95))
            conn.execute(
                update(agents)
                .where(agents.c.pk == pk)
                .values(
                    calls=agents.c.calls + 1,
                    successes=agents.c.successes + (1 if success else 0),
                    tokens=agents.c.tokens + tokens,
                    latency_window=window,
                    latency_p50_ms=p50,
                    latency_p95_ms=p95,
                )
            )

        self._write(run)

    def _update(self, agent_id: str, *, recover: bool = False, **values: Any) -> None:
        def run(conn: Connection) -> None:
            pk = self._pk(conn, agent_id, lock=recover)
            if recover:
                current = conn.execute(select(agents.c.status).where(agents.c.pk == pk)).scalar_one()
                if current == HealthStatus.UNHEALTHY.value:
                    values["status"] = HealthStatus.HEALTHY.value
            conn.execute(update(agents).where(agents.c.pk == pk).values(**values))

        self._write(run)

    # -- reading ------------------------------------------------------------------------------------------

    def get(self, agent_id: str) -> AgentRecord:
        """The agent with this id (raises AgentNotFound)."""
        return self._read(lambda conn: self._records(conn, [self._pk(conn, agent_id)])[0])

    def find(self, id_or_name: str) -> AgentRecord:
        """The agent with this id, or else this name (raises AgentNotFound)."""
        return self._read(lambda conn: self._records(conn, [self._pk(conn, id_or_name, by_name=True)])[0])

    def list(self, limit: int = 100, offset: int = 0, *, status: Collection[HealthStatus] | None = None) -> Records:
        """Agents ordered by name, a page at a time."""
        _check_page(limit, offset)
        stmt = select(agents.c.pk).order_by(agents.c.name).limit(limit).offset(offset)
        if status is not None:
            stmt = stmt.where(agents.c.status.in_([HealthStatus(s).value for s in status]))
        return self._read(lambda conn: self._records(conn, list(conn.execute(stmt).scalars())))

    def count(self) -> int:
        """How many agents are registered."""
        return self._read(lambda conn: int(conn.execute(select(func.count()).select_from(agents)).scalar_one()))

    def history(self, agent_id: str) -> Versions:
        """The versions seen for an agent, oldest first."""

        def run(conn: Connection) -> Versions:
            pk = self._pk(conn, agent_id)
            rows = conn.execute(
                select(versions).where(versions.c.agent_pk == pk).order_by(versions.c.recorded_at, versions.c.pk)
            )
            return [AgentVersion(version=r.version, recorded_at=utc(r.recorded_at) or now(), card=r.card) for r in rows]

        return self._read(run)

    def search(
        self,
        skill: str | None = None,
        tags: Sequence[str] | None = None,
        text: str | None = None,
        *,
        status: Collection[HealthStatus] | None = DEFAULT_STATUS,
        max_cost: float | None = None,
        max_latency_ms: float | None = None,
        all_tags: bool = False,
        limit: int = 20,
        offset: int = 0,
    ) -> Records:
        """Agents matching a skill id, any (or ``all_tags``) of the tags, and the words of ``text``, best first.

        Ranking: text relevance / tag overlap, then healthy first, success rate, p50 latency, cost, name.
        ``max_cost`` bounds the declared per-call cost; agents without observed latency pass ``max_latency_ms``.
        """
        _check_page(limit, offset, maximum=1000)
        if skill is not None and not 0 < len(skill) <= 200:
            raise InvalidQuery("skill must be 1 to 200 characters")
        if tags is not None and len(tags) > 50:
            raise InvalidQuery("at most 50 tags per search")

        def run(conn: Connection) -> Records:
            pks = search_pks(
                conn,
                skill=skill,
                tags=tags,
                all_tags=all_tags,
                text_query=text,
                status=status,
                max_cost=max_cost,
                max_latency_ms=max_latency_ms,
                limit=limit,
                offset=offset,
            )
            return self._records(conn, pks)

        return self._read(run)

    @staticmethod
    def _pk(conn: Connection, agent_id: str, *, lock: bool = False, by_name: bool = False) -> int:
        stmt = select(agents.c.pk).where(agents.c.id == agent_id)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        pk = conn.execute(stmt).scalar_one_or_none()
        if pk is None and by_name:
            pk = conn.execute(select(agents.c.pk).where(agents.c.name == agent_id)).scalar_one_or_none()
        if pk is None:
            raise AgentNotFound(f"no agent {agent_id!r} in the registry; list agents with `scaleout registry list`")
        return int(pk)

    @staticmethod
    def _records(conn: Connection, pks: Sequence[int]) -> Records:
        if not pks:
            return []
        rows = {r.pk: r for r in conn.execute(select(*_RECORD_COLUMNS).where(agents.c.pk.in_(pks)))}
        by_agent: dict[int, Skills] = {pk: [] for pk in pks}
        for s in conn.execute(
            select(skills).where(skills.c.agent_pk.in_(pks)).order_by(skills.c.agent_pk, skills.c.position)
        ):
            by_agent[s.agent_pk].append(to_skill(s))
        return [to_record(rows[pk], by_agent[pk]) for pk in pks if pk in rows]


def _check_page(limit: int, offset: int, *, maximum: int = 10_000) -> None:
    if not 1 <= limit <= maximum:
        raise InvalidQuery(f"limit must be between 1 and {maximum}, got {limit}")
    if offset < 0:
        raise InvalidQuery(f"offset must not be negative, got {offset}")
