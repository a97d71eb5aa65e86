"""Engine setup for SQLite and PostgreSQL from one URL.

Drivers, chosen by measurement (bench/drivers.py, docs/design.md): the stdlib's sqlite3 for SQLite;
psycopg 3 for PostgreSQL reads, the CLI and migrations; asyncpg for the PostgreSQL writer, whose batched
INSERT ... RETURNING ran 3 to 4 times faster than psycopg's through SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

import asyncpg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection

from service.config import Settings

SYNC_POSTGRES_DRIVER = "psycopg"
WRITER_POSTGRES_DRIVER = "asyncpg"

# Parameters are kept out of error messages and logs: they hold callers' phone numbers.
# A stalled server must not hold a writer forever: bounded connect and statement times.
CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_S = 60

Role = Literal["write", "read"]
T = TypeVar("T")


def normalize_url(url: str, driver: str = SYNC_POSTGRES_DRIVER) -> str:
    """Map a ``postgresql://`` (or ``postgres://``, or another driver's) URL onto ``driver``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=f"postgresql+{driver}")
    elif backend != "sqlite" or parsed.get_driver_name() != "pysqlite":
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path or postgresql://..."
        )
    return parsed.render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """The ``postgresql://`` DSN asyncpg itself takes, for a PostgreSQL URL of any driver."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_sqlite_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


SQLITE_FILE_MODE = 0o600


def create_private_sqlite_file(url: str) -> None:
    """Create a SQLite database file that does not exist yet readable by its owner only (it holds callers'
    numbers). SQLite gives its -wal and -shm files the database file's permissions; an existing file keeps
    the ones it has."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    if parsed.database.startswith("file:") or parsed.query.get("mode") == "memory":
        return
    with contextlib.suppress(FileExistsError, FileNotFoundError):  # a missing folder: SQLite reports it
        os.close(os.open(parsed.database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, SQLITE_FILE_MODE))


def make_engine(settings: Settings, role: Role = "read", *, pool_size: int = 5) -> Engine:
    """A synchronous engine for one role.

    On SQLite the writer opens its transactions with BEGIN IMMEDIATE, so two processes never both hold
    a read lock and then deadlock upgrading it; readers keep SQLite's deferred BEGIN and never block writers.
    """
    url = normalize_url(settings.database_url)
    if is_sqlite_url(url):
        return _sqlite_engine(url, settings, role)
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "hide_parameters": True,
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S},
    }
    if role == "write":
        kwargs.update(pool_size=1, max_overflow=1)
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, settings: Settings, role: Role) -> Engine:
    create_private_sqlite_file(url)
    # The pool hands a connection to one thread at a time, so pysqlite's same-thread check is moot.
    engine = create_engine(
        url, hide_parameters=True, connect_args={"timeout": 30, "check_same_thread": False}
    )
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
        if settings.sqlite_max_size_mb:
            page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
            max_pages = settings.sqlite_max_size_mb * 1024 * 1024 // page_size
            cursor.execute(f"PRAGMA max_page_count={int(max_pages)}")
        cursor.close()

    begin_statement = "BEGIN IMMEDIATE" if role == "write" else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin_statement)

    return engine


class Transactor(Protocol):
    """Runs a function in one committed transaction, from the single thread that owns it."""

    @property
    def sync_engine(self) -> Engine: ...

    def run(self, work: Callable[[Connection], T]) -> T: ...

    def dispose(self) -> None: ...


class SyncTransactor:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._held: PoolProxiedConnection | None = None  # for run_sqlite, taken from the pool on first use

    @property
    def sync_engine(self) -> Engine:
        return self._engine

    def run(self, work: Callable[[Connection], T]) -> T:
        with self._engine.begin() as conn:
            return work(conn)

    def run_sqlite(self, work: Callable[[sqlite3.Connection], T], *, single_statement: bool = False) -> T:
        """Run work in one write transaction on a SQLite connection this transactor keeps, without
        SQLAlchemy's per-transaction work (pool checkout and reset, events): for the writer's hot path.

        ``single_statement``: the work writes with one statement (and may read after it), which SQLite runs
        as a transaction of its own, taking the write lock before it reads; no BEGIN and COMMIT around it.
        """
        if self._held is None:
            self._held = self._engine.raw_connection()
        driver = self._held.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        if single_statement:
            return work(driver)
        driver.execute("BEGIN IMMEDIATE")
        try:
            result = work(driver)
            driver.execute("COMMIT")
        except BaseException:
            if driver.in_transaction:
                driver.rollback()
            raise
        return result

    def dispose(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None
        self._engine.dispose()


class AsyncpgTransactor:
    """asyncpg behind SQLAlchemy's sync Connection API: the same write code, asyncpg's speed.

    The owning thread runs a private event loop; ``run_sync`` lets synchronous SQLAlchemy code drive the
    async driver through greenlets. Connections are bound to that loop, so only the owning thread may call.
    """

    def __init__(self, url: str) -> None:
        # uvloop when installed (it is with the server): its I/O runs in C, without the GIL, so the writer's
        # round trips take less of it from the thread that parses requests.
        self._loop = _new_event_loop()
        self._dsn = asyncpg_dsn(url)
        self._held: asyncpg.Connection | None = None  # for fetch_single, connected on first use
        self._engine: AsyncEngine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=1,
            pool_pre_ping=True,
            hide_parameters=True,
            connect_args={"timeout": CONNECT_TIMEOUT_S, "command_timeout": STATEMENT_TIMEOUT_S},
        )

    @property
    def sync_engine(self) -> Engine:
        return self._engine.sync_engine

    def run(self, work: Callable[[Connection], T]) -> T:
        return self._loop.run_until_complete(self._run(work))

    async def _run(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(work)

    def fetch_single(self, statement: str, *args: Any) -> asyncpg.Record | None:
        """Run one statement as a transaction of its own and return its first row: one round trip, on a
        connection this transactor keeps, without SQLAlchemy (the writer's hot path). Errors are asyncpg's."""
        return self._loop.run_until_complete(self._fetch_single(statement, args))

    async def _fetch_single(self, statement: str, args: tuple[Any, ...]) -> asyncpg.Record | None:
        if self._held is None or self._held.is_closed():
            self._held = await asyncpg.connect(
                self._dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=STATEMENT_TIMEOUT_S
            )
        try:
            return await self._held.fetchrow(statement, *args)
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
            # The connection may be broken (a restarted server): the next call connects afresh.
            held, self._held = self._held, None
            held.terminate()
            raise

    def dispose(self) -> None:
        if self._loop.is_closed():
            return
        if self._held is not None:
            held, self._held = self._held, None
            try:
                self._loop.run_until_complete(held.close(timeout=CONNECT_TIMEOUT_S))
            except Exception:  # the server went away: nothing to say goodbye to, but the engine still goes
                held.terminate()
        self._loop.run_until_complete(self._engine.dispose())
        self._loop.close()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the server's dependencies
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def make_transactor(settings: Settings) -> Transactor:
    if is_sqlite_url(settings.database_url):
        return SyncTransactor(make_engine(settings, "write"))
    return AsyncpgTransactor(normalize_url(settings.database_url, WRITER_POSTGRES_DRIVER))
