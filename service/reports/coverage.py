"""GET /v1/coverage: did the pop-up see every answered call? CCC's agent legs answered in the range, each
joined to the page session that showed it or not (projection/call_join.py), and the page sessions no leg
joined; the unseen legs a keyset page at a time, newest first (docs/coverage.md).

What is in scope: the registered CCC apps (with ``site``, the apps tied to that site in ``ccc_app_sites``,
and only that site's page sessions). A page session counts as ``page_only`` only where its app's records
exist: within the span of the app's call records of a channel the session's channel can show, started in
the range, widened by the join tolerance on each side (``covered_spans``). So a range before the first push,
an app that pushes phone CDRs only, or the last minutes whose pushes have not arrived yet do not read as
sessions CCC never had.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, or_, select, tuple_
from starlette.requests import Request
from starlette.responses import Response

from service.contract.queries import CoverageQuery
from service.domain.instants import iso
from service.http.responses import JSONResponse
from service.projection.statements import SiteIds, of_sites
from service.reports.call_records import apps_of_site
from service.reports.serving import in_thread, keyset_page, report_request
from service.storage.schema import call_legs, call_records, sessions

COUNTS = ("answered_legs", "seen", "unseen", "ambiguous", "page_only")
# The page's `type` values that can show a record of each CCC channel (domain/call_join.py's table, turned
# around); a session without a type can show any.
PAGE_TYPES_OF = {"phone": ("phone", "om"), "chat": ("im", "oim"), "video": ("om", "oim")}


@dataclass(frozen=True)
class CoverageScope:
    start_ms: int
    end_ms: int
    apps: tuple[int, ...]  # the SdkAppIds in scope
    site_id: SiteIds = None
    agent: str | None = None
    tolerance_ms: int = 60_000


async def coverage_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await report_request(request)
    query = params.read(CoverageQuery)
    params.done()
    after = None if query.cursor is None else tuple(query.cursor)
    tolerance_ms = state.join_rules.tolerance_ms

    def build() -> dict[str, Any]:
        site_id = resolve_site()
        with state.read_engine.connect() as conn:
            scope = CoverageScope(
                start, end, apps_in_scope(conn, site_id), site_id, query.agent, tolerance_ms
            )
            by_agent = coverage_by_agent(conn, scope)
            page = keyset_page(
                unseen_legs(conn, scope, after=after, limit=query.limit + 1), query.limit, "unseen"
            )
        totals = {name: sum(row[name] for row in by_agent) for name in COUNTS}
        return {"from": iso(start), "to": iso(end), "totals": totals, "by_agent": by_agent, **page}

    return JSONResponse(await in_thread(build))


def apps_in_scope(conn: Connection, site_id: SiteIds) -> tuple[int, ...]:
    """The registered apps' SdkAppIds; with sites, those tied to them."""
    return apps_of_site(conn, site_id)


def _answered(scope: CoverageScope) -> list[ColumnElement[bool]]:
    # The range (or the agent) is what narrows legs down, not the app (a handful, each with every leg of
    # all time): `sdk_app_id + 0` keeps a planner without statistics (SQLite's) from walking the primary
    # key by app instead of the (accept_at, ...) index.
    conditions = [
        call_legs.c.accept_at >= scope.start_ms,
        call_legs.c.accept_at < scope.end_ms,
        (call_legs.c.sdk_app_id + 0).in_(scope.apps),
    ]
    if scope.agent is not None:
        conditions.append(call_legs.c.agent_email == scope.agent)
    return conditions


