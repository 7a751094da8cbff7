"""The body of an Alembic ``env.py`` for a component that shares the database with others.

Each component (the registry, the orchestrator) keeps its own version table and touches only its own tables.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import MetaData, create_engine

__all__ = ["run_migrations"]


def run_migrations(metadata: MetaData, *, version_table: str, table_prefix: str) -> None:
    """Run the migrations Alembic asked for: offline, on a given connection, or on ``sqlalchemy.url``."""

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return type_ != "table" or bool(name and name.startswith(table_prefix))

    def run(connection: Any) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()

    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            version_table=version_table,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    elif (conn := config.attributes.get("connection")) is not None:
        run(conn)
    else:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///scaleout.db")
        with engine.begin() as connection:
            run(connection)
