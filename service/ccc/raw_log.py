"""The raw log of CCC records: every push (and, later, every pulled record) as received, or with its
customer protected under a PII mode (push.stored_text); stored at most once.

The unique constraint on (sdk_app_id, push_uuid) is the arbiter of "at most once", as (site_id, event_id) is
for events: ``INSERT ... ON CONFLICT DO NOTHING`` stores a push whose X-TCCC-PUSH-UUID the app already
used as nothing, also when two identical pushes race (PostgreSQL makes the second wait for the first's
commit and then skips the row; SQLite serializes writers). Records without a UUID (pulls) never conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from service.storage.schema import ccc_raw_records

Source = Literal["push", "pull"]


class RawRecordRow(TypedDict):
    sdk_app_id: int
    source: Source
    action: str | None
    version: str | None
    push_uuid: str | None
    received_at: int  # ms since the epoch
    body: str  # the JSON body as received
    session_id: str | None  # the SessionId it describes (domain/call_parsing.session_of)
    problem: str | None  # why it cannot be read as a record, when it cannot


@dataclass(frozen=True)
class RawRecord:
    id: int
    sdk_app_id: int
    source: Source
    action: str | None
    version: str | None
    push_uuid: str | None
    received_at: int
    body: str
    session_id: str | None
    problem: str | None


def store_record(conn: Connection, row: RawRecordRow) -> bool:
    """Insert the record unless its app already has its push UUID; True when this call stored it. The
    caller's transaction commits it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ccc_raw_records)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["sdk_app_id", "push_uuid"])
        .returning(ccc_raw_records.c.id)
    )
    return conn.execute(statement).first() is not None


def raw_records(conn: Connection, sdk_app_id: int | None = None) -> list[RawRecord]:
    """The log in the order received (for tools and tests; a streamed export is for later)."""
    query = select(ccc_raw_records).order_by(ccc_raw_records.c.id)
    if sdk_app_id is not None:
        query = query.where(ccc_raw_records.c.sdk_app_id == sdk_app_id)
    return [
        RawRecord(
            r.id,
            r.sdk_app_id,
            r.source,
            r.action,
            r.version,
            r.push_uuid,
            r.received_at,
            r.body,
            r.session_id,
            r.problem,
        )
        for r in conn.execute(query)
    ]
