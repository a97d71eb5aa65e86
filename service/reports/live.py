"""GET /v1/live: the sessions ringing and connected now (open, and not past their timeout)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from starlette.requests import Request
from starlette.responses import Response

from service.domain.instants import iso, now_ms
from service.domain.sessions import Timeouts, timed_out
from service.http.responses import JSONResponse
from service.projection.statements import SiteIds, of_sites
from service.reports.params import Params
from service.reports.serving import in_thread, reader, site_filter
from service.storage.schema import sessions


async def live_report(request: Request) -> Response:
    state = await reader(request)
    params = Params(request.query_params)
    resolve_site = site_filter(request, params)
    params.done()
    timeouts = state.timeouts

    def read() -> dict[str, Any]:
        return live(state.read_engine, now_ms(), timeouts, resolve_site())

    return JSONResponse(await in_thread(read))


def live(
    engine: Engine, now_ms: int, timeouts: Timeouts, site_id: SiteIds, limit: int = 100
) -> dict[str, Any]:
    """Open sessions not yet past their timeout: ringing now, connected now."""
    longest = max(timeouts.ringing_ms, timeouts.connected_ms)
    query = select(
        sessions.c.id, sessions.c.channel, sessions.c.agent_email, sessions.c.agent_nickname,
        sessions.c.customer_mobile, sessions.c.customer_user_id, sessions.c.customer_nickname,
        sessions.c.offered_at, sessions.c.connected_at, sessions.c.started_at, sessions.c.last_event_at,
    ).where(sessions.c.ended_at.is_(None), sessions.c.last_event_at >= now_ms - longest)  # fmt: skip
    query = query.where(*of_sites(sessions.c.site_id, site_id))
    ringing: list[dict[str, Any]] = []
    connected: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            is_connected = row.connected_at is not None
            if timed_out(is_connected, row.last_event_at, now_ms, timeouts):
                continue
            since = row.connected_at if is_connected else row.offered_at
            since_ms = since if since is not None else row.started_at
            item = {
                "id": row.id,
                "channel": row.channel,
                "agent_email": row.agent_email,
                "agent_nickname": row.agent_nickname,
                "customer_mobile": row.customer_mobile,
                "customer_user_id": row.customer_user_id,
                "customer_nickname": row.customer_nickname,
                "since": iso(since_ms),
                "for_s": round(max(now_ms - since_ms, 0) / 1000, 3),
            }
            (connected if is_connected else ringing).append(item)
    ringing.sort(key=lambda s: -s["for_s"])
    connected.sort(key=lambda s: -s["for_s"])
    agents_busy = {s["agent_email"] for s in [*ringing, *connected] if s["agent_email"]}
    return {
        "as_of": iso(now_ms),
        "ringing_now": len(ringing),
        "connected_now": len(connected),
        "longest_ring_s": ringing[0]["for_s"] if ringing else None,
        "agents_on_contact": len({s["agent_email"] for s in connected if s["agent_email"]}),
        "agents_with_open_sessions": len(agents_busy),
        "ringing": ringing[:limit],
        "connected": connected[:limit],
    }
