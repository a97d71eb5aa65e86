"""Fresh real databases for tests: a migrated template per backend, copied for each test."""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from service.storage.migrations import upgrade

# The server CI starts; override to point the tests at another PostgreSQL.
PG_ADMIN_URL = os.environ.get("CALLTRAIL_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
# One template per test session, so that two sessions on one server never drop each other's.
PG_TEMPLATE = f"calltrail_test_template_{os.getpid()}"


def pg_admin_engine() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def pg_url(database: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


def pg_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def pg_create_template(admin: Engine) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_TEMPLATE}"'))
    upgrade(pg_url(PG_TEMPLATE))


def pg_create_database(admin: Engine, *, migrated: bool = True) -> str:
    name = f"calltrail_test_{uuid.uuid4().hex[:12]}"
    template = f'TEMPLATE "{PG_TEMPLATE}"' if migrated else "TEMPLATE template0"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" {template}'))
    return name


def pg_drop_database(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sqlite_create_template(directory: Path) -> Path:
    path = directory / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def sqlite_create_database(template: Path | None, directory: Path) -> str:
    path = directory / f"calltrail-{uuid.uuid4().hex[:8]}.db"
    if template is not None:
        shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@contextmanager
def table_locked(database_url: str, engine: Engine, table: str) -> Iterator[None]:
    """Another connection holds ``table`` against writers while readers go on: on PostgreSQL an EXCLUSIVE
    lock on that table; on SQLite, which locks whole databases, its write lock."""
    if engine.dialect.name == "sqlite":
        holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
    else:
        with engine.begin() as conn:
            conn.execute(text(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE'))
            yield
