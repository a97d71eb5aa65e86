"""GET /v1/analytics/agents: per agent, contacts offered and answered, talk time, cards, call-outs and
peak concurrent chats, from hour and day rollups and the raw edges (docs/metrics.md)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from service.contract.models import AgentRow, field_names
from service.contract.queries import AgentsQuery
from service.domain.buckets import days, hours
from service.domain.formulas import AgentPartial
from service.domain.instants import iso
from service.http.responses import JSONResponse
from service.projection import partials, rollups
from service.reports.filters import ReportFilter, split_window
from service.reports.serving import export, in_thread, report_request

AGENT_FIELDS = field_names(AgentRow)  # the export's columns


async def agents_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await report_request(request)
    query = params.read(AgentsQuery)
    channel, fmt = query.channel, query.format
    params.done()

    def rows() -> list[dict[str, Any]]:
        return agents(state.read_engine, ReportFilter(start, end, resolve_site(), channel))

    found = await in_thread(rows)
    if fmt != "json":
        return export(lambda: iter(found), AGENT_FIELDS, fmt, "agents")
    return JSONResponse({"from": iso(start), "to": iso(end), "agents": found})


def agents(engine: Engine, scope: ReportFilter) -> list[dict[str, Any]]:
    totals: dict[str, AgentPartial] = defaultdict(AgentPartial)
    edges, first_hour, last_hour = split_window(
        scope.start_ms, scope.end_ms, hours(scope.start_ms, scope.end_ms)
    )
    pieces: list[tuple[rollups.Span, int, int]] = []
    if first_hour < last_hour:
        first_day, last_day = days(first_hour, last_hour)
        if first_day < last_day:
            pieces = [
                ("hour", first_hour, first_day),
                ("day", first_day, last_day),
                ("hour", last_day, last_hour),
            ]
        else:
            pieces = [("hour", first_hour, last_hour)]
        pieces = [piece for piece in pieces if piece[1] < piece[2]]
        for span, lo, hi in pieces:
            rollups.refresh(engine, span, lo, hi, scope.site_id)
    with engine.connect() as conn:
        if pieces:
            for row in rollups.stored_agents(conn, pieces, scope.site_id, scope.channel):
                totals[row.agent_email].merge(
                    AgentPartial(
                        nickname=row.agent_nickname,
                        offered=int(row.offered),
                        answered=int(row.answered),
                        not_answered=int(row.not_answered),
                        talk_count=int(row.talk_count),
                        talk_total=float(row.talk_total),
                        cards_sent=int(row.cards_sent),
                        call_outs=int(row.call_outs),
                        peak_concurrent_chats=int(row.peak),
                    )
                )
        for lo, hi in edges:
            found = partials.agent_partials(conn, lo, hi, site_id=scope.site_id, channel=scope.channel)
            for (agent, _), partial in found.items():
                totals[agent].merge(partial)
    rows = [partial.row(agent or None) for agent, partial in totals.items() if not partial.is_empty]
    return sorted(rows, key=lambda r: (-r["offered"], r["agent_email"] or ""))
