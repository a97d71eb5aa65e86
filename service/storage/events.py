"""The raw event log: insert exactly once (queueing what is new for the projection), read back."""

from __future__ import annotations

import functools
import operator
import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import orjson
from sqlalchemy import Connection, func, select

from service.storage.engine import AsyncpgTransactor, SyncTransactor, Transactor
from service.storage.schema import events


class EventRow(TypedDict):
    site_id: int
    event_id: str
    page_id: str
    page_url: str
    seq: int
    type: str
    client_ts: int
    sent_at: int
    received_at: int
    event_at: int
    skew_ms: int
    ts_flag: str | None
    raw: str


EventKey = tuple[int, str]

COLUMNS: tuple[str, ...] = tuple(EventRow.__annotations__)
_row_values: Callable[[EventRow], tuple[Any, ...]] = operator.itemgetter(*COLUMNS)

# This is the ingestion hot path, so it speaks to the driver directly: SQLAlchemy's per-row parameter
# processing cost more than the database's own work here (docs/benchmarks.md, History: the profile
# before projection left the transaction).
# tests/ingest/test_writer.py checks that these statements name the columns of EventRow, in its order.

SQLITE_INSERT = """
INSERT INTO events (site_id, event_id, page_id, page_url, seq, type, client_ts, sent_at, received_at,
                    event_at, skew_ms, ts_flag, raw)
VALUES {values}
ON CONFLICT (site_id, event_id) DO NOTHING
"""
# Many rows per statement: the sqlite3 module lets go of the GIL for each statement it steps, and taking it
# back can wait for the event loop's thread (up to the interpreter's switch interval), so a statement per
# row (executemany) spent most of its time waiting. 13 x 2,500 parameters stay below SQLite's limit of 32,766.
SQLITE_ROWS_PER_STATEMENT = 2_500
_SQLITE_ROW = "(" + ", ".join("?" * len(COLUMNS)) + ")"
_SQLITE_NEW_BETWEEN = "SELECT site_id, event_id FROM events WHERE id BETWEEN ? AND ?"
_SQLITE_SEQUENCE = "SELECT seq FROM sqlite_sequence WHERE name = 'events'"

# One statement whatever the number of rows: the rows travel as one JSON document (orjson writes it in C;
# column arrays made asyncpg check every element against collections.abc, 5 % of the server's samples; read
# as json, not jsonb, which PostgreSQL would first convert: about 15 % less time per row), the
# new rows' ids go to the projection queue in the same statement, and their keys come back as two arrays.
_POSTGRES_INSERT = """
WITH new AS (
    INSERT INTO events (site_id, event_id, page_id, page_url, seq, type, client_ts, sent_at, received_at,
                        event_at, skew_ms, ts_flag, raw)
    SELECT site_id, event_id, page_id, page_url, seq, type, client_ts, sent_at, received_at,
           event_at, skew_ms, ts_flag, raw
    FROM json_to_recordset($1::text::json) AS r(
        site_id int, event_id text, page_id text, page_url text, seq bigint, type text, client_ts bigint,
        sent_at bigint, received_at bigint, event_at bigint, skew_ms bigint, ts_flag text, raw text)
    ON CONFLICT (site_id, event_id) DO NOTHING
    RETURNING id, site_id, event_id
), queued AS (
    INSERT INTO projection_queue (id) SELECT id FROM new
)
SELECT array_agg(site_id), array_agg(event_id) FROM new
"""
# asyncpg (the server's writer) numbers its parameters; psycopg (tools, some tests) marks them with %s.
_POSTGRES_PARAMETER = re.compile(r"\$\d+")
POSTGRES_INSERT = {
    "asyncpg": _POSTGRES_INSERT,
    "psycopg": _POSTGRES_PARAMETER.sub("%s", _POSTGRES_INSERT),
}


