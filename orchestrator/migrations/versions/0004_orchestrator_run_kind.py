"""orchestrator: what a run is (orch_runs.kind: "graph" or "negotiation") and a run's own output (orch_runs.output)

Revision ID: orch_0004
Revises: orch_0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orch_0004"
down_revision = "orch_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant server default and a nullable column: added in place on SQLite and without a rewrite on PostgreSQL;
    # every existing run is a graph run.
    op.add_column("orch_runs", sa.Column("kind", sa.String(16), nullable=False, server_default="graph"))
    op.add_column("orch_runs", sa.Column("output", sa.JSON, nullable=True))
    op.create_index("ix_orch_runs_kind_created_at", "orch_runs", ["kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_orch_runs_kind_created_at", "orch_runs")
    with op.batch_alter_table("orch_runs") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("output")
        batch.drop_column("kind")
