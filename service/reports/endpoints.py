"""The read API: sessions, reports, the audit trail and live state, for a read or admin key."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from service.admin.registry import authenticate_key
from service.domain.buckets import INTERVALS, Interval, bucket_count_bound, buckets
from service.domain.ccc import CHANNELS
from service.domain.formulas import EXACT_THRESHOLD_MAX_S, Thresholds
from service.formats import Format, lines
from service.http.errors import ApiError
from service.http.responses import JSONResponse
from service.http.state import app_state
from service.reports import analytics, lists
from service.reports.freshness import FreshnessHeaderMiddleware, wait_for_projection
from service.reports.params import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_REPORT_DAYS,
    MAX_BUCKETS,
    MAX_PAGE_SIZE,
    Params,
    encode_cursor,
    now_ms,
    time_range,
)
from service.reports.quality import held_back, page_quality, quality_summary
from service.reports.records import ACTION_FIELDS, PHONE_FIELDS, SESSION_FIELDS, iso
from service.runtime import AppState

T = TypeVar("T")
RETRY_AFTER_S = 5
log = logging.getLogger("calltrail.http")
SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
OUTCOMES = ("answered", "not_answered", "ongoing", "unknown")
LIST_FORMATS = ("json", "csv", "ndjson")
DEFAULT_SERVICE_LEVEL_S = 20
DEFAULT_SHORT_ABANDON_S = 5
DEFAULT_FOLLOW_WINDOW_S = 600
AGENT_FIELDS = (
    "agent_email", "agent_nickname", "offered", "answered", "not_answered", "answer_rate", "talk_s_total",
    "talk_s_mean", "cards_sent", "call_outs", "peak_concurrent_chats",
)  # fmt: skip
EXPORT_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking database work off the event loop; a database that is down or locked (a long `calltrail
    rebuild` holds SQLite's write lock; a report may need to write its rollups) is a 503, not a crash."""
    try:
        return await run_in_threadpool(function, *args)
    except OperationalError:
        log.warning("query failed: the database is unreachable or locked", exc_info=True)
        raise _busy() from None


def _busy() -> ApiError:
    return ApiError(
        503,
        "unavailable",
        f"the database is busy or unreachable; retry after {RETRY_AFTER_S} s",
        headers={"retry-after": str(RETRY_AFTER_S)},
    )


async def _reader(request: Request) -> AppState:
    """The caller's key checked; then, before anything is read, every event already acknowledged projected
    (reports/freshness.py)."""
    state = app_state(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send a read or admin key as `Authorization: Bearer <key>` (see `calltrail keys create`)",
            headers={"www-authenticate": "Bearer"},
        )
    key = await _in_thread(authenticate_key, state.read_engine, token.strip())
    if key is None:
        raise ApiError(
            401, "unauthorized", "this key is unknown or revoked", headers={"www-authenticate": "Bearer"}
        )
    try:
        await wait_for_projection(request, state)
    except OperationalError:
        log.warning("waiting for the projection failed: the database is unreachable or locked", exc_info=True)
        raise _busy() from None
    return state


def _site(state: AppState, params: Params) -> Callable[[], int | None]:
    """The ``site`` filter, resolved later (in a worker thread) to an id; unknown names are a 400."""
    name = params.text("site", 200)

    def resolve() -> int | None:
        if name is None:
            return None
        with state.read_engine.connect() as conn:
            found = lists.site_id_of(conn, name)
        if found is None:
            raise ApiError(
                400,
                "invalid_parameter",
                f"no site is named {name!r}",
                [{"field": "site", "message": "no such site"}],
            )
        return found

    return resolve


async def _report_request(request: Request) -> tuple[AppState, Params, int, int, Callable[[], int | None]]:
    """What every report reads first: the key, the window (the last 7 days unless given) and the site."""
    state = await _reader(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=DEFAULT_REPORT_DAYS)
    assert start is not None and end is not None
    return state, params, start, end, _site(state, params)


def _format(params: Params) -> str:
    return params.choice("format", LIST_FORMATS, "json") or "json"


EXPORT_CHUNK_LINES = 500


def _in_chunks(text_lines: Iterator[str]) -> Iterator[str]:
    # A chunk per row costs a thread-pool hop and an ASGI send per row: a week of the benchmark center
    # (234,224 sessions as NDJSON) took 38.9 s that way, 7.0 s in chunks of 500 lines.
    chunk: list[str] = []
    for line in text_lines:
        chunk.append(line)
        if len(chunk) >= EXPORT_CHUNK_LINES:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)


def _export(
    records: Callable[[], Iterator[dict[str, Any]]], fields: tuple[str, ...], fmt: str, name: str
) -> Response:
    """Streams every row in constant memory; the generator runs in Starlette's thread pool."""
    return StreamingResponse(
        _in_chunks(lines(records(), fields, cast(Format, fmt), PHONE_FIELDS)),
        media_type=EXPORT_MEDIA_TYPES[fmt],
        headers={"content-disposition": f'attachment; filename="{name}.{fmt}"'},
    )


