"""Alembic environment of the registry: its own version table, only its own (registry_*) tables."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from registry.tables import metadata

VERSION_TABLE = "registry_alembic_version"


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # The orchestrator keeps its own tables in the same database; never touch them.
    return type_ != "table" or bool(name and name.startswith("registry_"))


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


config = context.config
if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (conn := config.attributes.get("connection")) is not None:
    _run(conn)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///scaleout.db")
    with engine.begin() as connection:
        _run(connection)
