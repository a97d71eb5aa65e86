"""one time model: the instants stored as datetimes (sites and keys created, keys revoked, sessions offered,
connected and ended) become integer milliseconds since the epoch, as every other instant already was

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each column held a naive datetime in UTC (the UtcDateTime column type of 0001-0006); True: nullable.
COLUMNS: dict[str, dict[str, bool]] = {
    "sites": {"created_at": False},
    "api_keys": {"created_at": False, "revoked_at": True},
    "sessions": {"offered_at": True, "connected_at": True, "ended_at": True},
}

# PostgreSQL: extract(epoch) of a timestamp without time zone reads it as UTC, whatever the session's zone,
# and is numeric (exact) since PostgreSQL 14; floor keeps the millisecond a time falls in. Back: interval
# arithmetic, exact to the microsecond.
PG_TO_MS = "BIGINT USING (floor(extract(epoch from {c}) * 1000))::bigint"
PG_FROM_MS = (
    "TIMESTAMP WITHOUT TIME ZONE USING TIMESTAMP '1970-01-01 00:00:00' + {c} * INTERVAL '1 millisecond'"
)

# SQLite: SQLAlchemy wrote 'YYYY-MM-DD HH:MM:SS.ffffff'. The whole seconds go through strftime, the first
# three digits of the fraction are added as they are (never through a float, which could round a .9996 up
# into the next second). Back: the same text, microseconds from the millisecond. NULL gives NULL both ways.
SQLITE_TO_MS = (
    "CAST(strftime('%s', substr({c}, 1, 19)) AS INTEGER) * 1000"
    " + CASE WHEN substr({c}, 20, 1) = '.'"
    " THEN CAST(substr(substr({c}, 21) || '000', 1, 3) AS INTEGER) ELSE 0 END"
)
SQLITE_MS_PART = "(({c} % 1000) + 1000) % 1000"  # 0..999 for times before 1970 as well
SQLITE_FROM_MS = (
    "strftime('%Y-%m-%d %H:%M:%S', ({c} - " + SQLITE_MS_PART + ") / 1000, 'unixepoch')"
    " || '.' || printf('%03d', " + SQLITE_MS_PART + ") || '000'"
)

# The statements below are made of this file's own table and column names only (hence the noqa: S608).


def _alter_postgresql(using: str) -> None:
    # One ALTER TABLE per table: PostgreSQL rewrites the table (and its indexes) once, not once per column.
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {c} TYPE {using.format(c=c)}" for c in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def _rewrite_sqlite(expression: str) -> None:
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"{c} = {expression.format(c=c)}" for c in columns)
        op.execute(f"UPDATE {table} SET {changes}")  # noqa: S608


def _retype_sqlite(old: sa.types.TypeEngine[Any], new: sa.types.TypeEngine[Any]) -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            for column, nullable in columns.items():
                batch_op.alter_column(column, existing_type=old, type_=new, existing_nullable=nullable)


def _sqlite_foreign_keys_off() -> None:
    # Batch mode drops and recreates tables; with foreign keys enforced, dropping `sites` would delete every
    # row that refers to it. Alembic's connection leaves them off (SQLite's default); refuse otherwise.
    if op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("migration 0007 rebuilds tables on SQLite: run it with PRAGMA foreign_keys=OFF")


def _sqlite_all_readable() -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            to_ms = SQLITE_TO_MS.format(c=column)
            query = f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL AND ({to_ms}) IS NULL"  # noqa: S608
            unreadable = op.get_bind().execute(sa.text(query)).scalar_one()
            if unreadable:
                raise RuntimeError(f"{table}.{column}: {unreadable} rows hold a time 0007 cannot read")


# The partial index of open sessions names ended_at in its predicate: dropped before the column changes and
# created again after, on both databases.


def _drop_open_index() -> None:
    op.drop_index("ix_sessions_open", table_name="sessions")


def _create_open_index() -> None:
    op.create_index(
        "ix_sessions_open",
        "sessions",
        ["last_event_at"],
        unique=False,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def upgrade() -> None:
    _drop_open_index()
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_foreign_keys_off()
        _sqlite_all_readable()
        # In place first (SQLite keeps an integer in a DATETIME column as it is), then the declared type:
        # batch mode copies the rows with a CAST to BIGINT, which keeps integers and would ruin the text.
        _rewrite_sqlite(SQLITE_TO_MS)
        _retype_sqlite(sa.DateTime(), sa.BigInteger())
    else:
        _alter_postgresql(PG_TO_MS)
    _create_open_index()


def downgrade() -> None:
    # Exact both ways for the times the service wrote since sessions began (whole milliseconds); a site's or
    # key's creation time, written with microseconds before 0007, comes back floored to its millisecond.
    _drop_open_index()
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_foreign_keys_off()
        # The declared type first (the copy's CAST to DATETIME, NUMERIC affinity, keeps integers), then text.
        _retype_sqlite(sa.BigInteger(), sa.DateTime())
        _rewrite_sqlite(SQLITE_FROM_MS)
    else:
        _alter_postgresql(PG_FROM_MS)
    _create_open_index()
