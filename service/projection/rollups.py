"""Rollups: partial sums of sessions and actions per span of time, kept right by generation marks.

The projection calls ``mark`` in its own transaction with every session and action it wrote or deleted:
each touched span's mark gets ``gen + 1``. A report first calls ``refresh`` on its range: a span whose ``gen``
is past ``built_gen`` is rebuilt from the sessions and actions, in a transaction that first claims the mark
(``built_gen = gen``). The claim takes the mark's row lock, so on PostgreSQL a writer touching the span
meanwhile waits and then bumps ``gen`` again, leaving the span dirty for the next reader; a second reader
finds nothing left to claim. On SQLite both are serialized by the database's write lock.

The same functions (``inbound_partials``, ``agent_partials``) compute a rollup's rows and the raw slices a
report needs at its edges, so a rollup can never disagree with the sessions it sums.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from service.domain.buckets import DAY_MS
from service.domain.formulas import (
    AgentPartial,
    InboundPartial,
)
from service.domain.histograms import encode_histogram
from service.projection.partials import agent_partials, inbound_partials
from service.projection.statements import SiteIds, of_sites
from service.storage.schema import actions, agent_rollup, inbound_rollup, rollup_marks, sessions

Span = Literal["hour", "day"]
HOUR_MS = 3600 * 1000
SPAN_MS: dict[Span, int] = {"hour": HOUR_MS, "day": DAY_MS}
# A session lasting days (one whose end was never seen) marks its first hours and days only.
MAX_HOURS_PER_SESSION = 48
MAX_DAYS_PER_SESSION = 3

Mark = tuple[int, Span, int]  # (site_id, span, start_ms)
ALL_CHANNELS = "*"
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: the end of time for the wire format's timestamps
SPAN_CAPS: tuple[tuple[Span, int, int], ...] = (
    ("hour", HOUR_MS, MAX_HOURS_PER_SESSION),
    ("day", DAY_MS, MAX_DAYS_PER_SESSION),
)


@dataclass(frozen=True)
class Touched:
    """What the projection wrote or deleted, as far as rollups care."""

    site_id: int
    started_at: int
    last_touch: int


def marks_for(sessions_touched: Iterable[Touched], action_times: Iterable[tuple[int, int]]) -> list[Mark]:
    """The marks a write touches: every hour and day a session spans (a chat's peak counts in each), capped
    for sessions that lost track for days; the hour and day of each action."""
    found: set[Mark] = set()
    for s in sessions_touched:
        for span, width, cap in SPAN_CAPS:
            start = s.started_at - s.started_at % width
            last = min(s.last_touch - s.last_touch % width, start + (cap - 1) * width)
            while start <= last:
                found.add((s.site_id, span, start))
                start += width
    for site_id, at in action_times:
        found.add((site_id, "hour", at - at % HOUR_MS))
        found.add((site_id, "day", at - at % DAY_MS))
    return sorted(found)


def mark(conn: Connection, marks: Sequence[Mark]) -> None:
    """Bump each mark's generation, creating it dirty when new. Sorted, so writers lock marks in one order."""
    if not marks:
        return
    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(rollup_marks)
    statement = statement.on_conflict_do_update(
        index_elements=["site_id", "span", "start_ms"], set_={"gen": rollup_marks.c.gen + 1}
    )
    rows = [{"site_id": s, "span": span, "start_ms": t, "gen": 1, "built_gen": 0} for s, span, t in marks]
    conn.execute(statement, rows)


def mark_history(conn: Connection) -> int:
    """Mark every hour and day of each site's stored history dirty (for data loaded around the projection,
    as migration 0003 does for sessions stored before it); returns how many marks were set."""
    times = union_all(
        select(sessions.c.site_id, sessions.c.started_at.label("lo"), sessions.c.last_event_at.label("hi")),
        select(actions.c.site_id, actions.c.at, actions.c.at),
    ).subquery()
    ranges = conn.execute(
        select(times.c.site_id, func.min(times.c.lo), func.max(times.c.hi)).group_by(times.c.site_id)
    )
    marks: list[Mark] = []
    for site_id, lo, hi in ranges:
        for span, width, _ in SPAN_CAPS:
            marks.extend((site_id, span, start) for start in range(lo - lo % width, hi + 1, width))
    for start in range(0, len(marks), 10_000):
        mark(conn, marks[start : start + 10_000])
    return len(marks)


def invalidate(conn: Connection) -> None:
    """Mark every span dirty (for ``rebuild``): its rows stay until a report rebuilds it, so a report that
    runs while a rebuild commits reads old sums or rebuilds them, never an emptied table."""
    conn.execute(update(rollup_marks).values(gen=rollup_marks.c.gen + 1))


def refresh(engine: Engine, span: Span, start_ms: int, end_ms: int, site_id: SiteIds = None) -> int:
    """Rebuild the dirty spans of this kind that overlap [start, end); returns how many were rebuilt."""
    with engine.connect() as conn:
        dirty = _dirty(conn, span, start_ms, end_ms, site_id)
    for dirty_site, dirty_start in dirty:
        with engine.begin() as conn:
            if _claim(conn, dirty_site, span, dirty_start):
                _build(conn, span, dirty_site, dirty_start)
    return len(dirty)


def _dirty(
    conn: Connection, span: Span, start_ms: int, end_ms: int, site_id: SiteIds
) -> list[tuple[int, int]]:
    first = start_ms - start_ms % SPAN_MS[span]
    query = select(rollup_marks.c.site_id, rollup_marks.c.start_ms).where(
        rollup_marks.c.span == span,
        rollup_marks.c.start_ms >= first,
        rollup_marks.c.start_ms < end_ms,
        rollup_marks.c.gen > rollup_marks.c.built_gen,
    )
    query = query.where(*of_sites(rollup_marks.c.site_id, site_id))
    return sorted((row.site_id, row.start_ms) for row in conn.execute(query))


def _claim(conn: Connection, site_id: int, span: Span, start_ms: int) -> bool:
    """Mark a dirty span built, holding its row lock (PostgreSQL) until the rebuild commits."""
    claimed = conn.execute(
        update(rollup_marks)
        .where(
            rollup_marks.c.site_id == site_id,
            rollup_marks.c.span == span,
            rollup_marks.c.start_ms == start_ms,
            rollup_marks.c.gen > rollup_marks.c.built_gen,
        )
        .values(built_gen=rollup_marks.c.gen)
    ).rowcount
    return bool(claimed)


def _build(conn: Connection, span: Span, site_id: int, start_ms: int) -> None:
    end_ms = start_ms + SPAN_MS[span]
    if span == "day":
        # A day is the sum of its hours. Its dirty hours are rebuilt here, after the day is claimed: a writer
        # marks a day before its hours (marks are locked in sorted order), so an hour changed after this
        # claim leaves the day dirty again, and one changed before it is seen dirty now.
        for _, hour in _dirty(conn, "hour", start_ms, end_ms, site_id):
            if _claim(conn, site_id, "hour", hour):
                _build(conn, "hour", site_id, hour)
        _sum_hours_into_day(conn, site_id, start_ms)
        return
    conn.execute(
        delete(inbound_rollup).where(
            inbound_rollup.c.site_id == site_id,
            inbound_rollup.c.start_ms >= start_ms,
            inbound_rollup.c.start_ms < end_ms,
        )
    )
    partials = inbound_partials(conn, start_ms, end_ms, site_id=site_id, by_quarter=True)
    # Each quarter once more with all channels together: a report without a channel filter reads a third
    # of the rows.
    every_channel: dict[tuple[int, str], InboundPartial] = defaultdict(InboundPartial)
    whole_hour = InboundPartial()
    for (quarter, _), partial in partials.items():
        every_channel[(quarter, ALL_CHANNELS)].merge(partial)
        whole_hour.merge(partial)
    partials.update(every_channel)
    rows = [_inbound_row(site_id, "quarter", start, channel, p) for (start, channel), p in partials.items()]
    if whole_hour.offered:
        rows.append(_inbound_row(site_id, "hour", start_ms, ALL_CHANNELS, whole_hour))
    if rows:
        conn.execute(insert(inbound_rollup), rows)
    conn.execute(_agent_rows_of(site_id, "hour", start_ms, delete(agent_rollup)))
    by_channel = agent_partials(conn, start_ms, end_ms, site_id=site_id, by_channel=True)
    agent_rows = [
        _agent_row(site_id, start_ms, agent, channel, p) for (agent, channel), p in by_channel.items()
    ]
    if agent_rows:
        conn.execute(insert(agent_rollup), agent_rows)


def _agent_rows_of(site_id: int, span: Span, start_ms: int, statement: Any) -> Any:
    return statement.where(
        agent_rollup.c.site_id == site_id, agent_rollup.c.span == span, agent_rollup.c.start_ms == start_ms
    )


_SUMMED = ("offered", "answered", "not_answered", "talk_count", "talk_total", "cards_sent", "call_outs")


def _sum_hours_into_day(conn: Connection, site_id: int, day: int) -> None:
    conn.execute(_agent_rows_of(site_id, "day", day, delete(agent_rollup)))
    r = agent_rollup.c
    hours = (
        select(
            r.site_id, literal("day"), literal(day), r.agent_email, r.channel, func.max(r.agent_nickname),
            *(func.sum(r[name]) for name in _SUMMED), func.max(r.peak_concurrent_chats),
        )
        .where(r.site_id == site_id, r.span == "hour", r.start_ms >= day, r.start_ms < day + DAY_MS)
        .group_by(r.site_id, r.agent_email, r.channel)
    )  # fmt: skip
    columns = ["site_id", "span", "start_ms", "agent_email", "channel", "agent_nickname", *_SUMMED]
    conn.execute(insert(agent_rollup).from_select([*columns, "peak_concurrent_chats"], hours))


def _inbound_row(site_id: int, span: str, start_ms: int, channel: str, p: InboundPartial) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "span": span,
        "start_ms": start_ms,
        "channel": channel,
        "offered": p.offered,
        "answered": p.answered,
        "not_answered": p.not_answered,
        "talk_count": p.talk_count,
        "ring_sum": p.ring_sum,
        "ring_max": p.ring_max,
        "talk_sum": p.talk_sum,
        "talk_max": p.talk_max,
        "ring_hist": encode_histogram(p.ring),
        "talk_hist": encode_histogram(p.talk),
        "abandon_hist": encode_histogram(p.abandon),
    }


