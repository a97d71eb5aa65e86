"""Alembic environment: one revision chain for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from service.config import Settings
from service.storage.engine import normalize_url
from service.storage.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or normalize_url(Settings.from_env().database_url)


def run_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        # Batch mode lets SQLite, which cannot ALTER most things, rebuild tables instead.
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
