"""GET /v1/quality: how much of what happened in the browser reached us, how sessions had to be inferred,
and what is held back (dead letters, quarantine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, or_, select
from starlette.requests import Request
from starlette.responses import Response

from service.domain.instants import iso, now_ms
from service.domain.sessions import Timeouts
from service.http.responses import JSONResponse
from service.projection.statements import SiteIds, of_sites
from service.reports.serving import in_thread, report_request, share
from service.storage.schema import events, projection_failures, quarantined_events, sessions


@dataclass(frozen=True)
class PageQuality:
    site_id: int
    page_id: str
    events: int
    last_seq: int
    missing: int  # seqs from 1 to the last one seen that never arrived: lost between browser and server
    repeated_seqs: int  # events stored under a seq another event of the page already had (a shim fault)


@dataclass(frozen=True)
class QualitySummary:
    events: int
    pages: int
    pages_with_gaps: int
    missing_events: int
    sessions: int
    duplicate_events: int  # repeated statuses folded into sessions (reloads, second tabs)
    closed_by_timeout: int  # stored so, or open and unheard past the timeout as of now
    closed_by_supersession: int
    observed_mid_session: int


def page_quality(
    conn: Connection, *, site_id: SiteIds = None, start_ms: int | None = None, end_ms: int | None = None
) -> list[PageQuality]:
    """Per page with an event in the window, its whole history: events stored and seqs missing."""
    in_window = select(events.c.site_id, events.c.page_id).distinct()
    in_window = in_window.where(*of_sites(events.c.site_id, site_id))
    if start_ms is not None:
        in_window = in_window.where(events.c.event_at >= start_ms)
    if end_ms is not None:
        in_window = in_window.where(events.c.event_at < end_ms)
    pages = in_window.subquery()
    query = (
        select(
            events.c.site_id,
            events.c.page_id,
            func.count().label("stored"),
            func.count(func.distinct(events.c.seq)).label("seen"),
            func.max(events.c.seq).label("last_seq"),
        )
        .join(pages, and_(pages.c.site_id == events.c.site_id, pages.c.page_id == events.c.page_id))
        .group_by(events.c.site_id, events.c.page_id)
        .order_by(events.c.site_id, events.c.page_id)
    )
    return [
        PageQuality(
            row.site_id, row.page_id, row.stored, row.last_seq, row.last_seq - row.seen, row.stored - row.seen
        )
        for row in conn.execute(query)
    ]


def quality_summary(
    conn: Connection,
    *,
    now_ms: int,
    timeouts: Timeouts,
    site_id: SiteIds = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    pages: list[PageQuality] | None = None,
) -> QualitySummary:
    """``pages``: page_quality of the same window, when the caller has it already."""
    if pages is None:
        pages = page_quality(conn, site_id=site_id, start_ms=start_ms, end_ms=end_ms)
    # The same read-time view as the session records: an open session unheard past its timeout has ended.
    timed_out = or_(
        sessions.c.end_source == "timeout",
        and_(
            sessions.c.ended_at.is_(None),
            sessions.c.connected_at.is_(None),
            sessions.c.last_event_at < now_ms - timeouts.ringing_ms,
        ),
        and_(
            sessions.c.ended_at.is_(None),
            sessions.c.connected_at.is_not(None),
            sessions.c.last_event_at < now_ms - timeouts.connected_ms,
        ),
    )
    query = select(
        func.count(),
        func.coalesce(func.sum(sessions.c.duplicate_count), 0),
        func.coalesce(func.sum(case((timed_out, 1), else_=0)), 0),
        func.coalesce(func.sum(case((sessions.c.end_source == "superseded", 1), else_=0)), 0),
        func.coalesce(func.sum(case((sessions.c.observed_from != 100, 1), else_=0)), 0),
    )
    query = query.where(*of_sites(sessions.c.site_id, site_id))
    if start_ms is not None:
        query = query.where(sessions.c.started_at >= start_ms)
    if end_ms is not None:
        query = query.where(sessions.c.started_at < end_ms)
    total, duplicates, by_timeout, superseded, mid = conn.execute(query).one()
    return QualitySummary(
        events=sum(p.events for p in pages),
        pages=len(pages),
        pages_with_gaps=sum(1 for p in pages if p.missing),
        missing_events=sum(p.missing for p in pages),
        sessions=int(total),
        duplicate_events=int(duplicates),
        closed_by_timeout=int(by_timeout),
        closed_by_supersession=int(superseded),
        observed_mid_session=int(mid),
    )


@dataclass(frozen=True)
class HeldBack:
    """Stored events that nothing derived includes: dead letters and the quarantine."""

    projection_failures: int  # stored, but their projection failed (projection/dead_letters.py)
    quarantined_events: int  # moved out of the log by `calltrail quarantine`


def held_back(
    conn: Connection, *, site_id: SiteIds = None, start_ms: int | None = None, end_ms: int | None = None
) -> HeldBack:
    """Dead letters and quarantined events of the window (by the events' corrected time)."""

    def window(site_column: Any, at_column: Any) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        conditions.extend(of_sites(site_column, site_id))
        if start_ms is not None:
            conditions.append(at_column >= start_ms)
        if end_ms is not None:
            conditions.append(at_column < end_ms)
        return conditions

    failed = (
        select(func.count())
        .select_from(projection_failures.join(events, events.c.id == projection_failures.c.id))
        .where(*window(events.c.site_id, events.c.event_at))
    )
    quarantined = (
        select(func.count())
        .select_from(quarantined_events)
        .where(*window(quarantined_events.c.site_id, quarantined_events.c.event_at))
    )
    return HeldBack(int(conn.execute(failed).scalar_one()), int(conn.execute(quarantined).scalar_one()))


async def quality_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await report_request(request)
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
            "from": iso(start),
            "to": iso(end),
            "events": summary.events,
            "pages": summary.pages,
            "pages_with_gaps": summary.pages_with_gaps,
            "missing_events": summary.missing_events,
            "loss_rate": share(summary.missing_events, summary.events + summary.missing_events),
            "sessions": sessions,
            "duplicate_events": summary.duplicate_events,
            "duplicate_rate": share(summary.duplicate_events, summary.events),
            "closed_by_timeout": summary.closed_by_timeout,
            "closed_by_timeout_share": share(summary.closed_by_timeout, sessions),
            "closed_by_supersession": summary.closed_by_supersession,
            "closed_by_supersession_share": share(summary.closed_by_supersession, sessions),
            "observed_mid_session": summary.observed_mid_session,
            "observed_mid_session_share": share(summary.observed_mid_session, sessions),
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

    return JSONResponse(await in_thread(read))
