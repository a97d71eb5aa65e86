"""Rebuild: every derived record recomputed from the raw log, through the same projection ingestion uses,
with an event that cannot be projected set aside as a dead letter instead of failing the rest."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Engine, delete, select

from service.domain.call_join import DEFAULT_JOIN_RULES, JoinRules
from service.domain.sessions import Timeouts
from service.projection import rollups
from service.projection.call_records import rebuild_call_records
from service.projection.dead_letters import describe_failure, record_failure
from service.projection.derive import project
from service.projection.statements import lock
from service.storage.events import EventRow
from service.storage.failures import classify_failure
from service.storage.schema import (
    actions,
    events,
    hash_events,
    projection_failures,
    projection_queue,
    sessions,
)


def clear(conn: Connection) -> None:
    """Delete everything derived; the raw events stay."""
    for table in (actions, sessions, hash_events):
        conn.execute(delete(table))
    rollups.invalidate(conn)


def stored_events(conn: Connection, after_id: int, limit: int) -> list[tuple[int, EventRow]]:
    """Raw events by ascending id, as the writer hands them to the projector."""
    names = list(EventRow.__annotations__)
    query = (
        select(events.c.id, *(events.c[name] for name in names))
        .where(events.c.id > after_id)
        .order_by(events.c.id)
        .limit(limit)
    )
    found: list[tuple[int, EventRow]] = []
    for row in conn.execute(query):
        found.append((row.id, cast(EventRow, {name: row._mapping[name] for name in names})))
    return found


def rebuild(
    engine: Engine, timeouts: Timeouts, join_rules: JoinRules = DEFAULT_JOIN_RULES, chunk: int = 2000
) -> int:
    """Recompute every derived record from the raw log, through the same projection ingestion uses.

    Because the projection recomputes from what is stored, feeding it the log in chunks yields what ingestion
    produced. It runs as one transaction, so readers see the old records until it commits; on PostgreSQL it
    holds the projection lock exclusively, so writers wait rather than project half-rebuilt state (on SQLite
    the transaction's write lock does that). An event that cannot be projected becomes a dead letter
    (projection/dead_letters.py) and the rest is rebuilt without it. The call records are rebuilt from the
    raw CCC log first, so the sessions' projection joins them as ingestion does. Returns the number of events
    read.
    """
    with engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            lock(conn, ["projection"])
        # Everything stored now is projected below; what is stored meanwhile stays queued and is projected
        # again after this commits, which changes nothing (the projection recomputes from what is stored).
        # Rows a projector has claimed are skipped: it waits for this transaction's lock, then redoes them.
        queued = select(projection_queue.c.id).with_for_update(skip_locked=True)
        conn.execute(delete(projection_queue).where(projection_queue.c.id.in_(queued)))
        clear(conn)
        conn.execute(delete(projection_failures))
        rebuild_call_records(conn, join_rules)
        last_id, total = 0, 0
        while found := stored_events(conn, last_id, chunk):
            _project_isolating_failures(conn, found, timeouts, join_rules)
            last_id = found[-1][0]
            total += len(found)
        return total


def _project_isolating_failures(
    conn: Connection, found: list[tuple[int, EventRow]], timeouts: Timeouts, join_rules: JoinRules
) -> None:
    """Project a chunk in a savepoint; when it fails for a reason of its own, each event in a savepoint of
    its own, so that one event that cannot be projected becomes a dead letter instead of failing the rest."""
    try:
        with conn.begin_nested():
            project(conn, [row for _, row in found], timeouts, join_rules)
        return
    except Exception as exc:
        if classify_failure(exc) != "error":
            raise
    for event_row_id, row in found:
        try:
            with conn.begin_nested():
                project(conn, [row], timeouts, join_rules)
        except Exception as exc:
            if classify_failure(exc) != "error":
                raise
            record_failure(conn, event_row_id, describe_failure(exc))
