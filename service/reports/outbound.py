"""GET /v1/analytics/outbound: callOut requests, and how many a session with that customer followed
within the window (docs/metrics.md)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import Engine, select
from starlette.requests import Request
from starlette.responses import Response

from service.contract.queries import OutboundQuery
from service.domain.instants import iso
from service.http.responses import JSONResponse
from service.reports.filters import ReportFilter, action_window
from service.reports.serving import in_thread, report_request
from service.storage.schema import sessions


async def outbound_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await report_request(request)
    query = params.read(OutboundQuery)
    agent, window_s = query.agent, query.follow_window_s
    params.done()

    def report() -> dict[str, Any]:
        scope = ReportFilter(start, end, resolve_site(), agent=agent)
        return {
            "from": iso(start),
            "to": iso(end),
            **outbound(state.read_engine, scope, window_s * 1000),
        }

    return JSONResponse(await in_thread(report))


def outbound(engine: Engine, scope: ReportFilter, follow_window_ms: int) -> dict[str, Any]:
    """callOut requests, and how many were followed by a session of the same site with the same customer
    number that started within the window after the request."""
    per_agent: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    requests: list[tuple[str | None, int, tuple[int, str] | None]] = []
    with engine.connect() as conn:
        for row in conn.execute(action_window(scope, ["call_out"])):
            number = _number(orjson.loads(row.details).get("phone_number"))
            requests.append((row.agent_email, row.at, (row.site_id, number) if number else None))
        numbers = sorted({n for _, _, n in requests if n})
        seen: dict[tuple[int, str], list[int]] = defaultdict(list)
        for chunk_start in range(0, len(numbers), 500):
            chunk = numbers[chunk_start : chunk_start + 500]
            query = select(sessions.c.site_id, sessions.c.customer_mobile, sessions.c.started_at).where(
                sessions.c.customer_mobile.in_(sorted({n for _, n in chunk})),
                sessions.c.site_id.in_(sorted({s for s, _ in chunk})),
                sessions.c.started_at >= scope.start_ms,
                sessions.c.started_at < scope.end_ms + follow_window_ms,
            )
            for row in conn.execute(query):
                seen[(row.site_id, row.customer_mobile)].append(row.started_at)
    for times in seen.values():
        times.sort()
    followed_total = 0
    for agent, at, key in requests:
        counts = per_agent[agent]
        counts[0] += 1
        times = seen.get(key, []) if key else []
        i = bisect.bisect_left(times, at)
        if i < len(times) and times[i] <= at + follow_window_ms:
            counts[1] += 1
            followed_total += 1
    total = len(requests)
    return {
        "call_outs": total,
        "followed_by_session": followed_total,
        "follow_rate": round(followed_total / total, 6) if total else None,
        "follow_window_s": follow_window_ms // 1000,
        "by_agent": [
            {
                "agent_email": agent,
                "call_outs": n,
                "followed_by_session": f,
                "follow_rate": round(f / n, 6) if n else None,
            }
            for agent, (n, f) in sorted(per_agent.items(), key=lambda kv: (-kv[1][0], kv[0] or ""))
        ],
    }


def _number(value: Any) -> str | None:
    """A callOut's phoneNumber as sessions store customer numbers: text (a page may post it as a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None
