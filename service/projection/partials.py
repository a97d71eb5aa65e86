"""Partial sums of sessions, computed from the sessions themselves: what a rollup row holds when it is built,
and what a report adds for the raw slices at the edges of its range, so the two can never disagree."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, or_, select

from service.domain.buckets import DAY_MS, QUARTER_MS
from service.domain.formulas import AgentPartial, InboundPartial, SessionFact, is_chat, peak_concurrency
from service.projection.statements import SiteIds, of_sites
from service.storage.schema import actions, sessions

# A chat longer than this is clipped when peaks are computed: it bounds how far back a day looks for chats.
CHAT_LOOKBACK_MS = DAY_MS


_FACT_COLUMNS = (
    sessions.c.started_at,
    sessions.c.channel,
    sessions.c.agent_email,
    sessions.c.agent_nickname,
    sessions.c.observed_from,
    sessions.c.offered_at,
    sessions.c.connected_at,
    sessions.c.ended_at,
    sessions.c.outcome,
    sessions.c.ring_s,
    sessions.c.talk_s,
    sessions.c.last_event_at,
)


def session_fact(row: Any) -> SessionFact:
    abandon_s = None
    if row.outcome == "not_answered" and row.offered_at is not None and row.ended_at is not None:
        abandon_s = (row.ended_at - row.offered_at) / 1000
    return SessionFact(
        channel=row.channel,
        observed_from=row.observed_from,
        connected=row.connected_at is not None,
        outcome=row.outcome,
        ring_s=row.ring_s,
        talk_s=row.talk_s,
        abandon_s=abandon_s,
    )


def _sessions_in(start_ms: int, end_ms: int, site_id: SiteIds, agent: str | None, channel: str | None) -> Any:
    query = select(*_FACT_COLUMNS).where(sessions.c.started_at >= start_ms, sessions.c.started_at < end_ms)
    query = query.where(*of_sites(sessions.c.site_id, site_id))
    if agent is not None:
        query = query.where(sessions.c.agent_email == agent)
    if channel is not None:
        query = query.where(sessions.c.channel == channel)
    return query


def inbound_partials(
    conn: Connection,
    start_ms: int,
    end_ms: int,
    *,
    site_id: SiteIds = None,
    agent: str | None = None,
    channel: str | None = None,
    by_quarter: bool = False,
) -> dict[tuple[int, str], InboundPartial]:
    """Sessions offered in [start, end), summed per (quarter or start, channel)."""
    partials: dict[tuple[int, str], InboundPartial] = defaultdict(InboundPartial)
    for row in conn.execute(_sessions_in(start_ms, end_ms, site_id, agent, channel)):
        fact = session_fact(row)
        if not fact.counts_as_offered:
            continue
        key_time = row.started_at - row.started_at % QUARTER_MS if by_quarter else row.started_at
        partials[(key_time, row.channel)].add_session(fact)
    return dict(partials)


def agent_partials(
    conn: Connection,
    start_ms: int,
    end_ms: int,
    *,
    site_id: SiteIds = None,
    channel: str | None = None,
    by_channel: bool = False,
) -> dict[tuple[str, str], AgentPartial]:
    """Per (agent, channel) when ``by_channel`` (with the "" and "*" rows the rollup keeps), else per
    (agent, "") for the given channel filter: sessions offered, actions and chat peaks in [start, end)."""
    partials: dict[tuple[str, str], AgentPartial] = defaultdict(AgentPartial)
    for row in conn.execute(_sessions_in(start_ms, end_ms, site_id, None, channel)):
        key = (row.agent_email or "", (row.channel or "") if by_channel else "")
        partial = partials[key]
        partial.nickname = row.agent_nickname or partial.nickname
        partial.add_session(session_fact(row))

    action_query = (
        select(actions.c.agent_email, actions.c.action, sessions.c.channel)
        .select_from(actions.outerjoin(sessions, sessions.c.id == actions.c.session_id))
        .where(
            actions.c.at >= start_ms,
            actions.c.at < end_ms,
            actions.c.action.in_(("send_card", "call_out")),
        )
    )
    action_query = action_query.where(*of_sites(actions.c.site_id, site_id))
    if channel is not None:
        action_query = action_query.where(sessions.c.channel == channel)
    for row in conn.execute(action_query):
        key = (row.agent_email or "", (row.channel or "") if by_channel else "")
        if row.action == "send_card":
            partials[key].cards_sent += 1
        else:
            partials[key].call_outs += 1

    # Peaks per site, then the highest: the rollups keep them per site, and the two must agree.
    chats = _chat_intervals(conn, start_ms, end_ms, site_id, channel)
    for (_, agent, chat_channel), intervals in chats.items():
        key = (agent, chat_channel) if by_channel else (agent, "")
        if by_channel or chat_channel == "*":
            peak = peak_concurrency(intervals, start_ms, end_ms)
            partials[key].peak_concurrent_chats = max(partials[key].peak_concurrent_chats, peak)
    return {key: partial for key, partial in partials.items() if not partial.is_empty}


def _chat_intervals(
    conn: Connection, start_ms: int, end_ms: int, site_id: SiteIds, channel: str | None
) -> dict[tuple[int, str, str], list[tuple[int, int]]]:
    """Answered chat sessions overlapping [start, end), from connect to end (or last event), per
    (site, agent, channel) and per (site, agent, "*") for all chat channels together."""
    if channel is not None and not is_chat(channel):
        return {}
    query = select(
        sessions.c.site_id, sessions.c.agent_email, sessions.c.channel, sessions.c.connected_at,
        sessions.c.ended_at,
        sessions.c.last_event_at,
    ).where(
        sessions.c.started_at >= start_ms - CHAT_LOOKBACK_MS,
        sessions.c.started_at < end_ms,
        sessions.c.connected_at.is_not(None),
        sessions.c.channel.in_([channel] if channel else ["im", "oim"]),
        or_(sessions.c.last_event_at >= start_ms, sessions.c.ended_at.is_(None)),
    )  # fmt: skip
    query = query.where(*of_sites(sessions.c.site_id, site_id))
    intervals: dict[tuple[int, str, str], list[tuple[int, int]]] = defaultdict(list)
    for row in conn.execute(query):
        end = max(row.ended_at or row.last_event_at, row.last_event_at)
        interval = (row.connected_at or row.last_event_at, end)
        intervals[(row.site_id, row.agent_email or "", row.channel)].append(interval)
        intervals[(row.site_id, row.agent_email or "", "*")].append(interval)
    return dict(intervals)
