"""Ownership: ``registry_agents.owner``, the principal's owner (tenant, else subject) that registered the agent.

Existing rows keep NULL, which the code reads as "local" (the trusted local caller that registered them).

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("registry_agents", sa.Column("owner", sa.String(200), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE registry_agents DROP COLUMN owner")
