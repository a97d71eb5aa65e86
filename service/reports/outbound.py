"""GET /v1/analytics/outbound: callOut requests, how many a session with that customer followed within the
window, and how many started a CCC outbound call record: placed, answered, its end status and talk time
(docs/metrics.md)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select
from starlette.requests import Request
from starlette.responses import Response

from service.contract.queries import OutboundQuery
from service.domain.call_join import DEFAULT_TOLERANCE_MS
from service.domain.instants import iso
from service.domain.numbers import normalise_number
from service.http.responses import JSONResponse
from service.reports.call_records import apps_of_site
from service.reports.filters import ReportFilter, action_window
from service.reports.serving import in_thread, report_request
from service.storage.schema import call_records, sessions


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
            **outbound(state.read_engine, scope, window_s * 1000, state.join_rules.tolerance_ms),
        }

    return JSONResponse(await in_thread(report))


def outbound(
    engine: Engine, scope: ReportFilter, follow_window_ms: int, lead_ms: int = DEFAULT_TOLERANCE_MS
) -> dict[str, Any]:
    """callOut requests, and how many were followed by a session of the same site with the same customer
    number that started within the window after the request; and the CCC outbound records they started
    (``placed``: see ``_placed``)."""
    per_agent: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
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
        apps = None if scope.site_id is None else apps_of_site(conn, scope.site_id)
        placed = _placed(conn, requests, apps, follow_window_ms, lead_ms)
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
    talk_s, answered = 0, 0
    statuses: dict[str, int] = defaultdict(int)
    for agent, record in placed.values():
        per_agent[agent][2] += 1
        statuses[record.end_status or "unknown"] += 1
        if record.accept_at is not None:
            per_agent[agent][3] += 1
            answered += 1
            talk_s += record.duration_s or 0
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
                "placed": p,
                "answered": a,
            }
            for agent, (n, f, p, a) in sorted(per_agent.items(), key=lambda kv: (-kv[1][0], kv[0] or ""))
        ],
        "placed": {
            "call_outs": total,
            "placed": len(placed),
            "answered": answered,
            "talk_s": talk_s,
            "mean_talk_s": round(talk_s / answered, 3) if answered else None,
            "end_status": dict(sorted(statuses.items())),
        },
    }


CallOut = tuple[str | None, int, tuple[int, str] | None]  # (agent, at, (site, number))


def _placed(
    conn: Connection,
    requests: list[CallOut],
    apps: tuple[int, ...] | None,
    follow_window_ms: int,
    lead_ms: int,
) -> dict[int, tuple[str | None, Any]]:
    """Each callOut request matched to the CCC outbound record it started: the same agent and customer
    number (normalised, as records store it), starting from ``lead_ms`` before the request (the two
    clocks' skew) to the follow window after it; requests in time order, each taking the earliest record
    not taken yet, so a record is one request's. Keyed by the request's index: (its agent, the record)."""
    wanted = [(i, agent, at, key) for i, (agent, at, key) in enumerate(requests) if agent and key]
    if not wanted:
        return {}
    earliest = min(at for _, _, at, _ in wanted) - lead_ms
    latest = max(at for _, _, at, _ in wanted) + follow_window_ms
    records: dict[tuple[str, str], list[Any]] = defaultdict(list)
    agents = sorted({agent for _, agent, _, _ in wanted if agent is not None})
    for chunk_start in range(0, len(agents), 500):
        query = select(
            call_records.c.agent_email,
            call_records.c.customer,
            call_records.c.start_at,
            call_records.c.accept_at,
            call_records.c.duration_s,
            call_records.c.end_status,
            call_records.c.session_id,
        ).where(
            call_records.c.direction == "outbound",
            call_records.c.agent_email.in_(agents[chunk_start : chunk_start + 500]),
            call_records.c.sort_at >= earliest,
            call_records.c.sort_at <= latest,
        )
        if apps is not None:
            query = query.where(call_records.c.sdk_app_id.in_(apps))
        for row in conn.execute(query):
            if row.customer is not None and row.start_at is not None:
                records[(row.agent_email, row.customer)].append(row)
    for found in records.values():
        found.sort(key=lambda row: (row.start_at, row.session_id))
    taken: set[str] = set()
    placed: dict[int, tuple[str | None, Any]] = {}
    for index, agent, at, key in sorted(wanted, key=lambda r: (r[2], r[0])):
        assert agent is not None and key is not None
        for row in records.get((agent, normalise_number(key[1])), []):
            if row.session_id not in taken and at - lead_ms <= row.start_at <= at + follow_window_ms:
                taken.add(row.session_id)
                placed[index] = (agent, row)
                break
    return placed


def _number(value: Any) -> str | None:
    """A callOut's phoneNumber as sessions store customer numbers: text (a page may post it as a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None
