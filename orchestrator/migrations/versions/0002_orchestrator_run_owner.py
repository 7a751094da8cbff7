"""orchestrator: who owns a run (orch_runs.owner; NULL in rows from before access control = owner "local")

Revision ID: orch_0002
Revises: orch_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orch_0002"
down_revision = "orch_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column with no default: SQLite adds it in place (no table copy), PostgreSQL without a rewrite.
    op.add_column("orch_runs", sa.Column("owner", sa.String(200), nullable=True))
    op.create_index("ix_orch_runs_owner_created_at", "orch_runs", ["owner", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_orch_runs_owner_created_at", "orch_runs")
    with op.batch_alter_table("orch_runs") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("owner")
