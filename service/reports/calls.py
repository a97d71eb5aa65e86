"""GET /v1/calls and /v1/calls/{sdk_app_id}/{session_id}: CCC's call records, newest first by keyset pages
(as sessions are), and one call with its legs, its joined page sessions and one timeline from the IVR to
the hang-up: CCC's moments, the page's events and the agent's actions (docs/call-records.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from service.contract.queries import CallsQuery
from service.domain.call_records import decimal_id
from service.domain.instants import iso, now_ms
from service.domain.numbers import normalise_number
from service.domain.sessions import Timeouts
from service.http.audit import note_rows
from service.http.errors import ApiError
from service.http.responses import JSONResponse
from service.projection.statements import SiteIds
from service.reports.call_records import (
    CALL_FIELDS,
    CALL_PHONE_FIELDS,
    CallFilter,
    apps_of_site,
    call_page,
    call_record,
    call_row,
    leg_record,
    legs_of,
)
from service.reports.params import Params, time_range
from service.reports.records import call_links, session_record
from service.reports.serving import allowed_sites, export, in_thread, keyset_page, reader, site_filter
from service.reports.sessions import TimelineItem, session_timeline, sessions_with_sites

SESSION_ID_TEXT = re.compile(r"[\x21-\x7e]{1,128}")
MAX_SDK_APP_ID_DIGITS = 18


async def list_calls(request: Request) -> Response:
    state = await reader(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=None)
    resolve_site = site_filter(request, params)
    query = params.read(CallsQuery)
    params.done()
    customers = None
    if query.customer is not None:
        # Stored numbers are normalised, then went through the PII policy: look for every form.
        given, national = query.customer, normalise_number(query.customer)
        customers = tuple(sorted({given, national, state.pii.protect(given), state.pii.protect(national)}))
    after = None if query.cursor is None else (query.cursor[0], query.cursor[1], query.cursor[2])

    def where() -> CallFilter:
        site_id = resolve_site()
        apps = None
        if site_id is not None:
            # The records of the apps tied to these sites (an app tied to no site: unscoped keys only).
            with state.read_engine.connect() as conn:
                apps = apps_of_site(conn, site_id)
        return CallFilter(
            start,
            end,
            apps,
            query.agent,
            query.channel,
            query.direction,
            query.skill_group,
            query.end_status,
            customers,
            query.seen,
        )

    if query.format != "json":
        filters = await in_thread(where)

        def records() -> Iterator[dict[str, Any]]:
            with state.read_engine.connect() as conn:
                for record, _ in call_page(conn, filters, after=after, limit=None):
                    yield record

        return export(records, CALL_FIELDS, query.format, "calls", CALL_PHONE_FIELDS)

    def page() -> dict[str, Any]:
        filters = where()
        with state.read_engine.connect() as conn:
            return keyset_page(
                call_page(conn, filters, after=after, limit=query.limit + 1), query.limit, "calls"
            )

    found = await in_thread(page)
    note_rows(request, len(found["calls"]))
    return JSONResponse(found)


async def get_call(request: Request) -> Response:
    state = await reader(request)
    app_text, session_id = request.path_params["sdk_app_id"], request.path_params["session_id"]
    timeouts = state.timeouts
    allowed = allowed_sites(request)

    app_id = decimal_id(app_text, MAX_SDK_APP_ID_DIGITS)

    def read() -> dict[str, Any] | None:
        assert app_id is not None
        with state.read_engine.connect() as conn:
            return call_detail(conn, app_id, session_id, now_ms=now_ms(), timeouts=timeouts, sites=allowed)

    readable = app_id is not None and SESSION_ID_TEXT.fullmatch(session_id)
    found = await in_thread(read) if readable else None
    if found is None:
        raise ApiError(
            404, "not_found", f"no call record has the SdkAppId {app_text!r} and SessionId {session_id!r}"
        )
    note_rows(request, 1)
    return JSONResponse(found)


def call_detail(
    conn: Connection,
    sdk_app_id: int,
    session_id: str,
    *,
    now_ms: int,
    timeouts: Timeouts,
    sites: SiteIds = None,
) -> dict[str, Any] | None:
    """The call, its legs and recordings, its joined page sessions, and one timeline of all three. With
    ``sites``, a call of an app tied to none of them is None, and only their page sessions are shown."""
    if sites is not None and sdk_app_id not in apps_of_site(conn, sites):
        return None
    row = call_row(conn, sdk_app_id, session_id)
    if row is None:
        return None
    legs = legs_of(conn, [(sdk_app_id, session_id)]).get((sdk_app_id, session_id), [])
    page_ids = [leg["page_session_id"] for leg in legs if leg["page_session_id"] is not None]
    page_rows = {page["id"]: page for page in sessions_with_sites(conn, page_ids, sites)} if page_ids else {}
    links = call_links(conn, page_rows)
    timeline = _milestones(row, legs)
    for page in page_rows.values():
        timeline.extend(session_timeline(conn, page))
    timeline.sort(key=lambda item: (item[0], item[1], str(item[2].get("id", ""))))
    return {
        **call_record(row, legs),
        "legs": [leg_record(leg) for leg in legs],
        "recordings": orjson.loads(row["recordings"]),
        "sessions": [
            session_record(page_rows[sid], timeouts, now_ms, links.get(sid))
            for sid in page_ids
            if sid in page_rows
        ],
        "timeline": [item for _, _, item in timeline],
    }


def _milestones(row: Any, legs: list[Any]) -> list[TimelineItem]:
    """CCC's moments of the call; order -1 puts each before a page event of the same millisecond."""

    def item(at: int | None, event: str, leg: Any = None, detail: str | None = None) -> list[TimelineItem]:
        if at is None:
            return []
        return [
            (
                at,
                -1,
                {
                    "kind": "call",
                    "at": iso(at),
                    "event": event,
                    "leg": None if leg is None else leg["leg"],
                    "agent_email": None if leg is None else leg["agent_email"],
                    "detail": detail,
                },
            )
        ]

    found = [*item(row["start_at"], "started"), *item(row["queued_at"], "queued")]
    for leg in legs:
        found += item(leg["ring_at"], "ringing", leg)
        found += item(leg["accept_at"], "answered", leg)
        found += item(leg["end_at"], "leg_ended", leg, leg["end_status"])
    found += item(row["end_at"], "ended", None, row["end_status"])
    return found
