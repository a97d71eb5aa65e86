"""Rollups of the calls report: partial sums of inbound call records per UTC quarter hour and per UTC hour,
app (and all apps together, ALL_APPS: the sums of the apps' rows), channel and queued skill group, kept right
by generation marks as the page-side rollups are (projection/rollups.py).

``project_call_sessions`` and ``rebuild_call_records`` (projection/call_records.py) call ``mark`` with the
hour of every call record they delete or write: the mark's ``gen`` goes up by one. A report first calls
``refresh`` on its range: an hour whose ``gen`` is past ``built_gen`` is rebuilt from the call records, in
a transaction that first claims the mark (``built_gen = gen``, holding its row lock on PostgreSQL, so a writer
touching the hour meanwhile waits and leaves it dirty again). The same function (``CallPartial.add_record``
over ``records``) makes a rollup's rows and a report's raw edges, so the two cannot disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, Select, delete, func, insert, literal, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from service.domain.buckets import DAY_MS, HOUR_MS, QUARTER_MS
from service.domain.call_metrics import (
    ALL_APPS,
    ALL_CHANNELS,
    ALL_SKILL_GROUPS,
    COUNTS,
    NO_SKILL_GROUP,
    CallCells,
    CallPartial,
    encode_counts,
    encode_satisfaction,
    sum_stored,
)
from service.storage.schema import call_records, call_rollup_marks, call_rollups

Span = Literal["hour", "day"]
Mark = tuple[int, Span, int]  # (sdk_app_id, span, UTC start)
SPAN_MS: dict[Span, int] = {"hour": HOUR_MS, "day": DAY_MS}
FAR_FUTURE_MS = 4_102_444_800_000
_MARK_CHUNK = 5_000
_r = call_records.c
RECORD_COLUMNS = (
    _r.sdk_app_id, _r.start_at, _r.channel, _r.skill_group_id, _r.skill_group_name, _r.accept_at,
    _r.queued_at, _r.queue_s, _r.end_status, _r.hung_up_by, _r.transfers, _r.satisfaction,
)  # fmt: skip


_c = call_rollups.c
# A row's stored figures, as domain.call_metrics.partial_of_row reads them.
_STORED = (
    _c.skill_group_name, *(_c[name] for name in COUNTS), func.coalesce(_c.queue_max, -1), _c.queue_hist,
    _c.answered_queue_hist, _c.satisfaction,
)  # fmt: skip


def marks_for(starts: Iterable[tuple[int, int | None]]) -> list[Mark]:
    """The hours and days of these (sdk_app_id, start_at) records, of their app and of all apps together
    (ALL_APPS); one without a start is in no report. Sorted (all apps before any app, "day" before "hour"),
    the order every writer locks marks in."""
    found: set[Mark] = set()
    for app, start in starts:
        if start is not None:
            for owner in (app, ALL_APPS):
                found.add((owner, "day", start - start % DAY_MS))
                found.add((owner, "hour", start - start % HOUR_MS))
    return sorted(found)


def mark(conn: Connection, marks: Sequence[Mark]) -> None:
    """Bump each mark's generation, creating it dirty when new. Sorted, so writers lock marks in one order."""
    if not marks:
        return
    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(call_rollup_marks).on_conflict_do_update(
        index_elements=["sdk_app_id", "span", "start_ms"], set_={"gen": call_rollup_marks.c.gen + 1}
    )
    ordered = sorted(set(marks))
    for start in range(0, len(ordered), _MARK_CHUNK):
        rows = [
            {"sdk_app_id": app, "span": span, "start_ms": at, "gen": 1, "built_gen": 0}
            for app, span, at in ordered[start : start + _MARK_CHUNK]
        ]
        conn.execute(statement, rows)


def mark_history(conn: Connection) -> int:
    """Mark every hour and day of the stored call records (after a rebuild, or records loaded around the
    projection); returns how many marks were set."""
    marks: list[Mark] = []
    for span, width in SPAN_MS.items():
        start = _r.start_at - _r.start_at % width
        found = conn.execute(
            select(_r.sdk_app_id, start).where(_r.start_at.is_not(None)).group_by(_r.sdk_app_id, start)
        )
        for app, at in found:
            marks.extend([(int(app), span, int(at)), (ALL_APPS, span, int(at))])
    mark(conn, marks)
    return len(marks)


