"""GET /v1/analytics/calls: CCC's inbound call records per local-time bucket (by StartTimestamp), per
queued skill group and in total: offered, answered, abandoned (where), no agent, after hours, the queue's
service level, ASA and queue times, transfers, who hung up and the satisfaction keys (docs/metrics.md,
"Calls"). It sums rollups (projection/call_rollups.py) for the whole quarter hours (or hours) inside the
range and the records themselves for the slivers at its edges, through the same partial sums, so a report
reads the same whichever way its range falls. An agent's report reads the agent's records on their index."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from service.contract.queries import CallsReportQuery
from service.domain.buckets import HOUR_MS, Bucket, bucket_count_bound, buckets, days, hours, quarters
from service.domain.call_metrics import ALL_APPS, CallAccumulator, cells_of
from service.domain.instants import iso
from service.http.responses import JSONResponse
from service.projection import call_rollups
from service.reports.call_records import apps_of_site
from service.reports.filters import split_window
from service.reports.params import MAX_BUCKETS
from service.reports.serving import in_thread, report_request


@dataclass(frozen=True)
class CallsFilter:
    """Which call records the report covers: inbound, starting in [start, end), and the filters. ``apps``
    None means every app; a site's filter names its apps (maybe none)."""

    start_ms: int
    end_ms: int
    apps: tuple[int, ...] | None = None
    channel: str | None = None
    agent: str | None = None
    skill_group: int | None = None


async def calls_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await report_request(request)
    query = params.read(CallsReportQuery)
    if not params.problems and bucket_count_bound(start, end, query.interval) > MAX_BUCKETS:
        params.problem(
            "interval", f"the range makes more than {MAX_BUCKETS} buckets: choose a longer interval"
        )
    params.done()

    def report() -> dict[str, Any]:
        site_id = resolve_site()
        apps: tuple[int, ...] | None = None
        if site_id is not None:
            with state.read_engine.connect() as conn:
                apps = apps_of_site(conn, site_id)
        scope = CallsFilter(start, end, apps, query.channel, query.agent, query.skill_group)
        report_buckets = buckets(start, end, query.interval, query.tz)
        per_bucket, totals, groups = calls(state.read_engine, scope, report_buckets, query.service_level_s)
        return {
            "interval": query.interval,
            "tz": query.tz.key,
            "from": iso(start),
            "to": iso(end),
            "service_level_s": query.service_level_s,
            "totals": totals,
            "buckets": [
                {"start": b.label, **figures} for b, figures in zip(report_buckets, per_bucket, strict=True)
            ],
            "by_skill_group": [
                {"skill_group_id": group, "skill_group_name": name, **figures}
                for group, name, figures in groups
            ],
        }

    return JSONResponse(await in_thread(report))


def calls(
    engine: Engine,
    scope: CallsFilter,
    report_buckets: Sequence[Bucket],
    service_level_s: int,
    *,
    use_rollups: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any], list[tuple[int | None, str | None, dict[str, Any]]]]:
    """(figures per bucket, totals, (skill group id, name, figures) per skill group). ``use_rollups=False``
    reads every record (the tests hold the two ways to the same answer)."""
    accumulator = CallAccumulator(len(report_buckets))
    starts = [b.lo_ms for b in report_buckets]
    if scope.apps == ():
        return accumulator.report(service_level_s)

    def bucket_of(ms: int) -> int:
        return bisect.bisect_right(starts, ms) - 1

    filters: dict[str, Any] = {
        "apps": scope.apps, "channel": scope.channel, "skill_group": scope.skill_group
    }  # fmt: skip

    def add_raw(lo: int, hi: int) -> None:
        with engine.connect() as conn:
            rows = call_rollups.records(conn, lo, hi, agent=scope.agent, **filters)
            accumulator.add(cells_of(call_rollups.raw_cells(rows, bucket_of)))

    if scope.agent is not None or not use_rollups:
        # The rollups are not per agent; one agent's month is a few thousand records on an index.
        add_raw(scope.start_ms, scope.end_ms)
        return accumulator.report(service_level_s)

    edges, first, last = split_window(scope.start_ms, scope.end_ms, quarters(scope.start_ms, scope.end_ms))
    first_hour, last_hour = hours(first, last)
    # The buckets read rows of all skill groups together: quarters, or hours when every bucket boundary is
    # on a UTC hour (hour, day and week buckets in zones whole hours from UTC; zones a half or three
    # quarters off UTC read quarters).
    by_hour = first_hour < last_hour and all(b % HOUR_MS == 0 for b in starts[1:])
    bucket_spans = _pieces(first, last, (first_hour, last_hour) if by_hour else None, None)
    # The skill groups' figures need no buckets: whole UTC days, the hours and quarters around them.
    first_day, last_day = days(first_hour, last_hour) if first_hour < last_hour else (0, 0)
    group_spans = _pieces(
        first,
        last,
        (first_hour, last_hour) if first_hour < last_hour else None,
        (first_day, last_day) if first_day < last_day else None,
    )
    if first < last:
        # Without a site, the rows of all apps together (ALL_APPS), which rebuild their apps' dirty hours.
        apps = (ALL_APPS,) if scope.apps is None else scope.apps
        ranges: list[tuple[call_rollups.Span, int, int]] = [("hour", first, last)]
        if first_day < last_day:
            ranges.insert(0, ("day", first_day, last_day))
        call_rollups.refresh_ranges(engine, ranges, apps)
        pieces = [(span, lo, hi, False) for span, lo, hi in bucket_spans]
        pieces += [(span, lo, hi, True) for span, lo, hi in group_spans]
        with engine.connect() as conn:
            found = call_rollups.stored_cells(conn, pieces, starts, **filters)
        for (*_, per_group), cells in zip(pieces, found, strict=True):
            accumulator.add(cells, buckets=not per_group, groups=per_group)
    for lo, hi in edges:
        add_raw(lo, hi)
    return accumulator.report(service_level_s)


def _pieces(
    first: int, last: int, whole_hours: tuple[int, int] | None, whole_days: tuple[int, int] | None
) -> list[tuple[str, int, int]]:
    """[first, last) (whole quarters) as days inside, hours around them, quarters at the ends."""
    if whole_hours is None:
        pieces = [("quarter", first, last)]
    else:
        first_hour, last_hour = whole_hours
        middle = [("hour", first_hour, last_hour)]
        if whole_days is not None:
            first_day, last_day = whole_days
            middle = [
                ("hour", first_hour, first_day),
                ("day", first_day, last_day),
                ("hour", last_day, last_hour),
            ]
        pieces = [("quarter", first, first_hour), *middle, ("quarter", last_hour, last)]
    return [piece for piece in pieces if piece[1] < piece[2]]
