"""Migrations registry 0005 and orch_0005 go down and up again without losing data: agents registered before
0005 come back unverified with no pinned key, and the ledger table is made afresh."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from orchestrator import tables as t
from orchestrator.runs import _MIGRATIONS as ORCH_MIGRATIONS
from orchestrator.runs import RunStore
from registry import Registry
from registry.db import MIGRATIONS as REGISTRY_MIGRATIONS
from tests.registry.conftest import make_card


def _alembic(url: str, folder: object, connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def test_registry_0005_down_and_up_keeps_agents_unverified(db_url: str) -> None:
    with Registry(db_url) as registry:
        registry.register_card(make_card("old-agent"))
        engine = registry.engine
        with engine.begin() as conn:
            command.downgrade(_alembic(db_url, REGISTRY_MIGRATIONS, conn), "0004")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("registry_agents")}
        assert "card_verified" not in columns and "registry_key_events" not in sa.inspect(engine).get_table_names()
    with Registry(db_url) as registry:  # upgrades to head again
        record = registry.find("old-agent")
        assert not record.trust.verified and record.trust.fingerprint is None and record.trust.key_changed_at is None
        assert registry.key_events(record.id) == []


def test_orchestrator_orch_0005_adds_and_drops_the_ledger(db_url: str) -> None:
    store = RunStore(db_url)
    try:
        assert "orch_ledger" in sa.inspect(store.engine).get_table_names()
        with store.engine.begin() as conn:
            command.downgrade(_alembic(db_url, ORCH_MIGRATIONS, conn), "orch_0004")
        assert "orch_ledger" not in sa.inspect(store.engine).get_table_names()
        store.migrate()
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.ledger)).scalar_one() == 0
            version = conn.execute(sa.text("SELECT version_num FROM orchestrator_alembic_version")).scalar()
        assert version == "orch_0005"
    finally:
        store.close()
