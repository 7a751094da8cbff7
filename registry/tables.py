"""SQLAlchemy Core tables of the registry (the Alembic migrations create exactly these, plus the text index)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

__all__ = ["metadata", "agents", "skills", "skill_stats", "agent_tags", "versions", "key_events", "FTS_TABLE"]

metadata = MetaData()

# SQLite FTS5 table (external content over registry_agents); PostgreSQL uses a generated tsvector column.
FTS_TABLE = "registry_agents_fts"

agents = Table(
    "registry_agents",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(200), nullable=False, unique=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("version", String(100), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("transport", String(10), nullable=False),
    Column("card_url", String(2000)),
    Column("interfaces", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("provider", String(200)),
    Column("card", JSON, nullable=False),
    Column("card_hash", String(64), nullable=False),
    Column("skills_text", Text, nullable=False, default=""),
    Column("model_name", String(200)),
    Column("model_parameters", BigInteger),
    Column("model_quantisation", String(50)),
    Column("model_file_size", BigInteger),
    Column("cost_per_call", Float, nullable=False, default=0.0),
    Column("cost_per_1k_tokens", Float, nullable=False, default=0.0),
    Column("status", String(20), nullable=False),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_heartbeat", DateTime(timezone=True)),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("calls", Integer, nullable=False, default=0),
    Column("successes", Integer, nullable=False, default=0),
    Column("tokens", BigInteger, nullable=False, default=0),
    Column("latency_p50_ms", Float),
    Column("latency_p95_ms", Float),
    Column("latency_window", JSON, nullable=False),
    # registry.ranking.rank_key of the row; every write of status, statistics or cost rewrites it.
    Column("rank_key", BigInteger, nullable=False, server_default=text("0")),
    # principal.owner (tenant, else subject) of whoever registered it; NULL (rows older than 0003) means "local".
    Column("owner", String(200)),
    # The card's signature (migration 0005): verified on every fetch; the key's id and RFC 7638 fingerprint; when
    # the fingerprint last changed from the one pinned before (cleared by Registry.accept_key).
    Column("card_verified", Boolean, nullable=False, server_default=false()),
    Column("card_kid", String(100)),
    Column("key_fingerprint", String(64)),
    Column("key_changed_at", DateTime(timezone=True)),
    Index("ix_registry_agents_rank", "status", "rank_key", "name"),
    Index("ix_registry_agents_cost", "cost_per_call"),
    Index("ix_registry_agents_latency", "latency_p50_ms"),
)

skills = Table(
    "registry_skills",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("agent_pk", Integer, ForeignKey("registry_agents.pk", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("skill_id", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("examples", JSON, nullable=False),
    Column("input_schema", JSON),
    Column("output_schema", JSON),
    UniqueConstraint("agent_pk", "skill_id", name="uq_registry_skills_agent_skill"),
    Index("ix_registry_skills_skill_id", "skill_id", "agent_pk"),
)

# Observed calls per (agent, skill id). Keyed by the skill id, not registry_skills.pk: a card update replaces the
# skill rows, and the statistics of a skill that stays must survive it.
skill_stats = Table(
    "registry_skill_stats",
    metadata,
    Column("agent_pk", Integer, ForeignKey("registry_agents.pk", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", String(200), primary_key=True),
    Column("calls", BigInteger, nullable=False, default=0),
    Column("successes", BigInteger, nullable=False, default=0),
    Column("tokens", BigInteger, nullable=False, default=0),
    Column("latency_p50_ms", Float),
    Column("latency_p95_ms", Float),
    Column("latency_window", JSON, nullable=False),
)

agent_tags = Table(
    "registry_agent_tags",
    metadata,
    Column("agent_pk", Integer, ForeignKey("registry_agents.pk", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(200), primary_key=True),
    Index("ix_registry_agent_tags_tag", "tag", "agent_pk"),
)

versions = Table(
    "registry_agent_versions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("agent_pk", Integer, ForeignKey("registry_agents.pk", ondelete="CASCADE"), nullable=False),
    Column("version", String(100), nullable=False),
    Column("card", JSON, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agent_pk", "version", name="uq_registry_agent_versions"),
)

# Every change of an agent's card-signing key (first key, rotation, signature lost), oldest first (migration 0005).
key_events = Table(
    "registry_key_events",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("agent_pk", Integer, ForeignKey("registry_agents.pk", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("old_fingerprint", String(64)),
    Column("new_fingerprint", String(64)),
    Column("kid", String(100)),
    Column("detail", String(500), nullable=False, default=""),
    Index("ix_registry_key_events_agent", "agent_pk", "pk"),
)
