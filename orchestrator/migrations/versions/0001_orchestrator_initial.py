"""orchestrator: runs, tasks, attempts, events

Revision ID: orch_0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "orch_0001"
down_revision = None
branch_labels = None
depends_on = None

_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orch_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.Column("finished_at", _ts, nullable=True),
        sa.Column("usage", sa.JSON, nullable=True),
    )
    op.create_index("ix_orch_runs_status", "orch_runs", ["status"])
    op.create_index("ix_orch_runs_created_at", "orch_runs", ["created_at"])
    op.create_table(
        "orch_tasks",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("orch_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(200), nullable=True),
        sa.Column("input", sa.JSON, nullable=True),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("routing", sa.JSON, nullable=True),
        sa.Column("usage", sa.JSON, nullable=True),
        sa.Column("started_at", _ts, nullable=True),
        sa.Column("finished_at", _ts, nullable=True),
    )
    op.create_table(
        "orch_attempts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("orch_runs.id", ondelete="CASCADE")),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("agent_id", sa.String(200), nullable=False),
        sa.Column("agent_url", sa.String(2000), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("skill", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.JSON, nullable=True),
        sa.Column("response", sa.JSON, nullable=True),
        sa.Column("remote_task_id", sa.String(200), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("wall_seconds", sa.Float, nullable=False, server_default="0"),
        sa.Column("cpu_seconds", sa.Float, nullable=False, server_default="0"),
        sa.Column("energy_joules", sa.Float, nullable=False, server_default="0"),
        sa.Column("started_at", _ts, nullable=False),
        sa.Column("finished_at", _ts, nullable=True),
    )
    op.create_index("ix_orch_attempts_run_id", "orch_attempts", ["run_id"])
    op.create_table(
        "orch_events",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("orch_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("at", _ts, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orch_events")
    op.drop_index("ix_orch_attempts_run_id", "orch_attempts")
    op.drop_table("orch_attempts")
    op.drop_table("orch_tasks")
    op.drop_index("ix_orch_runs_created_at", "orch_runs")
    op.drop_index("ix_orch_runs_status", "orch_runs")
    op.drop_table("orch_runs")
