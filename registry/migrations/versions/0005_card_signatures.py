"""Signed Agent Cards: ``card_verified``, ``card_kid``, ``key_fingerprint`` and ``key_changed_at`` on
``registry_agents``, and ``registry_key_events`` (every change of an agent's card-signing key).

Existing agents start unverified with no pinned key: the next fetch of their card verifies it and pins the key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("registry_agents", sa.Column("card_verified", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("registry_agents", sa.Column("card_kid", sa.String(100)))
    op.add_column("registry_agents", sa.Column("key_fingerprint", sa.String(64)))
    op.add_column("registry_agents", sa.Column("key_changed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "registry_key_events",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent_pk", sa.Integer, sa.ForeignKey("registry_agents.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("old_fingerprint", sa.String(64)),
        sa.Column("new_fingerprint", sa.String(64)),
        sa.Column("kid", sa.String(100)),
        sa.Column("detail", sa.String(500), nullable=False),
    )
    op.create_index("ix_registry_key_events_agent", "registry_key_events", ["agent_pk", "pk"])


def downgrade() -> None:
    op.drop_index("ix_registry_key_events_agent", table_name="registry_key_events")
    op.drop_table("registry_key_events")
    for column in ("key_changed_at", "key_fingerprint", "card_kid", "card_verified"):
        op.drop_column("registry_agents", column)