def _agent_row(site_id: int, hour: int, agent: str, channel: str, p: AgentPartial) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "span": "hour",
        "start_ms": hour,
        "agent_email": agent,
        "channel": channel,
        "agent_nickname": p.nickname,
        "offered": p.offered,
        "answered": p.answered,
        "not_answered": p.not_answered,
        "talk_count": p.talk_count,
        "talk_total": p.talk_total,
        "cards_sent": p.cards_sent,
        "call_outs": p.call_outs,
        "peak_concurrent_chats": p.peak_concurrent_chats,
    }


def stored_inbound(
    conn: Connection, span: str, start_ms: int, end_ms: int, site_id: SiteIds, channel: str | None
) -> list[Any]:
    """Rows of (start_ms, then metrics.InboundAccumulator.add_stored's columns); hour rows exist for all
    channels together only."""
    r = inbound_rollup.c
    query = select(
        r.start_ms,
        r.offered,
        r.answered,
        r.not_answered,
        r.talk_count,
        r.ring_sum,
        r.talk_sum,
        func.coalesce(r.ring_max, -1.0),
        func.coalesce(r.talk_max, -1.0),
        r.ring_hist,
        r.talk_hist,
        r.abandon_hist,
    ).where(r.span == span, r.start_ms >= start_ms, r.start_ms < end_ms)
    query = query.where(*of_sites(inbound_rollup.c.site_id, site_id))
    query = query.where(inbound_rollup.c.channel == (ALL_CHANNELS if channel is None else channel))
    return list(conn.execute(query).all())


def stored_agents(
    conn: Connection, pieces: Sequence[tuple[Span, int, int]], site_id: SiteIds, channel: str | None
) -> list[Any]:
    """Per agent, the sums of the rollup rows of the given whole spans [(span, first start, end)], with
    the chat peak of the channel filtered on, or of all chats ("*")."""
    r = agent_rollup.c
    peak_channel = channel if channel is not None else "*"
    query = (
        select(
            r.agent_email, func.max(r.agent_nickname).label("agent_nickname"),
            *(func.sum(r[name]).label(name) for name in _SUMMED),
            func.max(case((r.channel == peak_channel, r.peak_concurrent_chats), else_=0)).label("peak"),
        )
        .where(or_(*(and_(r.span == span, r.start_ms >= lo, r.start_ms < hi) for span, lo, hi in pieces)))
        .group_by(r.agent_email)
    )  # fmt: skip
    query = query.where(*of_sites(r.site_id, site_id))
    if channel is not None:
        query = query.where(r.channel == channel)
    return list(conn.execute(query).all())
