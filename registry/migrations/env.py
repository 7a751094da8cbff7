"""Alembic environment of the registry: its own version table, only its own (registry_*) tables."""

from registry.alembic_env import run_migrations
from registry.tables import metadata

run_migrations(metadata, version_table="registry_alembic_version", table_prefix="registry_")
