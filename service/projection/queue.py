"""The projection of stored events, after their commit: the queue, the batches, and the wait for them.

The writer stores events and queues their ids in one transaction and answers at once; the projection
(projection/derive.py) then derives sessions, actions and rollups from queued events in batches of its own,
in the SQLite writer's thread between its commits, or in PostgreSQL's projection thread
(ingest/loop_writer.py), when ingest/idle.py's schedule gives it a turn. Each batch removes its ids from the
queue in the transaction that writes what they derive, so an event leaves the queue exactly when its
projection is committed. Several workers' projectors share one queue: on PostgreSQL each claims rows with
FOR UPDATE SKIP LOCKED, and the projection's advisory locks order what they derive; SQLite has one writer.

Readers that must see everything acknowledged so far wait with ``wait_until_projected``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, Engine, bindparam, func, select, text

from service import telemetry
from service.domain.call_join import DEFAULT_JOIN_RULES, JoinRules
from service.domain.sessions import Timeouts
from service.projection.dead_letters import describe_failure, forget_projected_failures, record_failure
from service.projection.derive import project
from service.storage.engine import Transactor
from service.storage.events import COLUMNS, EventRow
from service.storage.failures import classify_failure
from service.storage.schema import events, projection_failures, projection_queue

log = logging.getLogger("calltrail.projector")

BACKLOG_COUNT_CAP = 1_000_000
_CLAIM = {
    "postgresql": "DELETE FROM projection_queue WHERE id IN (SELECT id FROM projection_queue ORDER BY id "
    "LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING id",
    "sqlite": "DELETE FROM projection_queue WHERE id IN (SELECT id FROM projection_queue ORDER BY id "
    "LIMIT :limit) RETURNING id",
}
_CLAIM_ONE = "DELETE FROM projection_queue WHERE id = :id RETURNING id"


def claim(conn: Connection, limit: int) -> list[int]:
    """Take up to ``limit`` of the oldest queued ids out of the queue, for this transaction to project."""
    found = conn.execute(text(_CLAIM[conn.dialect.name]), {"limit": limit}).scalars()
    return sorted(found)


def stored_rows(conn: Connection, ids: Sequence[int]) -> list[EventRow]:
    """The events of these ids that still exist, in id order."""
    rows: list[EventRow] = []
    query = (
        select(*(events.c[name] for name in COLUMNS))
        .where(events.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(events.c.id)
    )
    for start in range(0, len(ids), 500):
        found = conn.execute(query, {"ids": list(ids[start : start + 500])})
        rows.extend(cast(EventRow, dict(row._mapping)) for row in found)
    return rows


def project_claimed(
    conn: Connection, ids: Sequence[int], timeouts: Timeouts, join_rules: JoinRules = DEFAULT_JOIN_RULES
) -> int:
    rows = stored_rows(conn, ids)
    if rows:
        project(conn, rows, timeouts, join_rules)
    if ids and conn.execute(select(projection_failures.c.id).limit(1)).first() is not None:
        forget_projected_failures(conn, ids)
    return len(ids)


@dataclass(frozen=True)
class Backlog:
    events: int  # up to BACKLOG_COUNT_CAP
    oldest_received_at: int | None  # ms since the epoch


def backlog(conn: Connection) -> Backlog:
    capped = select(projection_queue.c.id).limit(BACKLOG_COUNT_CAP).subquery()
    count = int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
    oldest = conn.execute(
        select(events.c.received_at).where(
            events.c.id == select(func.min(projection_queue.c.id)).scalar_subquery()
        )
    ).scalar()
    return Backlog(count, None if oldest is None else int(oldest))


class QueuedProjection:
    """The writer's idle work (storage.writer.IdleWork): project one batch of queued events.

    A batch that fails for a reason of its own (not the database being unavailable) is projected again one
    event per transaction, so one event that cannot be projected holds up nothing else: it leaves the queue
    for ``projection_failures`` (a dead letter, counted in the quality report and in
    ``calltrail_projection_events_total{result="failed"}``), stays in the raw log, and
    ``calltrail project --retry-failed`` or ``calltrail rebuild`` tries it again.
    """

    def __init__(self, timeouts: Timeouts, batch: int, join_rules: JoinRules = DEFAULT_JOIN_RULES) -> None:
        self.timeouts = timeouts
        self.join_rules = join_rules
        self.batch = batch
        self._measured_at = 0.0
        self._last_backlog = 0  # as last measured

    def __call__(self, transactor: Transactor, most: int | None = None) -> int:
        started = time.perf_counter()
        batch = self.batch if most is None else min(most, self.batch)
        claimed: list[int] = []

        def work(conn: Connection) -> int:
            claimed[:] = claim(conn, batch)
            return project_claimed(conn, claimed, self.timeouts, self.join_rules)

        try:
            done = transactor.run(work)
        except Exception as exc:
            if classify_failure(exc) != "error" or not claimed:
                raise
            log.warning("projecting %d events failed; projecting them one by one", len(claimed))
            done = self._one_by_one(transactor, claimed)
        else:
            if done:
                telemetry.PROJECTION_SECONDS.observe(time.perf_counter() - started)
                telemetry.PROJECTION_EVENTS.labels("projected").inc(done)
        self._measure(transactor, idle=done < batch)
        return done

    def _one_by_one(self, transactor: Transactor, ids: list[int]) -> int:
        for event_row_id in ids:

            def one(conn: Connection, event_row_id: int = event_row_id) -> int:
                if not conn.execute(text(_CLAIM_ONE), {"id": event_row_id}).scalars().all():
                    return 0  # another worker took it meanwhile
                return project_claimed(conn, [event_row_id], self.timeouts, self.join_rules)

            try:
                telemetry.PROJECTION_EVENTS.labels("projected").inc(transactor.run(one))
            except Exception as exc:
                if classify_failure(exc) != "error":
                    raise
                error = describe_failure(exc)
                log.error(
                    "event row %d cannot be projected; it stays in the raw log: %s", event_row_id, error
                )
                transactor.run(functools.partial(_dead_letter, event_row_id=event_row_id, error=error))
                telemetry.PROJECTION_EVENTS.labels("failed").inc()
        return len(ids)

    def _measure(self, transactor: Transactor, *, idle: bool) -> None:
        # Counting a large queue takes a while: at most once a second, and at once when it has emptied after
        # a backlog (so the gauges read 0 without waiting). Under light load every small batch empties the
        # queue: counting after each would cost a transaction per commit.
        now = time.monotonic()
        if not (idle and self._last_backlog) and now - self._measured_at < 1.0:
            return
        self._measured_at = now
        found = transactor.run(backlog)
        self._last_backlog = found.events
        telemetry.PROJECTION_BACKLOG.set(found.events)
        lag = 0.0 if found.oldest_received_at is None else time.time() - found.oldest_received_at / 1000
        telemetry.PROJECTION_LAG.set(max(0.0, lag))


def _dead_letter(conn: Connection, event_row_id: int, error: str) -> None:
    conn.execute(text(_CLAIM_ONE), {"id": event_row_id})
    record_failure(conn, event_row_id, error)


def queued_through(conn: Connection) -> int | None:
    """The largest queued id: what a reader that arrives now waits for (None: nothing is queued)."""
    value = conn.execute(select(func.max(projection_queue.c.id))).scalar()
    return None if value is None else int(value)


def wait_until_projected(engine: Engine, timeout_s: float, poll_s: float = 0.005) -> int:
    """Wait until every event stored before the call is projected, or ``timeout_s`` passed; returns how
    many of those events are still queued (0: everything acknowledged so far can be read)."""
    oldest = select(func.min(projection_queue.c.id))
    with engine.connect() as conn:
        through = queued_through(conn)
        if through is None:
            return 0
        deadline = time.monotonic() + timeout_s
        while True:
            conn.rollback()  # a fresh snapshot for each look
            first = conn.execute(oldest).scalar()
            if first is None or first > through:
                return 0
            if time.monotonic() >= deadline:
                left = select(projection_queue.c.id).where(projection_queue.c.id <= through)
                capped = left.limit(BACKLOG_COUNT_CAP).subquery()
                return int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
            time.sleep(poll_s)
            poll_s = min(poll_s * 2, 0.05)


def drain(
    transactor: Transactor, timeouts: Timeouts, batch: int = 2000, join_rules: JoinRules = DEFAULT_JOIN_RULES
) -> int:
    """Project everything queued, batch after batch, in the caller's thread; returns how many."""
    work = QueuedProjection(timeouts, batch, join_rules)
    total = 0
    while done := work(transactor):
        total += done
    return total
