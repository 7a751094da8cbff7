"""orchestrator: run leases (which replica owns an active run, until when) and cross-replica cancel requests

Revision ID: orch_0003
Revises: orch_0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orch_0003"
down_revision = "orch_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns (and a constant default): added in place on SQLite and without a rewrite on PostgreSQL.
    op.add_column("orch_runs", sa.Column("lease_owner", sa.String(200), nullable=True))
    op.add_column("orch_runs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orch_runs", sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("ix_orch_runs_status_lease", "orch_runs", ["status", "lease_expires_at"])
    op.create_index("ix_orch_runs_lease_owner", "orch_runs", ["lease_owner"])


def downgrade() -> None:
    op.drop_index("ix_orch_runs_lease_owner", "orch_runs")
    op.drop_index("ix_orch_runs_status_lease", "orch_runs")
    with op.batch_alter_table("orch_runs") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