def invalidate(conn: Connection) -> None:
    """Every span dirty (for a rebuild): its rows stay until a report rebuilds it."""
    conn.execute(update(call_rollup_marks).values(gen=call_rollup_marks.c.gen + 1))


def refresh(engine: Engine, span: Span, start_ms: int, end_ms: int, apps: Sequence[int] | None = None) -> int:
    """Rebuild the dirty spans of this kind overlapping [start, end) (of these apps only, when given);
    returns how many were rebuilt."""
    return refresh_ranges(engine, [(span, start_ms, end_ms)], apps)


def refresh_ranges(
    engine: Engine, ranges: Sequence[tuple[Span, int, int]], apps: Sequence[int] | None = None
) -> int:
    """``refresh`` of several (span, start, end) ranges, in their order (days before hours: a day rebuilds its
    dirty hours), found dirty in one query: a report whose rollups are built pays one round trip."""
    with engine.connect() as conn:
        queries = [_dirty_query(span, start, end, apps) for span, start, end in ranges]
        found = conn.execute(queries[0] if len(queries) == 1 else union_all(*queries)).all()
    order: dict[str, int] = {span: i for i, (span, _, _) in enumerate(ranges)}
    dirty = sorted(
        ((str(span), int(app), int(at)) for span, app, at in found), key=lambda d: (order[d[0]], d)
    )
    for span, app, at in dirty:
        with engine.begin() as conn:
            if _claim(conn, app, cast(Span, span), at):
                _build(conn, app, cast(Span, span), at)
    return len(dirty)


def _dirty_query(span: Span, start_ms: int, end_ms: int, apps: Sequence[int] | None) -> Select[Any]:
    m = call_rollup_marks.c
    query = select(m.span, m.sdk_app_id, m.start_ms).where(
        m.span == span,
        m.start_ms >= start_ms - start_ms % SPAN_MS[span],
        m.start_ms < end_ms,
        m.gen > m.built_gen,
    )
    if apps is not None:
        query = query.where(m.sdk_app_id.in_(list(apps)))
    return query


def _dirty(
    conn: Connection, span: Span, start_ms: int, end_ms: int, apps: Sequence[int] | None
) -> list[tuple[int, int]]:
    return sorted(
        (int(app), int(at)) for _, app, at in conn.execute(_dirty_query(span, start_ms, end_ms, apps))
    )


def _claim(conn: Connection, app: int, span: Span, start_ms: int) -> bool:
    """Mark a dirty span built, holding its row lock (PostgreSQL) until the rebuild commits."""
    m = call_rollup_marks.c
    claimed = conn.execute(
        update(call_rollup_marks)
        .where(m.sdk_app_id == app, m.span == span, m.start_ms == start_ms, m.gen > m.built_gen)
        .values(built_gen=m.gen)
    ).rowcount
    return bool(claimed)


def _build(conn: Connection, app: int, span: Span, start_ms: int) -> None:
    c = call_rollups.c
    if span == "day":
        # A day is the sum of its hours. Its dirty hours are rebuilt here, after the day is claimed: a writer
        # marks a day before its hours, so an hour changed after this claim leaves the day dirty again.
        for _, hour in _dirty(conn, "hour", start_ms, start_ms + DAY_MS, [app]):
            if _claim(conn, app, "hour", hour):
                _build(conn, app, "hour", hour)
        _sum_hours_into_day(conn, app, start_ms)
        return
    conn.execute(
        delete(call_rollups).where(
            c.sdk_app_id == app,
            c.span.in_(["quarter", "hour"]),
            c.start_ms >= start_ms,
            c.start_ms < start_ms + HOUR_MS,
        )
    )
    if app == ALL_APPS:
        _sum_apps_into_hour(conn, start_ms)
        return
    detail: dict[tuple[int, str, int], CallPartial] = defaultdict(CallPartial)
    for record in records(conn, start_ms, start_ms + HOUR_MS, apps=[app]):
        start = record["start_at"]
        detail[(start - start % QUARTER_MS, record["channel"], _group(record))].add_record(record)
    # Each quarter and the hour, per channel and skill group, and with all channels, all skill groups or
    # both together: what a report with or without each filter reads.
    cells: dict[tuple[str, int, str, int], CallPartial] = defaultdict(CallPartial)
    for (quarter, channel, group), partial in detail.items():
        for span_start in (("quarter", quarter), ("hour", start_ms)):
            for ch in (channel, ALL_CHANNELS):
                for g in (group, ALL_SKILL_GROUPS):
                    cells[(*span_start, ch, g)].merge(partial)
    rows = [_row(app, key, partial) for key, partial in cells.items()]
    if rows:
        conn.execute(insert(call_rollups), rows)


