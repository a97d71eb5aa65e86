"""Alembic, driven from code: the schema's head, the database's revision, upgrade and downgrade."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from service.storage.engine import create_private_sqlite_file, normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


class SchemaOutdated(RuntimeError):
    """The database is not at the revision this code expects."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation would choke on a % in a password.
    config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database_url: str, revision: str = "head") -> None:
    create_private_sqlite_file(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def check_current(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutdated(
            f"the database schema is at revision {current or 'none (empty database)'}, "
            f"this CallTrail needs {head}: run `calltrail migrate` first"
        )
