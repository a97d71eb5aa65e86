"""GET /v1/sessions and /v1/sessions/{id}: sessions newest first by keyset pages (a cursor is the sort
key of the last row a page returned, so pages never skip or repeat a row while new rows arrive), one
session with its timeline, and the same list as CSV or NDJSON."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, Connection, and_, or_, select, tuple_
from starlette.requests import Request
from starlette.responses import Response

from service.admin.registry import site_names
from service.contract.queries import SessionsQuery
from service.domain.instants import iso, now_ms
from service.domain.sessions import Timeouts
from service.formats import StoredJson
from service.http.audit import note_rows
from service.http.errors import ApiError
from service.http.responses import JSONResponse
from service.projection.statements import SiteIds, of_sites
from service.reports.call_records import apps_of_site, call_of
from service.reports.params import Params, time_range
from service.reports.records import SESSION_FIELDS, action_record, call_links, linked, session_record
from service.reports.serving import allowed_sites, export, in_thread, keyset_page, reader, site_filter
from service.storage.schema import actions, events, hash_events, sessions, sites

SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SessionOutcome = Literal["answered", "not_answered", "ongoing", "unknown"]
OUTCOMES: tuple[SessionOutcome, ...] = get_args(SessionOutcome)


async def list_sessions(request: Request) -> Response:
    state = await reader(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=None)
    resolve_site = site_filter(request, params)
    query = params.read(SessionsQuery)
    params.done()
    # Stored numbers went through the PII policy at ingestion: look for the number as given and as stored.
    customer = query.customer
    customers = None if customer is None else tuple(sorted({customer, state.pii.protect(customer)}))
    limit, fmt = query.limit, query.format
    after = None if query.cursor is None else (query.cursor[0], query.cursor[1])
    timeouts = state.timeouts
    now = now_ms()

    def where() -> SessionFilter:
        return SessionFilter(
            start,
            end,
            resolve_site(),
            query.agent,
            query.channel,
            query.outcome,
            customers,
        )

    if fmt != "json":
        filters = await in_thread(where)

        def records() -> Iterator[dict[str, Any]]:
            with state.read_engine.connect() as conn:
                for record, _ in session_page(
                    conn, filters, now_ms=now, timeouts=timeouts, after=after, limit=None
                ):
                    yield record

        return export(records, SESSION_FIELDS, fmt, "sessions")

    def page() -> dict[str, Any]:
        filters = where()
        with state.read_engine.connect() as conn:
            rows = session_page(conn, filters, now_ms=now, timeouts=timeouts, after=after, limit=limit + 1)
            return keyset_page(rows, limit, "sessions")

    found = await in_thread(page)
    note_rows(request, len(found["sessions"]))
    return JSONResponse(found)


async def get_session(request: Request) -> Response:
    state = await reader(request)
    session_id = request.path_params["session_id"]
    timeouts = state.timeouts
    allowed = allowed_sites(request)

    def read() -> dict[str, Any] | None:
        with state.read_engine.connect() as conn:
            return session_detail(conn, session_id, now_ms=now_ms(), timeouts=timeouts, sites=allowed)

    # Session ids are UUIDs: anything else (a NUL, say, which PostgreSQL refuses) cannot name one.
    found = await in_thread(read) if SESSION_ID.fullmatch(session_id) else None
    if found is None:
        raise ApiError(404, "not_found", f"no session has the id {session_id!r}")
    note_rows(request, 1)
    return JSONResponse(found)


@dataclass(frozen=True)
class SessionFilter:
    start_ms: int | None = None
    end_ms: int | None = None
    site_id: SiteIds = None
    agent: str | None = None
    channel: str | None = None
    outcome: SessionOutcome | None = None
    customer: tuple[str, ...] | None = None  # a mobile or userId, in any of these forms


def outcome_condition(outcome: SessionOutcome, now_ms: int, timeouts: Timeouts) -> ColumnElement[bool]:
    """The outcome as records read it now: an open session past its timeout reads as ended."""
    open_ = sessions.c.ended_at.is_(None)
    connected = sessions.c.connected_at.is_not(None)
    past_timeout = or_(
        and_(connected, sessions.c.last_event_at < now_ms - timeouts.connected_ms),
        and_(~connected, sessions.c.last_event_at < now_ms - timeouts.ringing_ms),
    )
    timed_out = and_(open_, past_timeout)
    if outcome == "answered":
        return or_(sessions.c.outcome == "answered", and_(timed_out, connected))
    if outcome == "unknown":
        return or_(sessions.c.outcome == "unknown", and_(timed_out, ~connected))
    if outcome == "ongoing":
        return and_(sessions.c.outcome == "ongoing", ~past_timeout)
    return sessions.c.outcome == "not_answered"


def session_page(
    conn: Connection,
    where: SessionFilter,
    *,
    now_ms: int,
    timeouts: Timeouts,
    after: tuple[int, str] | None,
    limit: int | None,
) -> Iterator[tuple[dict[str, Any], tuple[int, str]]]:
    """Sessions newest first (by offer time, or first sight for one joined mid-call), each with its cursor."""
    # No join: it would keep both databases from walking the (started_at, id) index in order.
    names = site_names(conn)
    query = select(sessions)
    conditions: list[ColumnElement[bool]] = []
    if where.start_ms is not None:
        conditions.append(sessions.c.started_at >= where.start_ms)
    if where.end_ms is not None:
        conditions.append(sessions.c.started_at < where.end_ms)
    conditions.extend(of_sites(sessions.c.site_id, where.site_id))
    if where.agent is not None:
        conditions.append(sessions.c.agent_email == where.agent)
    if where.channel is not None:
        conditions.append(sessions.c.channel == where.channel)
    if where.outcome is not None:
        conditions.append(outcome_condition(where.outcome, now_ms, timeouts))
    if where.customer is not None:
        conditions.append(
            or_(
                sessions.c.customer_mobile.in_(where.customer),
                sessions.c.customer_user_id.in_(where.customer),
            )
        )
    if after is not None:
        conditions.append(tuple_(sessions.c.started_at, sessions.c.id) < tuple_(after[0], after[1]))
    query = query.where(*conditions).order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execution_options(yield_per=1000).execute(query).mappings()
    # The joined legs come from a second connection: the first is busy streaming the sessions.
    with conn.engine.connect() as links:
        for row, link in linked(links, rows):
            record = session_record({**row, "site_name": names.get(row["site_id"])}, timeouts, now_ms, link)
            yield record, (row["started_at"], row["id"])


def session_detail(
    conn: Connection, session_id: str, *, now_ms: int, timeouts: Timeouts, sites: SiteIds = None
) -> dict[str, Any] | None:
    """One session as its record, with its timeline (its raw hash events and its actions, in time order)
    and the CCC record of the leg it was joined to. With ``sites``, a session of another site is None (not
    there, as far as the caller can tell), and the joined record only when its app belongs to one of them."""
    found = sessions_with_sites(conn, [session_id], sites)
    if not found:
        return None
    (row,) = found
    link = call_links(conn, [session_id]).get(session_id)
    timeline = session_timeline(conn, row)
    timeline.sort(key=lambda item: (item[0], item[1], item[2]["id"]))
    visible = link is not None and (sites is None or link.sdk_app_id in apps_of_site(conn, sites))
    call = call_of(conn, link.sdk_app_id, link.session_id) if link is not None and visible else None
    return {
        **session_record(row, timeouts, now_ms, link),
        "timeline": [item for _, _, item in timeline],
        "call": call,
    }


def sessions_with_sites(conn: Connection, session_ids: list[str], only: SiteIds = None) -> list[Any]:
    query = (
        select(sessions, sites.c.name.label("site_name"))
        .join(sites, sites.c.id == sessions.c.site_id)
        .where(sessions.c.id.in_(session_ids), *of_sites(sessions.c.site_id, only))
    )
    return list(conn.execute(query).mappings())


TimelineItem = tuple[int, int, dict[str, Any]]  # (ms, order among equal times, the item)


def session_timeline(conn: Connection, row: Any) -> list[TimelineItem]:
    """A session's raw hash events and actions, with their times (unsorted)."""
    session_id = row["id"]
    timeline: list[TimelineItem] = []
    event_query = (
        select(events, hash_events.c.status)
        .join(
            hash_events,
            and_(hash_events.c.site_id == events.c.site_id, hash_events.c.event_id == events.c.event_id),
        )
        .where(hash_events.c.session_id == session_id, hash_events.c.site_id == row["site_id"])
    )
    for found in conn.execute(event_query).mappings():
        timeline.append(
            (
                found["event_at"],
                0,
                {
                    "kind": "event",
                    "at": iso(found["event_at"]),
                    "id": found["event_id"],
                    "type": found["type"],
                    "status": found["status"],
                    "page_id": found["page_id"],
                    "seq": found["seq"],
                    "ts_flag": found["ts_flag"],
                    "raw": StoredJson(found["raw"]),
                },
            )
        )
    action_query = select(actions).where(
        actions.c.session_id == session_id, actions.c.site_id == row["site_id"]
    )
    for found in conn.execute(action_query).mappings():
        timeline.append((found["at"], 1, {"kind": "action", **action_record(found, row["site_name"])}))
    return timeline
