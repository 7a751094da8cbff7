"""The registry: register, deregister, heartbeat, look up, search and report on agents (synchronous API).

Every operation is one database transaction, so nothing is ever half-written. Async callers wrap calls in
``anyio.to_thread.run_sync``.

Ownership: every agent records who registered it (``AgentRecord.owner``). The writing methods take ``owner``, the
acting principal's owner (``Principal.owner``); ``None`` means a trusted local caller and skips the check. Only the
owner (or a caller passing ``owner=None``, as the HTTP API does for admins) may re-register, drain, heartbeat or
remove an agent: others get NameConflict (registration) or NotOwner. Reads are open to all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from protocol.a2a import AgentCard
from protocol.validation import describe_validation_error
from registry import db
from registry.calls import apply_calls, validate_calls
from registry.convert import now, prepare, to_record, to_skill, utc
from registry.errors import AgentNotFound, InvalidQuery, NotOwner
from registry.models import (
    AgentRecord,
    AgentVersion,
    CallReport,
    CardTrust,
    CostHints,
    HealthStatus,
    KeyEvent,
    ModelInfo,
    Registration,
    SkillRecord,
    SkillStats,
    Transport,
)
from registry.ranking import ranked_row, write_ranked
from registry.schemas import MAX_OFFSET, SearchParams
from registry.search import search_rows
from registry.tables import agent_tags, agents, key_events, skill_stats, skills, versions
from registry.writes import insert_batch, owned_by, upsert

__all__ = ["Registry", "DEFAULT_STATUS", "record_trust"]

Records = list[AgentRecord]
Versions = list[AgentVersion]
Skills = list[SkillRecord]

T = TypeVar("T")
_log = logging.getLogger(__name__)
DEFAULT_STATUS: frozenset[HealthStatus] = frozenset({HealthStatus.HEALTHY})
_RETRIES = 5
_ANALYZE_AFTER = 1000  # agents registered by one register_many on PostgreSQL
# What an AgentRecord needs; the stored card, its hash, the search text and the latency window stay behind.
_HIDDEN = {"card", "card_hash", "skills_text", "latency_window", "rank_key"}
_RECORD_COLUMNS = [c for c in agents.c if c.name not in _HIDDEN]


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
        owner: str | None = None,
        admin: bool = False,
    ) -> AgentRecord:
        """Register (or update in place) the agent described by ``card``; the same card twice is a no-op.

        ``owner`` and ``admin`` as for ``register``.
        """
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
            ),
            owner=owner,
            admin=admin,
        )

    def register(
        self,
        registration: Registration,
        *,
        owner: str | None = None,
        admin: bool = False,
        trust: CardTrust | None = None,
    ) -> AgentRecord:
        """Register one agent from a full Registration.

        A new agent is owned by ``owner`` (None: "local"). An agent already registered under the same name (or
        the explicit id) is updated only when it belongs to ``owner``, ``admin`` is set or ``owner`` is None;
        otherwise NameConflict, and the stored agent is left as it was. Its owner never changes.
        ``trust``: the result of verifying the card's signature (``registry.discovery`` does it on every fetch),
        recorded in the same transaction; a key that differs from the pinned one is flagged (see ``record_trust``).
        Without it the stored card counts as unverified.
        """
        prepared = prepare(registration)

        def run(conn: Connection) -> int:
            pk = upsert(conn, prepared, owner, admin)
            record_trust(conn, pk, trust)
            return pk

        pk = self._write(run)
        record = self._read(lambda conn: self._records(conn, [pk])[0])
        if trust is not None and trust.error:
            record.trust.error = trust.error
        return record

    def key_events(self, agent_id: str) -> list[KeyEvent]:
        """Every change of the agent's card-signing key, oldest first."""

        def run(conn: Connection) -> list[KeyEvent]:
            pk = self._pk(conn, agent_id)
            rows = conn.execute(select(key_events).where(key_events.c.agent_pk == pk).order_by(key_events.c.pk))
            return [
                KeyEvent(
                    at=utc(r.at) or now(),
                    kind=r.kind,
                    old_fingerprint=r.old_fingerprint,
                    new_fingerprint=r.new_fingerprint,
                    kid=r.kid,
                    detail=r.detail,
                )
                for r in rows
            ]

        return self._read(run)

    def accept_key(self, agent_id: str, *, owner: str | None = None) -> AgentRecord:
        """Accept an agent's new card-signing key after a rotation (clears the flag; recorded as an event)."""

        def run(conn: Connection) -> int:
            pk = self._pk(conn, agent_id)
            row = conn.execute(select(agents.c.owner, agents.c.key_fingerprint).where(agents.c.pk == pk)).one()
            _check_owner(agent_id, row.owner, owner, "accept the key of")
            conn.execute(update(agents).where(agents.c.pk == pk).values(key_changed_at=None))
            _key_event(conn, pk, "accepted", row.key_fingerprint, row.key_fingerprint, None, "key accepted")
            return pk

        pk = self._write(run)
        return self._read(lambda conn: self._records(conn, [pk])[0])

    def register_many(
        self,
        items: Iterable[AgentCard | Registration],
        *,
        batch_size: int = 1000,
        owner: str | None = None,
        admin: bool = False,
    ) -> int:
        """Register many agents in batched transactions (one per ``batch_size``); returns how many.

        ``owner`` and ``admin`` as for ``register``: one agent owned by someone else fails its whole batch.
        """
        if batch_size < 1:
            raise InvalidQuery("batch_size must be at least 1")
        total, batch = 0, []
        for item in items:
            reg = item if isinstance(item, Registration) else Registration(card=item)
            batch.append(prepare(reg))
            if len(batch) >= batch_size:
                total += self._write(lambda conn, b=batch: insert_batch(conn, b, owner, admin))  # type: ignore[misc]
                batch = []
        if batch:
            total += self._write(lambda conn: insert_batch(conn, batch, owner, admin))
        if total >= _ANALYZE_AFTER and self.engine.dialect.name == "postgresql":
            # Planner statistics and visibility map now, so the first searches after a bulk load get good plans.
            with db.translate_errors(self.url), self.engine.connect() as conn:
                tables = ", ".join(t.name for t in (agents, skills, agent_tags))
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"VACUUM (ANALYZE) {tables}")
        return total

    def deregister(self, agent_id: str, *, owner: str | None = None) -> None:
        """Remove an agent, its skills and its history (when it belongs to ``owner``; None: any)."""

        def run(conn: Connection) -> None:
            pk = self._pk(conn, agent_id)
            if owner is not None:
                row_owner = conn.execute(select(agents.c.owner).where(agents.c.pk == pk)).scalar_one()
                _check_owner(agent_id, row_owner, owner, "remove")
            for table in (skills, agent_tags, versions, skill_stats):
                conn.execute(delete(table).where(table.c.agent_pk == pk))
            conn.execute(delete(agents).where(agents.c.pk == pk))

        self._write(run)

    # -- liveness and observed behaviour ------------------------------------------------------------------

    def heartbeat(self, agent_id: str, *, owner: str | None = None) -> None:
        """Note that the agent is alive now (an unhealthy agent becomes healthy; draining stays draining).

        Only for the agent's ``owner`` (None: any caller)."""

        def run(conn: Connection) -> None:
            pk = self._pk(conn, agent_id)
            row = ranked_row(conn, pk, agents.c.owner)
            _check_owner(agent_id, row.pop("owner"), owner, "heartbeat")
            values: dict[str, Any] = {"last_heartbeat": now(), "consecutive_failures": 0}
            if row["status"] == HealthStatus.UNHEALTHY.value:
                values["status"] = HealthStatus.HEALTHY.value
            write_ranked(conn, pk, row, values)

        self._write(run)

    def set_status(self, agent_id: str, status: HealthStatus, *, owner: str | None = None) -> None:
        """Set the health status by hand (e.g. DRAINING before taking an agent down); only for the agent's
        ``owner`` (None: any caller)."""
        value = HealthStatus(status).value

        def run(conn: Connection) -> None:
            pk = self._pk(conn, agent_id)
            row = ranked_row(conn, pk, agents.c.owner)
            _check_owner(agent_id, row.pop("owner"), owner, "change the status of")
            write_ranked(conn, pk, row, {"status": value, "updated_at": now()})

        self._write(run)

    def record_probe(self, agent_id: str, ok: bool, *, failures_to_unhealthy: int = 3) -> HealthStatus:
        """Account one health probe: success recovers, ``failures_to_unhealthy`` failures in a row mark it."""

        def run(conn: Connection) -> HealthStatus:
            pk = self._pk(conn, agent_id)
            row = ranked_row(conn, pk, agents.c.consecutive_failures)
            status = HealthStatus(row["status"])
            values: dict[str, Any] = {}
            if ok:
                failures = 0
                if status is HealthStatus.UNHEALTHY:
                    status = HealthStatus.HEALTHY
                values["last_heartbeat"] = now()
            else:
                failures = row["consecutive_failures"] + 1
                if failures >= failures_to_unhealthy and status is HealthStatus.HEALTHY:
                    status = HealthStatus.UNHEALTHY
            write_ranked(conn, pk, row, values | {"status": status.value, "consecutive_failures": failures})
            return status

        return self._write(run)

    def record_call(
        self, agent_id: str, *, success: bool, latency_s: float, tokens: int = 0, skill: str | None = None
    ) -> None:
        """Add one observed call (outcome, latency, tokens) to the agent's statistics, and to those of ``skill``
        when the agent's card declares it."""
        if latency_s < 0 or tokens < 0:
            raise InvalidQuery("latency_s and tokens must not be negative")
        call = {"agent_id": agent_id, "success": success, "latency_s": latency_s, "tokens": tokens, "skill": skill}
        reports = validate_calls([call])
        if self._write(lambda conn: apply_calls(conn, reports, self.latency_window)):
            raise AgentNotFound(_not_found(agent_id))

    def record_calls(self, calls: Sequence[CallReport | Mapping[str, Any]]) -> int:
        """Add many observed calls in one transaction; returns how many were recorded.

        Each call is a CallReport or a mapping with its fields (``agent_id``, ``success``, ``latency_s``,
        ``tokens``, optional ``skill``), at most 10,000; they are applied in order. Calls of agents no longer
        registered are skipped; a call naming a skill the agent's card declares also counts for that skill.
        """
        reports = validate_calls(calls)
        if not reports:
            return 0
        missing = self._write(lambda conn: apply_calls(conn, reports, self.latency_window))
        return sum(1 for r in reports if r.agent_id not in missing)

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
        try:
            SearchParams(
                skill=skill,
                tags=None if tags is None else list(tags),
                text=None,  # free text is split into words, whatever it holds (registry.search)
                status=None,
                max_cost=max_cost,
                max_latency_ms=max_latency_ms,
                all_tags=all_tags,
                limit=limit,
                offset=offset,
            )
        except ValidationError as exc:
            raise InvalidQuery(f"invalid search: {describe_validation_error(exc)}") from None

        def run(conn: Connection) -> Records:
            rows = search_rows(
                conn,
                _RECORD_COLUMNS,
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
            return self._to_records(conn, rows)

        return self._read(run)

    @staticmethod
    def _pk(conn: Connection, agent_id: str, *, by_name: bool = False) -> int:
        if not 0 < len(agent_id) <= 200 or "\x00" in agent_id:
            raise AgentNotFound(_not_found(agent_id[:200]))  # no stored id or name looks like this
        pk = conn.execute(select(agents.c.pk).where(agents.c.id == agent_id)).scalar_one_or_none()
        if pk is None and by_name:
            pk = conn.execute(select(agents.c.pk).where(agents.c.name == agent_id)).scalar_one_or_none()
        if pk is None:
            raise AgentNotFound(_not_found(agent_id))
        return int(pk)

    @staticmethod
    def _records(conn: Connection, pks: Sequence[int]) -> Records:
        if not pks:
            return []
        rows = {r.pk: r for r in conn.execute(select(*_RECORD_COLUMNS).where(agents.c.pk.in_(pks)))}
        return Registry._to_records(conn, [rows[pk] for pk in pks if pk in rows])

    @staticmethod
    def _to_records(conn: Connection, rows: Sequence[Row[Any]]) -> Records:
        if not rows:
            return []
        pks = [r.pk for r in rows]
        by_agent: dict[int, Skills] = {pk: [] for pk in pks}
        for s in conn.execute(
            select(skills).where(skills.c.agent_pk.in_(pks)).order_by(skills.c.agent_pk, skills.c.position)
        ):
            by_agent[s.agent_pk].append(to_skill(s))
        records = [to_record(r, by_agent[r.pk]) for r in rows]
        per_skill: dict[int, dict[str, SkillStats]] = {}
        stat_columns = [c for c in skill_stats.c if c.name != "latency_window"]
        for st in conn.execute(select(*stat_columns).where(skill_stats.c.agent_pk.in_(pks))):
            per_skill.setdefault(st.agent_pk, {})[st.skill_id] = SkillStats(
                calls=st.calls,
                successes=st.successes,
                latency_p50_ms=st.latency_p50_ms,
                latency_p95_ms=st.latency_p95_ms,
                tokens=st.tokens,
            )
        for pk, row, record in zip(pks, rows, records, strict=True):
            record.stats.skills = per_skill.get(pk, {})
            record.trust = CardTrust(
                verified=bool(row.card_verified),
                kid=row.card_kid,
                fingerprint=row.key_fingerprint,
                key_changed_at=utc(row.key_changed_at),
            )
        return records


def record_trust(conn: Connection, pk: int, trust: CardTrust | None) -> None:
    """Store a card's signature check on agent ``pk``: the first key is pinned; a different key (rotation) or a
    signed agent whose card no longer verifies sets ``key_changed_at`` and records a key event. ``None`` (the
    card was not fetched and checked) marks it unverified without an event."""
    row = conn.execute(
        select(agents.c.name, agents.c.card_verified, agents.c.key_fingerprint).where(agents.c.pk == pk)
    ).one()
    stamp = now()
    if trust is None:
        if row.card_verified:
            conn.execute(update(agents).where(agents.c.pk == pk).values(card_verified=False))
        return
    values: dict[str, Any] = {"card_verified": trust.verified}
    if trust.verified:
        values |= {"card_kid": trust.kid, "key_fingerprint": trust.fingerprint}
        if row.key_fingerprint is None:
            _key_event(conn, pk, "pinned", None, trust.fingerprint, trust.kid, "first signing key seen")
        elif row.key_fingerprint != trust.fingerprint:
            values["key_changed_at"] = stamp
            detail = f"the card is now signed by key {trust.kid}; accept it with Registry.accept_key if expected"
            _key_event(conn, pk, "rotated", row.key_fingerprint, trust.fingerprint, trust.kid, detail)
            _log.warning("agent %s: card-signing key changed (%s)", row.name, detail)
    elif row.card_verified:
        values["key_changed_at"] = stamp
        detail = (trust.error or "the card is no longer signed")[:500]
        _key_event(conn, pk, "unsigned", row.key_fingerprint, None, None, detail)
        _log.warning("agent %s: its card no longer verifies: %s", row.name, detail)
    conn.execute(update(agents).where(agents.c.pk == pk).values(**values))


def _key_event(
    conn: Connection, pk: int, kind: str, old: str | None, new: str | None, kid: str | None, detail: str
) -> None:
    row = {"agent_pk": pk, "at": now(), "kind": kind, "old_fingerprint": old, "new_fingerprint": new}
    conn.execute(insert(key_events), row | {"kid": kid, "detail": detail[:500]})


def _check_page(limit: int, offset: int, *, maximum: int = 10_000) -> None:
    if not 1 <= limit <= maximum:
        raise InvalidQuery(f"limit must be between 1 and {maximum}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidQuery(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")


def _check_owner(agent_id: str, row_owner: str | None, owner: str | None, action: str) -> None:
    if not owned_by(row_owner, owner):
        raise NotOwner(
            f"the agent {agent_id!r} belongs to another principal; only its owner or an admin may {action} it"
        )


def _not_found(agent_id: str) -> str:
    return f"no agent {agent_id!r} in the registry; list agents with `scaleout registry list`"