def _sum_hours_into_day(conn: Connection, app: int, day: int) -> None:
    c = call_rollups.c
    conn.execute(delete(call_rollups).where(c.sdk_app_id == app, c.span == "day", c.start_ms == day))
    hours = conn.execute(
        select(c.channel, c.skill_group_id, *_STORED).where(
            c.sdk_app_id == app,
            c.span == "hour",
            c.start_ms >= day,
            c.start_ms < day + DAY_MS,
            c.skill_group_id != ALL_SKILL_GROUPS,
        )
    )
    rows = [
        _summed_row(app, ("day", day, channel, int(group)), found)
        for (channel, group), *found in sum_stored(hours.all(), 2)
    ]
    if rows:
        conn.execute(insert(call_rollups), rows)


def _sum_apps_into_hour(conn: Connection, hour: int) -> None:
    """The quarter and hour rows of all apps together: the sums of every app's. The apps' dirty hours are
    rebuilt first, after the all-apps hour is claimed: a writer marks all apps before its app, so an app's
    hour changed after this claim leaves the all-apps hour dirty again."""
    m = call_rollup_marks.c
    # Every app with rows in this hour has its mark (rows are built from marks).
    marks = conn.execute(
        select(m.sdk_app_id, m.gen, m.built_gen).where(
            m.span == "hour", m.start_ms == hour, m.sdk_app_id != ALL_APPS
        )
    ).all()
    for app, gen, built_gen in marks:
        if gen > built_gen and _claim(conn, app, "hour", hour):
            _build(conn, app, "hour", hour)
    if not marks:
        return
    c = call_rollups.c
    # The apps named: the primary key's (span, sdk_app_id, start_ms) then leads to the hour's rows.
    rows = conn.execute(
        select(c.span, c.start_ms, c.channel, c.skill_group_id, *_STORED).where(
            c.span.in_(["quarter", "hour"]),
            c.sdk_app_id.in_(sorted(int(app) for app, _, _ in marks)),
            c.start_ms >= hour,
            c.start_ms < hour + HOUR_MS,
        )
    )
    found = [
        _summed_row(ALL_APPS, (span, int(start), channel, int(group)), sums)
        for (span, start, channel, group), *sums in sum_stored(rows.all(), 4)
    ]
    if found:
        conn.execute(insert(call_rollups), found)


def _group(record: Mapping[str, Any]) -> int:
    group = record["skill_group_id"]
    return NO_SKILL_GROUP if group is None else int(group)


def _row(app: int, key: tuple[str, int, str, int], p: CallPartial) -> dict[str, Any]:
    span, start, channel, group = key
    return {
        "span": span,
        "sdk_app_id": app,
        "start_ms": start,
        "channel": channel,
        "skill_group_id": group,
        "skill_group_name": p.skill_group_name,
        **dict(zip(COUNTS, p.counts, strict=True)),
        "queue_max": p.queue_max,
        "queue_hist": encode_counts(p.queue),
        "answered_queue_hist": encode_counts(p.answered_queue),
        "satisfaction": encode_satisfaction(p.satisfaction),
    }


def _summed_row(app: int, key: tuple[str, int, str, int], sums: list[Any]) -> dict[str, Any]:
    """A row of summed rows (domain.call_metrics.sum_stored: name, counts, queue_max, two histograms,
    satisfaction)."""
    span, start, channel, group = key
    name, counts, queue_max, queue_hist, answered_queue_hist, satisfaction = sums
    return {
        "span": span,
        "sdk_app_id": app,
        "start_ms": start,
        "channel": channel,
        "skill_group_id": group,
        "skill_group_name": name,
        **dict(zip(COUNTS, counts, strict=True)),
        "queue_max": queue_max,
        "queue_hist": queue_hist,
        "answered_queue_hist": answered_queue_hist,
        "satisfaction": satisfaction,
    }