async def list_sessions(request: Request) -> Response:
    state = await _reader(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=None)
    resolve_site = _site(state, params)
    agent = params.text("agent")
    channel = params.choice("channel", sorted(CHANNELS))
    outcome = params.choice("outcome", OUTCOMES)
    customer = params.text("customer", 200)
    # Stored numbers went through the PII policy at ingestion: look for the number as given and as stored.
    customers = None if customer is None else tuple(sorted({customer, state.pii.protect(customer)}))
    limit = params.integer("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    fmt = _format(params)
    after = _session_cursor(params)
    params.done()
    timeouts = state.timeouts
    now = now_ms()

    def where() -> lists.SessionFilter:
        return lists.SessionFilter(
            start,
            end,
            resolve_site(),
            agent,
            channel,
            cast(lists.SessionOutcome | None, outcome),
            customers,
        )

    if fmt != "json":
        filters = await _in_thread(where)

        def records() -> Iterator[dict[str, Any]]:
            with state.read_engine.connect() as conn:
                for record, _ in lists.session_page(
                    conn, filters, now_ms=now, timeouts=timeouts, after=after, limit=None
                ):
                    yield record

        return _export(records, SESSION_FIELDS, fmt, "sessions")

    def page() -> dict[str, Any]:
        filters = where()
        with state.read_engine.connect() as conn:
            found = list(
                lists.session_page(conn, filters, now_ms=now, timeouts=timeouts, after=after, limit=limit + 1)
            )
        more = len(found) > limit
        found = found[:limit]
        return {
            "sessions": [record for record, _ in found],
            "next_cursor": encode_cursor(found[-1][1]) if more else None,
        }

    return JSONResponse(await _in_thread(page))


def _session_cursor(params: Params) -> tuple[int, str] | None:
    raw = params.cursor(("time", "id"))
    return None if raw is None else (raw[0], raw[1])


async def get_session(request: Request) -> Response:
    state = await _reader(request)
    session_id = request.path_params["session_id"]
    timeouts = state.timeouts

    def read() -> dict[str, Any] | None:
        with state.read_engine.connect() as conn:
            return lists.session_detail(conn, session_id, now_ms=now_ms(), timeouts=timeouts)

    # Session ids are UUIDs: anything else (a NUL, say, which PostgreSQL refuses) cannot name one.
    found = await _in_thread(read) if SESSION_ID.fullmatch(session_id) else None
    if found is None:
        raise ApiError(404, "not_found", f"no session has the id {session_id!r}")
    return JSONResponse(found)


def _thresholds(params: Params) -> Thresholds:
    limit = EXACT_THRESHOLD_MAX_S
    return Thresholds(
        service_level_s=params.integer("service_level_s", DEFAULT_SERVICE_LEVEL_S, 0, limit),
        short_abandon_s=params.integer("short_abandon_s", DEFAULT_SHORT_ABANDON_S, 0, limit),
    )


async def inbound_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await _report_request(request)
    interval = cast(Interval, params.choice("interval", INTERVALS, "hour"))
    zone = params.zone()
    channel = params.choice("channel", sorted(CHANNELS))
    agent = params.text("agent")
    thresholds = _thresholds(params)
    if not params.problems and bucket_count_bound(start, end, interval) > MAX_BUCKETS:
        params.problem(
            "interval", f"the range makes more than {MAX_BUCKETS} buckets: choose a longer interval"
        )
    params.done()

    def report() -> dict[str, Any]:
        scope = analytics.Scope(start, end, resolve_site(), channel, agent)
        report_buckets = buckets(start, end, interval, zone)
        per_bucket, totals = analytics.inbound(state.read_engine, scope, report_buckets, thresholds)
        return {
            "interval": interval,
            "tz": zone.key,
            "from": _iso(start),
            "to": _iso(end),
            "service_level_s": thresholds.service_level_s,
            "short_abandon_s": thresholds.short_abandon_s,
            "totals": totals,
            "buckets": [
                {"start": b.label, **figures} for b, figures in zip(report_buckets, per_bucket, strict=True)
            ],
        }

    return JSONResponse(await _in_thread(report))


async def agents_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await _report_request(request)
    channel = params.choice("channel", sorted(CHANNELS))
    fmt = _format(params)
    params.done()

    def rows() -> list[dict[str, Any]]:
        return analytics.agents(state.read_engine, analytics.Scope(start, end, resolve_site(), channel))

    found = await _in_thread(rows)
    if fmt != "json":
        return _export(lambda: iter(found), AGENT_FIELDS, fmt, "agents")
    return JSONResponse({"from": _iso(start), "to": _iso(end), "agents": found})


async def cards_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await _report_request(request)
    agent = params.text("agent")
    params.done()

    def report() -> dict[str, Any]:
        scope = analytics.Scope(start, end, resolve_site(), agent=agent)
        return {"from": _iso(start), "to": _iso(end), **analytics.cards(state.read_engine, scope)}

    return JSONResponse(await _in_thread(report))


async def outbound_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await _report_request(request)
    agent = params.text("agent")
    window_s = params.integer("follow_window_s", DEFAULT_FOLLOW_WINDOW_S, 1, 86400)
    params.done()

    def report() -> dict[str, Any]:
        scope = analytics.Scope(start, end, resolve_site(), agent=agent)
        return {
            "from": _iso(start),
            "to": _iso(end),
            **analytics.outbound(state.read_engine, scope, window_s * 1000),
        }

    return JSONResponse(await _in_thread(report))


async def audit(request: Request) -> Response:
    state = await _reader(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=None)
    resolve_site = _site(state, params)
    agent = params.text("agent")
    action = params.text("action", 64)
    limit = params.integer("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    fmt = _format(params)
    raw_cursor = params.cursor(("time", "site", "id"))
    after = None if raw_cursor is None else (raw_cursor[0], raw_cursor[1], raw_cursor[2])
    params.done()

    def where() -> lists.AuditFilter:
        return lists.AuditFilter(start, end, resolve_site(), agent, action)

    if fmt != "json":
        filters = await _in_thread(where)

        def records() -> Iterator[dict[str, Any]]:
            with state.read_engine.connect() as conn:
                for record, _ in lists.audit_page(conn, filters, after=after, limit=None):
                    yield record

        return _export(records, ACTION_FIELDS, fmt, "audit")

    def page() -> dict[str, Any]:
        filters = where()
        with state.read_engine.connect() as conn:
            found = list(lists.audit_page(conn, filters, after=after, limit=limit + 1))
        more = len(found) > limit
        found = found[:limit]
        return {
            "actions": [r for r, _ in found],
            "next_cursor": encode_cursor(found[-1][1]) if more else None,
        }

    return JSONResponse(await _in_thread(page))


async def live(request: Request) -> Response:
    state = await _reader(request)
    params = Params(request.query_params)
    resolve_site = _site(state, params)
    params.done()
    timeouts = state.timeouts

    def read() -> dict[str, Any]:
        return analytics.live(state.read_engine, now_ms(), timeouts, resolve_site())

    return JSONResponse(await _in_thread(read))


async def quality(request: Request) -> Response:
    state, params, start, end, resolve_site = await _report_request(request)
    params.done()
    timeouts = state.timeouts

    def read() -> dict[str, Any]:
        site_id = resolve_site()
        with state.read_engine.connect() as conn:
            pages = page_quality(conn, site_id=site_id, start_ms=start, end_ms=end)
            summary = quality_summary(
                conn,
                now_ms=now_ms(),
                timeouts=timeouts,
                site_id=site_id,
                start_ms=start,
                end_ms=end,
                pages=pages,
            )
            kept_out = held_back(conn, site_id=site_id, start_ms=start, end_ms=end)
        sessions = summary.sessions
        worst = sorted(
            (p for p in pages if p.missing or p.repeated_seqs), key=lambda p: (-p.missing, p.page_id)
        )
        return {
            "from": _iso(start),
            "to": _iso(end),
            "events": summary.events,
            "pages": summary.pages,
            "pages_with_gaps": summary.pages_with_gaps,
            "missing_events": summary.missing_events,
            "loss_rate": _share(summary.missing_events, summary.events + summary.missing_events),
            "sessions": sessions,
            "duplicate_events": summary.duplicate_events,
            "duplicate_rate": _share(summary.duplicate_events, summary.events),
            "closed_by_timeout": summary.closed_by_timeout,
            "closed_by_timeout_share": _share(summary.closed_by_timeout, sessions),
            "closed_by_supersession": summary.closed_by_supersession,
            "closed_by_supersession_share": _share(summary.closed_by_supersession, sessions),
            "observed_mid_session": summary.observed_mid_session,
            "observed_mid_session_share": _share(summary.observed_mid_session, sessions),
            "projection_failures": kept_out.projection_failures,
            "quarantined_events": kept_out.quarantined_events,
            "pages_with_problems": [
                {
                    "page_id": p.page_id,
                    "events": p.events,
                    "last_seq": p.last_seq,
                    "missing": p.missing,
                    "repeated_seqs": p.repeated_seqs,
                }
                for p in worst[:100]
            ],
        }

    return JSONResponse(await _in_thread(read))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _iso(ms: int | None) -> str | None:
    return iso(ms)


# Only the query routes wait for the projection and may carry its header; ingestion never pays for it.
_FRESHNESS = [Middleware(FreshnessHeaderMiddleware)]

routes = [
    Route("/v1/sessions", list_sessions, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/sessions/{session_id}", get_session, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/analytics/inbound", inbound_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/analytics/agents", agents_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/analytics/cards", cards_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/analytics/outbound", outbound_report, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/audit", audit, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/live", live, methods=["GET"], middleware=_FRESHNESS),
    Route("/v1/quality", quality, methods=["GET"], middleware=_FRESHNESS),
]