def store_new(transactor: Transactor, rows: Sequence[EventRow]) -> set[EventKey]:
    """``insert_new`` in one transaction of its own: the writer's hot path.

    It runs on the driver's own connection (sqlite3, asyncpg) without SQLAlchemy's per-transaction work, and
    usually as one statement: each call into the driver lets go of the GIL and must take it back from the
    thread serving requests, so the fewer calls a group commit makes, the less both threads wait.
    """
    if not rows:
        return set()
    if isinstance(transactor, SyncTransactor) and transactor.sync_engine.dialect.name == "sqlite":
        # Rows that fit one statement need no BEGIN and COMMIT of their own: the statement is a transaction.
        single = len(rows) <= SQLITE_ROWS_PER_STATEMENT
        return transactor.run_sqlite(lambda driver: _insert_sqlite(driver, rows), single_statement=single)
    if isinstance(transactor, AsyncpgTransactor):
        # One statement, so one round trip with no BEGIN and COMMIT of its own: it is a transaction.
        record = transactor.fetch_single(POSTGRES_INSERT["asyncpg"], orjson.dumps(rows).decode())
        assert record is not None
        return keys_from_arrays(record[0], record[1])
    return transactor.run(lambda conn: insert_new(conn, rows))


def insert_new(conn: Connection, rows: Sequence[EventRow]) -> set[EventKey]:
    """Insert the rows whose (site, event id) is not stored yet, queue them for the projection, and return
    the keys of those inserted.

    ON CONFLICT DO NOTHING makes this exact under concurrency: when two transactions insert the same key,
    the database lets one win and the other sees a conflict, so the loser reports it as not inserted.
    """
    if not rows:
        return set()
    if conn.dialect.name == "postgresql":
        return _insert_postgres(conn, rows)
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return _insert_sqlite(driver, rows)


def _insert_sqlite(driver: sqlite3.Connection, rows: Sequence[EventRow]) -> set[EventKey]:
    # A trigger (migration 0005) queues each new row for the projection. The caller holds SQLite's write lock
    # (a transaction, or a single statement, which takes it before it reads). `events` is AUTOINCREMENT
    # (migration 0014: an id is never handed out twice, for the seal), so every row a statement tries, stored
    # or not (a repeat, a padding row), draws the next id: the ids this call drew are the last `attempted`
    # ones of the table's sequence, and the new rows are those among them.
    added = 0
    attempted = 0
    for start in range(0, len(rows), SQLITE_ROWS_PER_STATEMENT):
        chunk = rows[start : start + SQLITE_ROWS_PER_STATEMENT]
        values = [v for row in chunk for v in _row_values(row)]
        # Statements come in a few sizes, padded with repeats of the last row (which insert nothing): each
        # size is compiled once and kept by sqlite3's statement cache, at about 2 KB per row of statement;
        # a statement per group size had the server grow past 180 MB.
        size = _statement_rows(len(chunk))
        values += _row_values(chunk[-1]) * (size - len(chunk))
        cursor = driver.execute(_sqlite_insert(size), values)
        attempted += size
        added += max(cursor.rowcount, 0)
    if added == len(rows):
        return {(row["site_id"], row["event_id"]) for row in rows}
    if added == 0:
        return set()
    (drawn,) = driver.execute(_SQLITE_SEQUENCE).fetchone()
    new = set(driver.execute(_SQLITE_NEW_BETWEEN, (drawn - attempted + 1, drawn)).fetchall())
    if len(new) != added:  # SQLite drew ids otherwise than assumed: never answer a wrong "accepted"
        raise RuntimeError(f"{added} events stored but {len(new)} found among the ids drawn")
    return new


def _statement_rows(row_count: int) -> int:
    return min(SQLITE_ROWS_PER_STATEMENT, 1 << (row_count - 1).bit_length())


@functools.lru_cache(maxsize=16)
def _sqlite_insert(row_count: int) -> str:
    return SQLITE_INSERT.format(values=", ".join([_SQLITE_ROW] * row_count))


def _insert_postgres(conn: Connection, rows: Sequence[EventRow]) -> set[EventKey]:
    document = orjson.dumps(rows).decode()
    # The new keys come back as two arrays in one row: a thousand result rows cost more to process.
    site_ids, event_ids = conn.exec_driver_sql(POSTGRES_INSERT[conn.dialect.driver], (document,)).one()
    return keys_from_arrays(site_ids, event_ids)


def keys_from_arrays(site_ids: list[int] | None, event_ids: list[str] | None) -> set[EventKey]:
    return set(zip(site_ids or (), event_ids or (), strict=True))


def count_events(conn: Connection, site_id: int | None = None) -> int:
    query = select(func.count()).select_from(events)
    if site_id is not None:
        query = query.where(events.c.site_id == site_id)
    return int(conn.execute(query).scalar_one())
