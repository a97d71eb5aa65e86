"""Sessions, actions and raw events as records with the API's field names, streamed in constant memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, select

from service.contract.models import Action, EventRecord, Session, field_names
from service.domain.instants import iso
from service.domain.sessions import Timeouts, timed_out
from service.formats import StoredJson
from service.storage.schema import actions, call_legs, events, sessions, sites

# The export columns are the contract's fields (service/contract/models.py).
SESSION_FIELDS = field_names(Session)
# Columns whose text may be a phone number: in CSV a genuine +86... stays as it is (service/formats.py).
PHONE_FIELDS = frozenset({"customer_mobile", "agent_mobile"})
ACTION_FIELDS = field_names(Action)
EVENT_FIELDS = field_names(EventRecord)
STREAM_BATCH = 1000
LINK_BATCH = 500


class CallLink(NamedTuple):
    """The CCC agent leg a page session was joined to (projection/call_join.py)."""

    sdk_app_id: int
    session_id: str
    leg: int
    offset_ms: int | None


def call_links(conn: Connection, session_ids: Iterable[str]) -> dict[str, CallLink]:
    """The joined leg of each of these page sessions that has one."""
    ids = sorted(set(session_ids))
    found: dict[str, CallLink] = {}
    for start in range(0, len(ids), LINK_BATCH):
        query = select(
            call_legs.c.page_session_id,
            call_legs.c.sdk_app_id,
            call_legs.c.session_id,
            call_legs.c.leg,
            call_legs.c.join_offset_ms,
        ).where(call_legs.c.page_session_id.in_(ids[start : start + LINK_BATCH]))
        for row in conn.execute(query):
            found[row.page_session_id] = CallLink(row.sdk_app_id, row.session_id, row.leg, row.join_offset_ms)
    return found


def linked(conn: Connection, rows: Iterable[Any]) -> Iterator[tuple[Any, CallLink | None]]:
    """Session rows with their joined legs, looked up a batch of rows at a time (streams stay streams)."""
    batch: list[Any] = []

    def flush() -> Iterator[tuple[Any, CallLink | None]]:
        links = call_links(conn, [row["id"] for row in batch])
        for row in batch:
            yield row, links.get(row["id"])

    for row in rows:
        batch.append(row)
        if len(batch) >= LINK_BATCH:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def _window(
    query: Select[Any], column: Any, site: str | None, start_ms: int | None, end_ms: int | None
) -> Select[Any]:
    if site is not None:
        query = query.where(sites.c.name == site)
    if start_ms is not None:
        query = query.where(column >= start_ms)
    if end_ms is not None:
        query = query.where(column < end_ms)
    return query


def session_records(
    conn: Connection,
    *,
    timeouts: Timeouts,
    now_ms: int,
    site: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Sessions first heard in [start, end), oldest first, as they read now (open ones past their timeout
    read as ended by timeout at their last event)."""
    query = select(sessions, sites.c.name.label("site_name")).join(sites, sites.c.id == sessions.c.site_id)
    query = _window(query, sessions.c.started_at, site, start_ms, end_ms).order_by(
        sessions.c.started_at, sessions.c.id
    )
    rows = conn.execution_options(yield_per=STREAM_BATCH).execute(query).mappings()
    # The links come from a second connection: the first is busy streaming the sessions.
    with conn.engine.connect() as links:
        for row, link in linked(links, rows):
            yield session_record(row, timeouts, now_ms, link)


_CALL_FIELDS = ("call_sdk_app_id", "call_session_id", "call_leg", "call_join_offset_ms")


def session_record(row: Any, timeouts: Timeouts, now_ms: int, link: CallLink | None) -> dict[str, Any]:
    record = {name: row[name] for name in SESSION_FIELDS if name != "site" and name not in _CALL_FIELDS}
    record["site"] = row["site_name"]
    record["call_sdk_app_id"] = link.sdk_app_id if link else None
    record["call_session_id"] = link.session_id if link else None
    record["call_leg"] = link.leg if link else None
    record["call_join_offset_ms"] = link.offset_ms if link else None
    connected = row["connected_at"] is not None
    if row["ended_at"] is None and timed_out(connected, row["last_event_at"], now_ms, timeouts):
        record["ended_at"] = row["last_event_at"]
        record["end_source"] = "timeout"
        record["outcome"] = "answered" if connected else "unknown"
    for name in ("offered_at", "connected_at", "ended_at"):
        record[name] = iso(record[name])
    return {name: record[name] for name in SESSION_FIELDS}


def action_records(
    conn: Connection, *, site: str | None = None, start_ms: int | None = None, end_ms: int | None = None
) -> Iterator[dict[str, Any]]:
    query = select(actions, sites.c.name.label("site_name")).join(sites, sites.c.id == actions.c.site_id)
    query = _window(query, actions.c.at, site, start_ms, end_ms).order_by(actions.c.at, actions.c.id)
    for row in conn.execution_options(yield_per=STREAM_BATCH).execute(query).mappings():
        yield {
            "id": row["id"],
            "at": iso(row["at"]),
            "site": row["site_name"],
            "agent_email": row["agent_email"],
            "action": row["action"],
            "session_id": row["session_id"],
            "page_id": row["page_id"],
            "details": StoredJson(row["details"]),
        }


def event_records(
    conn: Connection, *, site: str | None = None, start_ms: int | None = None, end_ms: int | None = None
) -> Iterator[dict[str, Any]]:
    query = select(events, sites.c.name.label("site_name")).join(sites, sites.c.id == events.c.site_id)
    query = _window(query, events.c.event_at, site, start_ms, end_ms).order_by(events.c.event_at, events.c.id)
    for row in conn.execution_options(yield_per=STREAM_BATCH).execute(query).mappings():
        yield {
            "id": row["event_id"],
            "site": row["site_name"],
            "page_id": row["page_id"],
            "page_url": row["page_url"],
            "seq": row["seq"],
            "type": row["type"],
            "ts": row["client_ts"],
            "sent_at": row["sent_at"],
            "received_at": row["received_at"],
            "event_at": iso(row["event_at"]),
            "skew_ms": row["skew_ms"],
            "ts_flag": row["ts_flag"],
            "raw": StoredJson(row["raw"]),
        }


def action_record(row: Any, site_name: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": iso(row["at"]),
        "site": site_name,
        "agent_email": row["agent_email"],
        "action": row["action"],
        "session_id": row["session_id"],
        "page_id": row["page_id"],
        "details": StoredJson(row["details"]),
    }
