"""Feeding event histories through the real writer and projector, and reading back what they derived."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, select

from service.config import Settings
from service.domain.sessions import Timeouts
from service.ingest.writer import EventWriter
from service.projection.queue import drain
from service.projection.rebuild import rebuild
from service.storage.engine import SyncTransactor, make_engine, make_transactor
from service.storage.events import EventRow
from service.storage.schema import actions, events, hash_events, projection_queue, sessions

TIMEOUTS = Timeouts(ringing_ms=600_000, connected_ms=4 * 3_600_000)
T0 = 1_764_000_000_000


def hash_row(
    site_id: int, page_id: str, seq: int, at: int, hash_value: str, event_id: str | None = None
) -> EventRow:
    event_id = event_id or str(uuid.uuid4())
    raw = {"id": event_id, "seq": seq, "ts": at, "type": "hash", "hash": hash_value}
    return _row(site_id, page_id, seq, at, "hash", event_id, raw)


def message_row(
    site_id: int, page_id: str, seq: int, at: int, event: str, message: Any, event_id: str | None = None
) -> EventRow:
    event_id = event_id or str(uuid.uuid4())
    data = {"source": "ccc-sdk", "payload": {"event": event, "message": message}}
    raw = {"id": event_id, "seq": seq, "ts": at, "type": "message", "data": data}
    return _row(site_id, page_id, seq, at, "message", event_id, raw)


def _row(site_id: int, page_id: str, seq: int, at: int, kind: str, event_id: str, raw: Any) -> EventRow:
    return {
        "site_id": site_id,
        "event_id": event_id,
        "page_id": page_id,
        "page_url": "https://crm.example.com/",
        "seq": seq,
        "type": kind,
        "client_ts": at,
        "sent_at": at,
        "received_at": at,
        "event_at": at,
        "skew_ms": 0,
        "ts_flag": None,
        "raw": orjson.dumps(raw).decode(),
    }


def ingest(settings: Settings, batches: Sequence[Sequence[EventRow]]) -> None:
    """Store each batch through the writer, then project it, so each batch is one projection unit."""
    writer = EventWriter(make_transactor(settings), max_batch=10_000, queue_limit=1_000_000)
    # psycopg, not the server's asyncpg: async tests call this with their event loop running.
    projection = SyncTransactor(make_engine(settings, "write"))
    writer.start()
    try:
        for rows in batches:
            writer.submit(rows).result(timeout=60)
            drain(projection, TIMEOUTS, batch=len(rows) or 1)
    finally:
        writer.close()
        projection.dispose()


def store_unprojected(settings: Settings, rows: Sequence[EventRow]) -> None:
    """Store rows through the writer and leave them queued for the projection (a writer with no idle work)."""
    writer = EventWriter(make_transactor(settings), max_batch=10_000, queue_limit=1_000_000)
    writer.start()
    try:
        writer.submit(rows).result(timeout=60)
    finally:
        writer.close()


def derived(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            "sessions": [tuple(r) for r in conn.execute(select(sessions).order_by(sessions.c.id))],
            "actions": [
                tuple(r) for r in conn.execute(select(actions).order_by(actions.c.site_id, actions.c.id))
            ],
            "hash_events": [
                tuple(r)
                for r in conn.execute(
                    select(hash_events.c.event_id, hash_events.c.session_id, hash_events.c.stream).order_by(
                        hash_events.c.event_id
                    )
                )
            ],
        }


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (actions, sessions, hash_events, events, projection_queue):
            conn.execute(delete(table))


def rebuild_all(settings: Settings, chunk: int = 2000) -> int:
    engine = make_engine(settings, "write")
    try:
        return rebuild(engine, TIMEOUTS, chunk=chunk)
    finally:
        engine.dispose()


def drain_all(settings: Settings) -> int:
    """Project whatever is still queued, here and now."""
    transactor = SyncTransactor(make_engine(settings, "write"))
    try:
        return drain(transactor, TIMEOUTS)
    finally:
        transactor.dispose()


def queued_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(projection_queue)).scalar_one())
