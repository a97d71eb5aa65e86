"""GET /v1/analytics/cards: cards sent, by card and by agent, attach rate and time to the first card in
answered chats (docs/metrics.md)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from sqlalchemy import Engine, and_, case, func, select
from starlette.requests import Request
from starlette.responses import Response

from service.contract.queries import CardsQuery
from service.domain.formulas import median
from service.domain.instants import iso
from service.http.responses import JSONResponse
from service.projection.statements import of_sites
from service.reports.filters import CHAT_CHANNELS, ReportFilter, action_window
from service.reports.serving import in_thread, report_request
from service.storage.schema import actions, sessions


async def cards_report(request: Request) -> Response:
    state, params, start, end, resolve_site = await report_request(request)
    agent = params.read(CardsQuery).agent
    params.done()

    def report() -> dict[str, Any]:
        scope = ReportFilter(start, end, resolve_site(), agent=agent)
        return {"from": iso(start), "to": iso(end), **cards(state.read_engine, scope)}

    return JSONResponse(await in_thread(report))


def cards(engine: Engine, scope: ReportFilter) -> dict[str, Any]:
    by_card: Counter[tuple[str | None, str | None]] = Counter()
    by_agent: Counter[str | None] = Counter()
    sent = orphans = 0
    with engine.connect() as conn:
        # Grouped in SQL: a month holds hundreds of thousands of cards but a few distinct ones.
        window = action_window(scope, ["send_card"]).subquery()
        grouped = select(
            window.c.details,
            window.c.agent_email,
            (window.c.session_id.is_(None)).label("orphan"),
            func.count(),
        ).group_by(window.c.details, window.c.agent_email, window.c.session_id.is_(None))
        for details_text, agent, orphan, count in conn.execute(grouped):
            details = orjson.loads(details_text)
            sent += count
            orphans += count if orphan else 0
            by_card[(_text(details.get("header")), _text(details.get("url")))] += count
            by_agent[agent] += count

        answered_chats = select(sessions.c.id, sessions.c.connected_at, sessions.c.cards_sent).where(
            sessions.c.started_at >= scope.start_ms,
            sessions.c.started_at < scope.end_ms,
            sessions.c.channel.in_(CHAT_CHANNELS),
            sessions.c.connected_at.is_not(None),
        )
        answered_chats = answered_chats.where(*of_sites(sessions.c.site_id, scope.site_id))
        if scope.agent is not None:
            answered_chats = answered_chats.where(sessions.c.agent_email == scope.agent)
        chats = answered_chats.subquery()
        first_card = (
            select(chats.c.connected_at, func.min(actions.c.at).label("first_at"))
            .join(actions, and_(actions.c.session_id == chats.c.id, actions.c.action == "send_card"))
            .group_by(chats.c.id, chats.c.connected_at)
        )
        delays = [(row.first_at - row.connected_at) / 1000 for row in conn.execute(first_card)]
        count, with_card, in_sessions = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((chats.c.cards_sent > 0, 1), else_=0)), 0),
                func.coalesce(func.sum(chats.c.cards_sent), 0),
            )
        ).one()
    return {
        "cards_sent": sent,
        "answered_chat_sessions": int(count),
        "attach_rate": round(int(with_card) / count, 6) if count else None,
        "cards_per_session": round(int(in_sessions) / count, 6) if count else None,
        "median_s_to_first_card": median([max(d, 0.0) for d in delays]),
        "orphans": orphans,
        "by_card": [
            {"header": header, "url": url, "count": n}
            for (header, url), n in sorted(
                by_card.items(), key=lambda kv: (-kv[1], kv[0][0] or "", kv[0][1] or "")
            )
        ],
        "by_agent": [
            {"agent_email": agent, "cards_sent": n}
            for agent, n in sorted(by_agent.items(), key=lambda kv: (-kv[1], kv[0] or ""))
        ],
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None if value is None else orjson.dumps(value).decode()
