"""Per-skill statistics: ``registry_skill_stats`` (calls, successes, tokens, latency window and p50/p95 per agent
and skill id).

Existing agents keep their totals; no skill has statistics until calls naming it are recorded (the router falls
back to the agent's totals meanwhile).

Revision ID: 0004
Revises: 0003
Create Date: 2025-04-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_skill_stats",
        sa.Column("agent_pk", sa.Integer, sa.ForeignKey("registry_agents.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("skill_id", sa.String(200), primary_key=True),
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("successes", sa.BigInteger, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("latency_p50_ms", sa.Float),
        sa.Column("latency_p95_ms", sa.Float),
        sa.Column("latency_window", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_skill_stats")
