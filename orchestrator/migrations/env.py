"""Alembic environment of the orchestrator: its own version table, only its own (orch_*) tables."""

from orchestrator.tables import metadata
from registry.alembic_env import run_migrations

run_migrations(metadata, version_table="orchestrator_alembic_version", table_prefix="orch_")