def coverage_by_agent(conn: Connection, scope: CoverageScope) -> list[dict[str, Any]]:
    """Per agent (by email, no email last): answered legs by join state, and page-only sessions."""
    counts: dict[str | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    if not scope.apps:
        return []
    legs = (
        select(call_legs.c.agent_email, call_legs.c.join_state, func.count().label("n"))
        .where(*_answered(scope))
        .group_by(call_legs.c.agent_email, call_legs.c.join_state)
    )
    for agent, join_state, n in conn.execute(legs):
        row = counts[agent]
        row["answered_legs"] += n
        row[{"joined": "seen", "ambiguous": "ambiguous"}.get(join_state, "unseen")] += n
    for agent, n in page_only(conn, scope):
        counts[agent]["page_only"] += n
    ordered = sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return [{"agent_email": agent, **row} for agent, row in ordered]


def covered_spans(conn: Connection, scope: CoverageScope) -> dict[int, list[tuple[str, int, int]]]:
    """Per app, per channel of its call records started in the range: [first - tolerance, last + tolerance]
    cut to the range, where a page session missing from CCC's records means something."""
    query = (
        select(
            call_records.c.sdk_app_id,
            call_records.c.channel,
            func.min(call_records.c.sort_at),
            func.max(call_records.c.sort_at),
        )
        .where(
            call_records.c.sdk_app_id.in_(scope.apps),
            call_records.c.sort_at >= scope.start_ms,
            call_records.c.sort_at < scope.end_ms,
        )
        .group_by(call_records.c.sdk_app_id, call_records.c.channel)
    )
    spans: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
    for app, channel, first, last in conn.execute(query):
        low = max(scope.start_ms, first - scope.tolerance_ms)
        high = min(scope.end_ms, last + scope.tolerance_ms + 1)  # exclusive
        spans[int(app)].append((channel, low, high))
    return spans


def page_only(conn: Connection, scope: CoverageScope) -> Iterator[tuple[str | None, int]]:
    """Per agent, page sessions offered within a covered span of their app with no leg joined to them.

    One query per app, on the (sdk_app_id, offered_at) index; the page keeps the SdkAppId as text."""
    joined = exists().where(call_legs.c.page_session_id == sessions.c.id, call_legs.c.join_state == "joined")
    for app, spans in sorted(covered_spans(conn, scope).items()):
        terms = []
        for channel, low, high in spans:
            types = PAGE_TYPES_OF.get(channel, ())
            terms.append(
                and_(
                    sessions.c.offered_at >= low,
                    sessions.c.offered_at < high,
                    or_(sessions.c.channel.in_(types), sessions.c.channel.is_(None)),
                )
            )
        conditions = [
            sessions.c.sdk_app_id == str(app),
            sessions.c.offered_at >= min(low for _, low, _ in spans),
            sessions.c.offered_at < max(high for _, _, high in spans),
            or_(*terms),
            ~joined,
        ]
        conditions.extend(of_sites(sessions.c.site_id, scope.site_id))
        if scope.agent is not None:
            conditions.append(sessions.c.agent_email == scope.agent)
        query = (
            select(sessions.c.agent_email, func.count()).where(*conditions).group_by(sessions.c.agent_email)
        )
        yield from ((agent, n) for agent, n in conn.execute(query))


def unseen_legs(
    conn: Connection, scope: CoverageScope, *, after: Sequence[Any] | None, limit: int
) -> Iterator[tuple[dict[str, Any], tuple[int, int, str, int]]]:
    """Answered legs without a candidate page session, newest first by (accept, app, session, leg)."""
    if not scope.apps:
        return
    key = (call_legs.c.accept_at, call_legs.c.sdk_app_id, call_legs.c.session_id, call_legs.c.leg)
    conditions = [*_answered(scope), call_legs.c.join_state.is_(None)]
    if after is not None:
        conditions.append(tuple_(*key) < tuple_(*after))
    query = (
        select(*key, call_legs.c.agent_email, call_legs.c.channel)
        .where(*conditions)
        .order_by(*(column.desc() for column in key))
        .limit(limit)
    )
    for row in conn.execute(query).mappings():
        record = {
            "session_id": row["session_id"],
            "sdk_app_id": int(row["sdk_app_id"]),
            "leg": row["leg"],
            "agent_email": row["agent_email"],
            "channel": row["channel"],
            "accept_at": iso(row["accept_at"]),
        }
        yield record, (row["accept_at"], int(row["sdk_app_id"]), row["session_id"], row["leg"])
