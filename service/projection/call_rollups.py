"""Rollups of the calls report: partial sums of inbound call records per UTC quarter hour and per UTC hour,
app, channel and queued skill group, kept right by generation marks as the page-side rollups are
(projection/rollups.py).

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
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.domain.buckets import HOUR_MS, QUARTER_MS
from service.domain.call_metrics import (
    COUNTS,
    NO_SKILL_GROUP,
    CallCells,
    CallPartial,
    encode_satisfaction,
)
from service.domain.histograms import encode_histogram
from service.storage.schema import call_records, call_rollup_marks, call_rollups

Mark = tuple[int, int]  # (sdk_app_id, UTC hour start)
FAR_FUTURE_MS = 4_102_444_800_000
_MARK_CHUNK = 5_000
_r = call_records.c
RECORD_COLUMNS = (
    _r.sdk_app_id, _r.start_at, _r.channel, _r.skill_group_id, _r.skill_group_name, _r.accept_at,
    _r.queued_at, _r.queue_s, _r.end_status, _r.hung_up_by, _r.transfers, _r.satisfaction,
)  # fmt: skip


def marks_for(starts: Iterable[tuple[int, int | None]]) -> list[Mark]:
    """The hours of these (sdk_app_id, start_at) records; a record without a start is in no report."""
    return sorted({(app, start - start % HOUR_MS) for app, start in starts if start is not None})


def mark(conn: Connection, marks: Sequence[Mark]) -> None:
    """Bump each mark's generation, creating it dirty when new. Sorted, so writers lock marks in one order."""
    if not marks:
        return
    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(call_rollup_marks).on_conflict_do_update(
        index_elements=["sdk_app_id", "start_ms"], set_={"gen": call_rollup_marks.c.gen + 1}
    )
    ordered = sorted(set(marks))
    for start in range(0, len(ordered), _MARK_CHUNK):
        rows = [
            {"sdk_app_id": app, "start_ms": hour, "gen": 1, "built_gen": 0}
            for app, hour in ordered[start : start + _MARK_CHUNK]
        ]
        conn.execute(statement, rows)


def mark_history(conn: Connection) -> int:
    """Mark every hour of the stored call records (after a rebuild, or records loaded around the
    projection); returns how many marks were set."""
    hour = _r.start_at - _r.start_at % HOUR_MS
    found = conn.execute(
        select(_r.sdk_app_id, hour).where(_r.start_at.is_not(None)).group_by(_r.sdk_app_id, hour)
    ).all()
    marks = [(int(app), int(start)) for app, start in found]
    mark(conn, marks)
    return len(marks)


def invalidate(conn: Connection) -> None:
    """Every hour dirty (for a rebuild): its rows stay until a report rebuilds it."""
    conn.execute(update(call_rollup_marks).values(gen=call_rollup_marks.c.gen + 1))


def refresh(engine: Engine, start_ms: int, end_ms: int, apps: Sequence[int] | None = None) -> int:
    """Rebuild the dirty hours overlapping [start, end) (of these apps only, when given); returns how many."""
    m = call_rollup_marks.c
    query = select(m.sdk_app_id, m.start_ms).where(
        m.start_ms >= start_ms - start_ms % HOUR_MS, m.start_ms < end_ms, m.gen > m.built_gen
    )
    if apps is not None:
        query = query.where(m.sdk_app_id.in_(list(apps)))
    with engine.connect() as conn:
        dirty = sorted((int(app), int(hour)) for app, hour in conn.execute(query))
    for app, hour in dirty:
        with engine.begin() as conn:
            if _claim(conn, app, hour):
                _build(conn, app, hour)
    return len(dirty)


def _claim(conn: Connection, app: int, hour: int) -> bool:
    m = call_rollup_marks.c
    claimed = conn.execute(
        update(call_rollup_marks)
        .where(m.sdk_app_id == app, m.start_ms == hour, m.gen > m.built_gen)
        .values(built_gen=m.gen)
    ).rowcount
    return bool(claimed)


def _build(conn: Connection, app: int, hour: int) -> None:
    c = call_rollups.c
    conn.execute(
        delete(call_rollups).where(c.sdk_app_id == app, c.start_ms >= hour, c.start_ms < hour + HOUR_MS)
    )
    cells: dict[tuple[str, int, str, int], CallPartial] = defaultdict(CallPartial)
    for record in records(conn, hour, hour + HOUR_MS, apps=[app]):
        start, channel, group = record["start_at"], record["channel"], _group(record)
        cells[("quarter", start - start % QUARTER_MS, channel, group)].add_record(record)
        cells[("hour", hour, channel, group)].add_record(record)
    rows = [_row(app, key, partial) for key, partial in cells.items()]
    if rows:
        conn.execute(insert(call_rollups), rows)


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
        "queue_hist": encode_histogram(p.queue),
        "answered_queue_hist": encode_histogram(p.answered_queue),
        "satisfaction": encode_satisfaction(p.satisfaction),
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


def stored_cells(
    conn: Connection,
    span: str,
    start_ms: int,
    end_ms: int,
    bucket_starts: Sequence[int],
    *,
    apps: Sequence[int] | None = None,
    channel: str | None = None,
    skill_group: int | None = None,
) -> CallCells:
    """The rollup rows of one span kind in [start, end), each owned by the bucket it starts in."""
    c = call_rollups.c
    query = select(
        c.start_ms, c.skill_group_id, c.skill_group_name, *(c[name] for name in COUNTS),
        func.coalesce(c.queue_max, -1), c.queue_hist, c.answered_queue_hist, c.satisfaction,
    ).where(c.span == span, c.start_ms >= start_ms, c.start_ms < end_ms)  # fmt: skip
    if apps is not None:
        query = query.where(c.sdk_app_id.in_(list(apps)))
    if channel is not None:
        query = query.where(c.channel == channel)
    if skill_group is not None:
        query = query.where(c.skill_group_id == skill_group)
    rows = conn.execute(query).all()
    n = len(COUNTS)
    if not rows:
        return CallCells(
            np.empty(0, np.int64), [], [], np.empty((0, n), np.int64), np.empty(0, np.int64), [], [], []
        )
    columns = list(zip(*rows, strict=True))
    owners = np.searchsorted(np.array(bucket_starts), np.array(columns[0], dtype=np.int64), side="right") - 1
    return CallCells(
        buckets=owners.astype(np.int64),
        groups=[int(g) for g in columns[1]],
        names=columns[2],
        counts=np.array(columns[3 : 3 + n], dtype=np.int64).T,
        queue_max=np.array(columns[3 + n], dtype=np.int64),
        queue_hist=[bytes(b) for b in columns[4 + n]],
        answered_queue_hist=[bytes(b) for b in columns[5 + n]],
        satisfaction=columns[6 + n],
    )
