"""Alembic owns the schema: one chain that goes up and down on both databases and matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service.storage.engine import normalize_url
from service.storage.migrations import (
    SchemaOutdated,
    check_current,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from service.storage.schema import metadata

TABLES = {"sites", "site_origins", "api_keys", "events"}


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    engine = create_engine(normalize_url(empty_db_url))
    upgrade(empty_db_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert current_revision(engine) == head_revision()

    downgrade(empty_db_url, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    assert current_revision(engine) is None

    upgrade(empty_db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_models_match_migrations(db_url: str) -> None:
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []


def test_check_current_names_the_command(empty_db_url: str) -> None:
    engine = create_engine(normalize_url(empty_db_url))
    with pytest.raises(SchemaOutdated, match="calltrail migrate"):
        check_current(engine)
    upgrade(empty_db_url)
    check_current(engine)
    engine.dispose()
