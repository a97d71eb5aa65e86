"""Engine setup for SQLite and PostgreSQL from one URL."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from service.config import Settings

# Chosen by measurement (bench/drivers.py, docs/design.md): psycopg 3 for PostgreSQL, the stdlib for SQLite.
POSTGRES_DRIVER = "psycopg"

Role = Literal["write", "read"]


def normalize_url(url: str) -> str:
    """Map a bare ``postgresql://`` (or ``postgres://``) URL onto the driver CallTrail is built for."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=f"postgresql+{POSTGRES_DRIVER}")
    elif parsed.drivername not in (f"postgresql+{POSTGRES_DRIVER}", "sqlite", "sqlite+pysqlite"):
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path or postgresql://..."
        )
    return parsed.render_as_string(hide_password=False)


def is_sqlite_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(settings: Settings, role: Role = "read", *, pool_size: int = 5) -> Engine:
    """An engine for one role.

    On SQLite the writer opens its transactions with BEGIN IMMEDIATE, so two processes never both hold
    a read lock and then deadlock upgrading it; readers keep SQLite's deferred BEGIN and never block writers.
    """
    url = normalize_url(settings.database_url)
    if is_sqlite_url(url):
        return _sqlite_engine(url, settings, role)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if role == "write":
        kwargs.update(pool_size=1, max_overflow=1)
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, settings: Settings, role: Role) -> Engine:
    # The pool hands a connection to one thread at a time, so pysqlite's same-thread check is moot.
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    synchronous = settings.sqlite_synchronous.upper()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    begin_statement = "BEGIN IMMEDIATE" if role == "write" else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin_statement)

    return engine
