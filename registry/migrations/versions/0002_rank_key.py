"""Stored ranking key: ``registry_agents.rank_key`` and the index (status, rank_key, name) that search walks.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from registry.ranking import rank_key

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_RANKED = "pk, status, calls, successes, latency_p50_ms, cost_per_call"


def upgrade() -> None:
    op.add_column("registry_agents", sa.Column("rank_key", sa.BigInteger, nullable=False, server_default="0"))
    conn = op.get_bind()
    # The key must equal what the running code computes, so the backfill uses the same function.
    rows = conn.execute(sa.text(f"SELECT {_RANKED} FROM registry_agents")).all()
    if rows:
        conn.execute(
            sa.text("UPDATE registry_agents SET rank_key = :key WHERE pk = :pk"),
            [
                {"pk": r.pk, "key": rank_key(r.status, r.calls, r.successes, r.latency_p50_ms, r.cost_per_call)}
                for r in rows
            ],
        )
    op.drop_index("ix_registry_agents_status", table_name="registry_agents")
    op.create_index("ix_registry_agents_rank", "registry_agents", ["status", "rank_key", "name"])


def downgrade() -> None:
    op.drop_index("ix_registry_agents_rank", table_name="registry_agents")
    op.create_index("ix_registry_agents_status", "registry_agents", ["status"])
    op.execute("ALTER TABLE registry_agents DROP COLUMN rank_key")
