"""The raw event log: insert exactly once, read back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

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


def insert_new(conn: Connection, rows: Sequence[EventRow]) -> set[EventKey]:
    """Insert the rows whose (site, event id) is not stored yet; return the keys of those inserted.

    ON CONFLICT DO NOTHING makes this exact under concurrency: when two transactions insert the same key,
    the database lets one win and the other sees a conflict, so the loser reports it as not inserted.
    """
    if not rows:
        return set()
    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        dialect_insert(events)
        .on_conflict_do_nothing(index_elements=["site_id", "event_id"])
        .returning(events.c.site_id, events.c.event_id)
    )
    result = conn.execute(stmt, list(rows))
    return {(site_id, event_id) for site_id, event_id in result}


def count_events(conn: Connection, site_id: int | None = None) -> int:
    query = select(func.count()).select_from(events)
    if site_id is not None:
        query = query.where(events.c.site_id == site_id)
    return int(conn.execute(query).scalar_one())
