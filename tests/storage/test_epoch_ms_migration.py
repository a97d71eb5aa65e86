"""Revision 0007 turns the instants stored as datetimes into epoch milliseconds: every row kept, every value
exact to its millisecond, NULLs NULL, the open-sessions index rebuilt; and the downgrade brings them back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from service.admin import registry
from service.config import Settings
from service.domain.instants import epoch_ms
from service.storage.engine import make_engine, normalize_url
from service.storage.migrations import current_revision, downgrade, upgrade
from service.storage.schema import metadata

# The tables as revision 0006 has them, as far as the rows below need: times were naive UTC datetimes.
SITES = sa.table(
    "sites",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("site_key", sa.String),
    sa.column("created_at", sa.DateTime),
)
ORIGINS = sa.table("site_origins", sa.column("site_id", sa.Integer), sa.column("origin", sa.String))
KEYS = sa.table(
    "api_keys",
    sa.column("id", sa.Integer),
    sa.column("key_id", sa.String),
    sa.column("secret_hash", sa.String),
    sa.column("scope", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("revoked_at", sa.DateTime),
)
SESSIONS = sa.table(
    "sessions",
    *(sa.column(name, sa.String) for name in ("id", "stream", "outcome")),
    *(sa.column(name, sa.Integer) for name in ("site_id", "observed_from", "cards_sent", "call_outs")),
    *(sa.column(name, sa.Integer) for name in ("event_count", "duplicate_count")),
    *(sa.column(name, sa.BigInteger) for name in ("started_at", "last_event_at")),
    *(sa.column(name, sa.DateTime) for name in ("offered_at", "connected_at", "ended_at")),
)
TIMES: dict[str, tuple[str, ...]] = {"sites": ("created_at",), "api_keys": ("created_at", "revoked_at")}
TIMES["sessions"] = ("offered_at", "connected_at", "ended_at")


def naive(year: int, month: int, day: int, hour: int, minute: int, second: int, us: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, us)  # what 0006 stored: naive, in UTC


SITE_ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "crm", "site_key": "cts_a", "created_at": naive(2026, 11, 1, 8, 0, 0, 123456)},
    {"id": 2, "name": "crm2", "site_key": "cts_b", "created_at": naive(2026, 11, 1, 8, 0, 0)},
]
KEY_ROWS: list[dict[str, Any]] = [
    # .999999 stays in its second: floored, never rounded up.
    {"id": 1, "key_id": "k1", "secret_hash": "h", "scope": "read",
     "created_at": naive(2026, 11, 1, 23, 59, 59, 999999), "revoked_at": None},
    {"id": 2, "key_id": "k2", "secret_hash": "h", "scope": "admin",
     "created_at": naive(1969, 12, 31, 23, 59, 59, 500000),
     "revoked_at": naive(2026, 12, 1, 0, 0, 0, 1000)},
]  # fmt: skip
SESSION_COUNTS = {"observed_from": 100, "cards_sent": 0, "call_outs": 0, "event_count": 3}
SESSION_COUNTS["duplicate_count"] = 0
SESSION_ROWS: list[dict[str, Any]] = [
    {"id": "s-ended", "stream": "phone:a", "site_id": 1, "outcome": "answered", **SESSION_COUNTS,
     "started_at": 1793520000250, "last_event_at": 1793520065001,
     "offered_at": naive(2026, 11, 1, 8, 0, 0, 250000), "connected_at": naive(2026, 11, 1, 8, 0, 5, 7000),
     "ended_at": naive(2026, 11, 1, 8, 1, 5, 1000)},
    {"id": "s-open", "stream": "phone:b", "site_id": 1, "outcome": "ongoing", **SESSION_COUNTS,
     "started_at": 1793520000999, "last_event_at": 1793520000999,
     "offered_at": naive(2026, 11, 1, 8, 0, 0, 999000), "connected_at": None, "ended_at": None},
    {"id": "s-joined", "stream": "im:c", "site_id": 2, "outcome": "unknown", **SESSION_COUNTS,
     "started_at": 1793520001000, "last_event_at": 1793520001000,
     "offered_at": None, "connected_at": None, "ended_at": None},
]  # fmt: skip
ROWS: dict[str, list[dict[str, Any]]] = {"sites": SITE_ROWS, "api_keys": KEY_ROWS, "sessions": SESSION_ROWS}


def floored(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(microsecond=value.microsecond // 1000 * 1000)


def expected_ms(value: datetime | None) -> int | None:
    return None if value is None else epoch_ms(value.replace(tzinfo=UTC))


def stored(engine: Engine, table: str) -> dict[Any, tuple[Any, ...]]:
    columns = ", ".join(TIMES[table])
    with engine.connect() as conn:
        found = conn.execute(sa.text(f"SELECT id, {columns} FROM {table}")).all()
    return {row[0]: tuple(row[1:]) for row in found}


def stored_datetimes(engine: Engine, table: str) -> dict[Any, tuple[Any, ...]]:
    light = {"sites": SITES, "api_keys": KEYS, "sessions": SESSIONS}[table]
    with engine.connect() as conn:
        found = conn.execute(sa.select(light.c.id, *(light.c[n] for n in TIMES[table]))).all()
    return {row[0]: tuple(row[1:]) for row in found}


def open_index_definition(engine: Engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'ix_sessions_open'"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_sessions_open'"
        return str(conn.execute(sa.text(query)).scalar_one())


@pytest.fixture
def at_0006(empty_db_url: str) -> str:
    """A database at revision 0006 holding sites, keys and sessions with datetimes."""
    url = empty_db_url
    if make_url(url).get_backend_name() == "postgresql":
        # The conversion must not depend on the server's zone: the stored times are UTC whatever it is.
        admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = make_url(url).database
            conn.execute(sa.text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Shanghai'"))
        admin.dispose()
    upgrade(url, "0006")
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.execute(sa.insert(SITES), SITE_ROWS)
        conn.execute(sa.insert(ORIGINS), [{"site_id": 1, "origin": "https://crm.example.com"}])
        conn.execute(sa.insert(KEYS), KEY_ROWS)
        conn.execute(sa.insert(SESSIONS), SESSION_ROWS)
    engine.dispose()
    return url


def test_upgrade_keeps_every_row_as_exact_milliseconds(at_0006: str) -> None:
    upgrade(at_0006, "0007")
    engine = create_engine(normalize_url(at_0006))
    assert current_revision(engine) == "0007"
    for table, rows in ROWS.items():
        want = {row["id"]: tuple(expected_ms(row[name]) for name in TIMES[table]) for row in rows}
        assert stored(engine, table) == want, table
    # Spelled out once, independently of epoch_ms:
    assert stored(engine, "sites")[1] == (1793520000123,)
    assert stored(engine, "api_keys") == {1: (1793577599999, None), 2: (-500, 1796083200001)}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM site_origins")).scalar_one() == 1
        # The open-sessions index is back, partial as before, and a query on it finds the open session.
        found = conn.execute(sa.text("SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY id")).scalars()
        assert list(found) == ["s-joined", "s-open"]
    assert "ended_at IS NULL" in open_index_definition(engine)
    # With the later revisions applied too, nothing differs from the schema the code declares.
    upgrade(at_0006, "head")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()

    # And the code reads them as what they are now.
    settings = Settings(database_url=at_0006)
    service_engine = make_engine(settings)
    assert [s.created_at for s in registry.list_sites(service_engine)] == [1793520000123, 1793520000000]
    assert [k.revoked_at for k in registry.list_keys(service_engine)] == [None, 1796083200001]
    service_engine.dispose()


def test_downgrade_brings_the_datetimes_back(at_0006: str) -> None:
    upgrade(at_0006, "0007")
    downgrade(at_0006, "0006")
    engine = create_engine(normalize_url(at_0006))
    assert current_revision(engine) == "0006"
    for table, rows in ROWS.items():
        # Back to the millisecond: what a time finer than that held below it is gone.
        back = {row["id"]: tuple(floored(row[name]) for name in TIMES[table]) for row in rows}
        assert stored_datetimes(engine, table) == back, table
    assert "ended_at IS NULL" in open_index_definition(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM site_origins")).scalar_one() == 1
    engine.dispose()

    # Up again: the same milliseconds as the first time.
    upgrade(at_0006, "0007")
    engine = create_engine(normalize_url(at_0006))
    for table, rows in ROWS.items():
        want = {row["id"]: tuple(expected_ms(row[name]) for name in TIMES[table]) for row in rows}
        assert stored(engine, table) == want, table
    engine.dispose()
