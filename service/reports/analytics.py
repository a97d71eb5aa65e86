"""Reports for supervisors: inbound by bucket, agents, cards, outbound, live. Definitions: docs/metrics.md.

Inbound and agent reports sum rollups (projection/rollups.py) for the whole spans inside the range and the
sessions themselves for the slivers at its edges; both go through the same partial sums, so a report reads
the same whichever way its range falls.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, Engine, and_, case, func, select

from service.domain.buckets import HOUR_MS, Bucket, days, hours, quarters
from service.domain.formulas import AgentPartial, InboundAccumulator, InboundPartial, Thresholds, median
from service.domain.sessions import Timeouts, timed_out
from service.projection import rollups
from service.reports.records import iso
from service.storage.schema import actions, sessions

CHAT_CHANNELS = ("im", "oim")


@dataclass(frozen=True)
class Scope:
    """Which data a report covers: [start, end) by offer time (actions by their time), and filters."""

    start_ms: int
    end_ms: int
    site_id: int | None = None
    channel: str | None = None
    agent: str | None = None


def _pieces(start_ms: int, end_ms: int, inner: tuple[int, int]) -> tuple[list[tuple[int, int]], int, int]:
    """[start, end) split into the inner whole spans [first, last) and the raw edges around them."""
    first, last = inner
    if first >= last:
        return [(start_ms, end_ms)], 0, 0
    edges = [(a, b) for a, b in ((start_ms, first), (last, end_ms)) if a < b]
    return edges, first, last


def inbound(
    engine: Engine, scope: Scope, report_buckets: Sequence[Bucket], thresholds: Thresholds
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    accumulator = InboundAccumulator(len(report_buckets))
    starts = [b.lo_ms for b in report_buckets]

    def bucket_of(ms: int) -> int:
        return bisect.bisect_right(starts, ms) - 1

    def add_raw(conn: Connection, lo: int, hi: int) -> None:
        found = rollups.inbound_partials(
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

    edges, first, last = _pieces(scope.start_ms, scope.end_ms, quarters(scope.start_ms, scope.end_ms))
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


def agents(engine: Engine, scope: Scope) -> list[dict[str, Any]]:
    totals: dict[str, AgentPartial] = defaultdict(AgentPartial)
    edges, first_hour, last_hour = _pieces(scope.start_ms, scope.end_ms, hours(scope.start_ms, scope.end_ms))
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
            found = rollups.agent_partials(conn, lo, hi, site_id=scope.site_id, channel=scope.channel)
            for (agent, _), partial in found.items():
                totals[agent].merge(partial)
    rows = [partial.row(agent or None) for agent, partial in totals.items() if not partial.is_empty]
    return sorted(rows, key=lambda r: (-r["offered"], r["agent_email"] or ""))


def _action_window(scope: Scope, names: Sequence[str]) -> Any:
    query = select(actions).where(
        actions.c.at >= scope.start_ms, actions.c.at < scope.end_ms, actions.c.action.in_(names)
    )
    if scope.site_id is not None:
        query = query.where(actions.c.site_id == scope.site_id)
    if scope.agent is not None:
        query = query.where(actions.c.agent_email == scope.agent)
    return query


def cards(engine: Engine, scope: Scope) -> dict[str, Any]:
    by_card: Counter[tuple[str | None, str | None]] = Counter()
    by_agent: Counter[str | None] = Counter()
    sent = orphans = 0
    with engine.connect() as conn:
        # Grouped in SQL: a month holds hundreds of thousands of cards but a few distinct ones.
        window = _action_window(scope, ["send_card"]).subquery()
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
        if scope.site_id is not None:
            answered_chats = answered_chats.where(sessions.c.site_id == scope.site_id)
        if scope.agent is not None:
            answered_chats = answered_chats.where(sessions.c.agent_email == scope.agent)
        chats = answered_chats.subquery()
        first_card = (
            select(chats.c.connected_at, func.min(actions.c.at).label("first_at"))
            .join(actions, and_(actions.c.session_id == chats.c.id, actions.c.action == "send_card"))
            .group_by(chats.c.id, chats.c.connected_at)
        )
        delays = [
            (row.first_at - round(row.connected_at.timestamp() * 1000)) / 1000
            for row in conn.execute(first_card)
        ]
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


def _number(value: Any) -> str | None:
    """A callOut's phoneNumber as sessions store customer numbers: text (a page may post it as a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def outbound(engine: Engine, scope: Scope, follow_window_ms: int) -> dict[str, Any]:
    """callOut requests, and how many were followed by a session of the same site with the same customer
    number that started within the window after the request."""
    per_agent: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    requests: list[tuple[str | None, int, tuple[int, str] | None]] = []
    with engine.connect() as conn:
        for row in conn.execute(_action_window(scope, ["call_out"])):
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


def live(
    engine: Engine, now_ms: int, timeouts: Timeouts, site_id: int | None, limit: int = 100
) -> dict[str, Any]:
    """Open sessions not yet past their timeout: ringing now, connected now."""
    longest = max(timeouts.ringing_ms, timeouts.connected_ms)
    query = select(
        sessions.c.id, sessions.c.channel, sessions.c.agent_email, sessions.c.agent_nickname,
        sessions.c.customer_mobile, sessions.c.customer_user_id, sessions.c.customer_nickname,
        sessions.c.offered_at, sessions.c.connected_at, sessions.c.started_at, sessions.c.last_event_at,
    ).where(sessions.c.ended_at.is_(None), sessions.c.last_event_at >= now_ms - longest)  # fmt: skip
    if site_id is not None:
        query = query.where(sessions.c.site_id == site_id)
    ringing: list[dict[str, Any]] = []
    connected: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            is_connected = row.connected_at is not None
            if timed_out(is_connected, row.last_event_at, now_ms, timeouts):
                continue
            since = row.connected_at if is_connected else row.offered_at
            since_ms = round(since.timestamp() * 1000) if since is not None else row.started_at
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
