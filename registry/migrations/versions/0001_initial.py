"""Initial registry schema: agents, skills, tags, version history, full-text index.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FTS_COLUMNS = "name, description, skills_text"


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_agents",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(200), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("transport", sa.String(10), nullable=False),
        sa.Column("card_url", sa.String(2000)),
        sa.Column("interfaces", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("provider", sa.String(200)),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("card_hash", sa.String(64), nullable=False),
        sa.Column("skills_text", sa.Text, nullable=False),
        sa.Column("model_name", sa.String(200)),
        sa.Column("model_parameters", sa.BigInteger),
        sa.Column("model_quantisation", sa.String(50)),
        sa.Column("model_file_size", sa.BigInteger),
        sa.Column("cost_per_call", sa.Float, nullable=False),
        sa.Column("cost_per_1k_tokens", sa.Float, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("last_heartbeat", _ts()),
        sa.Column("registered_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("latency_p50_ms", sa.Float),
        sa.Column("latency_p95_ms", sa.Float),
        sa.Column("latency_window", sa.JSON, nullable=False),
    )
    op.create_index("ix_registry_agents_status", "registry_agents", ["status"])
    op.create_index("ix_registry_agents_cost", "registry_agents", ["cost_per_call"])
    op.create_index("ix_registry_agents_latency", "registry_agents", ["latency_p50_ms"])
    op.create_table(
        "registry_skills",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "agent_pk", sa.Integer, sa.ForeignKey("registry_agents.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("skill_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("examples", sa.JSON, nullable=False),
        sa.Column("input_schema", sa.JSON),
        sa.Column("output_schema", sa.JSON),
        sa.UniqueConstraint("agent_pk", "skill_id", name="uq_registry_skills_agent_skill"),
    )
    op.create_index("ix_registry_skills_skill_id", "registry_skills", ["skill_id", "agent_pk"])
    op.create_table(
        "registry_agent_tags",
        sa.Column(
            "agent_pk", sa.Integer, sa.ForeignKey("registry_agents.pk", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("tag", sa.String(200), primary_key=True),
    )
    op.create_index("ix_registry_agent_tags_tag", "registry_agent_tags", ["tag", "agent_pk"])
    op.create_table(
        "registry_agent_versions",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "agent_pk", sa.Integer, sa.ForeignKey("registry_agents.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
        sa.UniqueConstraint("agent_pk", "version", name="uq_registry_agent_versions"),
    )

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE registry_agents_fts USING fts5({FTS_COLUMNS}, content='registry_agents', "
            "content_rowid='pk', tokenize='porter unicode61 remove_diacritics 2')"
        )
        new = "new.pk, new.name, new.description, new.skills_text"
        old = "'delete', old.pk, old.name, old.description, old.skills_text"
        insert_new = f"INSERT INTO registry_agents_fts(rowid, {FTS_COLUMNS}) VALUES ({new});"
        delete_old = (
            f"INSERT INTO registry_agents_fts(registry_agents_fts, rowid, {FTS_COLUMNS}) VALUES ({old});"
        )
        op.execute(
            f"CREATE TRIGGER registry_agents_fts_ai AFTER INSERT ON registry_agents BEGIN {insert_new} END"
        )
        op.execute(
            f"CREATE TRIGGER registry_agents_fts_ad AFTER DELETE ON registry_agents BEGIN {delete_old} END"
        )
        op.execute(
            f"CREATE TRIGGER registry_agents_fts_au AFTER UPDATE OF {FTS_COLUMNS} ON registry_agents "
            f"BEGIN {delete_old} {insert_new} END"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE registry_agents ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(skills_text, '')), 'B') || "
            "setweight(to_tsvector('english', coalesce(description, '')), 'C')) STORED"
        )
        op.execute("CREATE INDEX ix_registry_agents_search ON registry_agents USING gin (search_vector)")
    else:
        raise NotImplementedError(f"the registry supports SQLite and PostgreSQL, not {dialect}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS registry_agents_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS registry_agents_fts")
    op.drop_table("registry_agent_versions")
    op.drop_table("registry_agent_tags")
    op.drop_table("registry_skills")
    op.drop_table("registry_agents")
