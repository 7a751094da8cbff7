"""The orchestrator's tables (prefix ``orch_``), in the registry's database, migrated by orchestrator/migrations."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata", "runs", "tasks", "attempts", "events", "ledger"]

metadata = sa.MetaData()
_ts = sa.DateTime(timezone=True)

runs = sa.Table(
    "orch_runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", _ts, nullable=False, index=True),
    sa.Column("updated_at", _ts, nullable=False),
    sa.Column("finished_at", _ts, nullable=True),
    sa.Column("usage", sa.JSON, nullable=True),
    # the principal's owner (tenant, else subject) that submitted the run; NULL (older rows) counts as "local"
    sa.Column("owner", sa.String(200), nullable=True),
    # the replica running it (NULL: queued for any replica) and until when, renewed by its heartbeat
    sa.Column("lease_owner", sa.String(200), nullable=True, index=True),
    sa.Column("lease_expires_at", _ts, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    # what the run is: "graph" (a task graph) or "negotiation" (a negotiation protocol, its steps as events)
    sa.Column("kind", sa.String(16), nullable=False, server_default="graph"),
    sa.Column("output", sa.JSON, nullable=True),  # a negotiation's outcome; NULL for graph runs (outputs are per task)
    sa.Index("ix_orch_runs_owner_created_at", "owner", "created_at"),
    sa.Index("ix_orch_runs_kind_created_at", "kind", "created_at"),
    sa.Index("ix_orch_runs_status_lease", "status", "lease_expires_at"),
)

tasks = sa.Table(
    "orch_tasks",
    metadata,
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

attempts = sa.Table(
    "orch_attempts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("orch_runs.id", ondelete="CASCADE"), index=True),
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

events = sa.Table(
    "orch_events",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("orch_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("task_id", sa.String(64), nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("at", _ts, nullable=False),
)

# The contract ledger (migration orch_0005): one row per signed contract, hash-chained. ``body`` is the entry's
# JCS text (sequence, previous hash, contract terms, both parties' signatures, the orchestrator's counter-signature,
# run id, time) and ``entry_hash`` its SHA-256; the other columns repeat fields of the body for lookups.
ledger = sa.Table(
    "orch_ledger",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("contract_id", sa.String(200), nullable=False, index=True),
    sa.Column("run_id", sa.String(64), nullable=True, index=True),
    sa.Column("recorded_at", _ts, nullable=False),
)
