"""GET /v1/analytics/inbound: offered, answered and abandoned contacts per bucket, service level and ring
and talk times (docs/metrics.md). It sums rollups (projection/rollups.py) for the whole spans inside the
range and the sessions themselves for the slivers at its edges, through the same partial sums, so a report
reads the same whichever way its range falls."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine
from starlette.requests import Request
from starlette.responses import Response

from service.contract.queries import InboundQuery
from service.domain.buckets import (
    HOUR_MS,
    Bucket,
    bucket_count_bound,
    buckets,
    hours,
    quarters,
)
from service.domain.formulas import InboundAccumulator, InboundPartial, Thresholds
from service.domain.instants import iso
from service.http.responses import JSONResponse
from service.projection import partials, rollups
from service.reports.filters import ReportFilter, split_window
from service.reports.params import MAX_BUCKETS
from service.reports.serving import in_thread, report_request


async def inbound_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await report_request(request)
    query = params.read(InboundQuery)
    interval, zone, channel, agent = query.interval, query.tz, query.channel, query.agent
    thresholds = Thresholds(service_level_s=query.service_level_s, short_abandon_s=query.short_abandon_s)
    if not params.problems and bucket_count_bound(start, end, interval) > MAX_BUCKETS:
        params.problem(
            "interval", f"the range makes more than {MAX_BUCKETS} buckets: choose a longer interval"
        )
    params.done()

    def report() -> dict[str, Any]:
        scope = ReportFilter(start, end, resolve_site(), channel, agent)
        report_buckets = buckets(start, end, interval, zone)
        per_bucket, totals = inbound(state.read_engine, scope, report_buckets, thresholds)
        return {
            "interval": interval,
            "tz": zone.key,
            "from": iso(start),
            "to": iso(end),
            "service_level_s": thresholds.service_level_s,
            "short_abandon_s": thresholds.short_abandon_s,
            "totals": totals,
            "buckets": [
                {"start": b.label, **figures} for b, figures in zip(report_buckets, per_bucket, strict=True)
            ],
        }

    return JSONResponse(await in_thread(report))


def inbound(
    engine: Engine, scope: ReportFilter, report_buckets: Sequence[Bucket], thresholds: Thresholds
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    accumulator = InboundAccumulator(len(report_buckets))
    starts = [b.lo_ms for b in report_buckets]

    def bucket_of(ms: int) -> int:
        return bisect.bisect_right(starts, ms) - 1

    def add_raw(conn: Connection, lo: int, hi: int) -> None:
        found = partials.inbound_partials(
            conn, lo, hi, site_id=scope.site_id, agent=scope.agent, channel=scope.channel
        )
        by_bucket: dict[int, InboundPartial] = defaultdict(InboundPartial)
        for (started_at, _channel), partial in found.items():
            by_bucket[bucket_of(started_at)].merge(partial)
        for index, partial in by_bucket.items():
            accumulator.add_partial(index, partial)

    if scope.agent is not None:
        # The rollups are not per agent; one agent's month is a few thousand sessions on an index.
        with engine.connect() as conn:
            add_raw(conn, scope.start_ms, scope.end_ms)
        return accumulator.report(thresholds)

    edges, first, last = split_window(scope.start_ms, scope.end_ms, quarters(scope.start_ms, scope.end_ms))
    spans: list[tuple[str, int, int]] = [("quarter", first, last)] if first < last else []
    # Hour rows serve when every bucket boundary is on an hour (hour, day and week buckets in zones whole
    # hours from UTC) and no channel is filtered on; quarters fill the ends.
    first_hour, last_hour = hours(first, last)
    if (
        spans
        and scope.channel is None
        and first_hour < last_hour
        and all(b % HOUR_MS == 0 for b in starts[1:])
    ):
        spans = [
            ("quarter", first, first_hour),
            ("hour", first_hour, last_hour),
            ("quarter", last_hour, last),
        ]
        spans = [piece for piece in spans if piece[1] < piece[2]]
    if spans:
        rollups.refresh(engine, "hour", first, last, scope.site_id)
    bucket_starts = np.array(starts)
    with engine.connect() as conn:
        for span, lo, hi in spans:
            rows = rollups.stored_inbound(conn, span, lo, hi, scope.site_id, scope.channel)
            owners = np.searchsorted(bucket_starts, np.array([row[0] for row in rows]), side="right") - 1
            accumulator.add_stored(owners.tolist(), [row[1:] for row in rows])
        for lo, hi in edges:
            add_raw(conn, lo, hi)
    return accumulator.report(thresholds)