def records(
    conn: Connection,
    start_ms: int,
    end_ms: int,
    *,
    apps: Sequence[int] | None = None,
    channel: str | None = None,
    skill_group: int | None = None,
    agent: str | None = None,
) -> Iterator[Any]:
    """The inbound call records (row mappings) starting in [start, end), filtered. ``sort_at`` is
    ``start_at`` whenever there is one, so the range on it rides the index (the agent's, with an agent)."""
    query = select(*RECORD_COLUMNS).where(
        _r.sort_at >= start_ms,
        _r.sort_at < end_ms,
        _r.start_at >= start_ms,
        _r.start_at < end_ms,
        _r.direction == "inbound",
    )
    if apps is not None:
        query = query.where(_r.sdk_app_id.in_(list(apps)))
    if channel is not None:
        query = query.where(_r.channel == channel)
    if skill_group is not None:
        query = query.where(_r.skill_group_id == skill_group)
    if agent is not None:
        query = query.where(_r.agent_email == agent)
    yield from conn.execute(query).mappings()


def raw_cells(rows: Iterable[Mapping[str, Any]], bucket_of: Any) -> dict[tuple[int, int], CallPartial]:
    """Raw records as partials per (bucket, skill group)."""
    found: dict[tuple[int, int], CallPartial] = defaultdict(CallPartial)
    for record in rows:
        found[(bucket_of(record["start_at"]), _group(record))].add_record(record)
    return found


Piece = tuple[str, int, int, bool]  # (span kind, start, end, per skill group)


def stored_cells(
    conn: Connection,
    pieces: Sequence[Piece],
    bucket_starts: Sequence[int],
    *,
    apps: Sequence[int] | None = None,
    channel: str | None = None,
    skill_group: int | None = None,
) -> list[CallCells]:
    """Per piece (span kind, start, end, per skill group), its rollup rows, each owned by the bucket it
    starts in: of all skill groups together (not per skill group: for the buckets) or of each skill group
    (for the skill groups' figures); of the channel filtered on or of all channels; of these apps, or (None)
    of all apps together. One statement (UNION ALL) for all the pieces: one round trip."""
    c = call_rollups.c
    queries = []
    for i, (span, start_ms, end_ms, per_group) in enumerate(pieces):
        query = select(literal(i).label("piece"), c.start_ms, c.skill_group_id, *_STORED).where(
            c.span == span,
            c.start_ms >= start_ms,
            c.start_ms < end_ms,
            c.channel == (ALL_CHANNELS if channel is None else channel),
        )
        # Without an app filter, the rows of all apps together: one row per span instead of one per app.
        query = query.where(c.sdk_app_id.in_(list(apps)) if apps is not None else c.sdk_app_id == ALL_APPS)
        if skill_group is not None:
            query = query.where(c.skill_group_id == skill_group)
        elif per_group:
            query = query.where(c.skill_group_id != ALL_SKILL_GROUPS)
        else:
            query = query.where(c.skill_group_id == ALL_SKILL_GROUPS)
        queries.append(query)
    if not queries:
        return []
    by_piece: list[list[Any]] = [[] for _ in pieces]
    for row in _all_rows(conn, queries[0] if len(queries) == 1 else union_all(*queries)):
        by_piece[row[0]].append(row)
    starts = np.array(bucket_starts, dtype=np.int64)
    return [_cells(rows, starts) for rows in by_piece]


def _cells(rows: list[Any], bucket_starts: npt.NDArray[np.int64]) -> CallCells:
    n = len(COUNTS)
    if not rows:
        return CallCells(
            np.empty(0, np.int64), [], [], np.empty((0, n), np.int64), np.empty(0, np.int64), [], [], []
        )
    columns = list(zip(*rows, strict=True))
    owners = np.searchsorted(bucket_starts, np.array(columns[1], dtype=np.int64), side="right") - 1
    return CallCells(
        buckets=owners.astype(np.int64),
        groups=[int(g) for g in columns[2]],
        names=columns[3],
        counts=np.array(columns[4 : 4 + n], dtype=np.int64).T,
        queue_max=np.array(columns[4 + n], dtype=np.int64),
        queue_hist=columns[5 + n],
        answered_queue_hist=columns[6 + n],
        satisfaction=columns[7 + n],
    )


def _all_rows(conn: Connection, query: Any) -> list[Any]:
    """The rows of a query; on PostgreSQL in the binary protocol, which carries the histograms as they are
    instead of as hex text: half the time of a month's rows (bench/calls_report.py)."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return list(conn.execute(query).all())
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    driver: Any = conn.connection.dbapi_connection
    with driver.cursor(binary=True) as cursor:
        cursor.execute(str(compiled), compiled.params)
        return list(cursor.fetchall())
