"""orchestrator: the contract ledger (orch_ledger): signed contracts, hash-chained, counter-signed

Revision ID: orch_0005
Revises: orch_0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orch_0005"
down_revision = "orch_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orch_ledger",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("contract_id", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_orch_ledger_contract_id", "orch_ledger", ["contract_id"])
    op.create_index("ix_orch_ledger_run_id", "orch_ledger", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_orch_ledger_run_id", "orch_ledger")
    op.drop_index("ix_orch_ledger_contract_id", "orch_ledger")
    op.drop_table("orch_ledger")
