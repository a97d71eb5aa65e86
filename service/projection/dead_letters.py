"""Dead letters: stored events whose projection failed, kept visible (the quality report) and retryable.

An event that cannot be projected stays in the raw log; its row here says why, when it last failed and how
often. ``calltrail project --retry-failed`` puts them back in the projection queue; ``calltrail rebuild``
projects the whole log again and records anew whatever still fails.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from service.domain.instants import now_ms
from service.storage.schema import events, projection_failures, projection_queue

FAILURE_TEXT_LIMIT = 500


def describe_failure(exc: BaseException) -> str:
    """The error's kind, and for a database error the first line of the database's message (parameters are
    hidden by the engines; details, which can quote values, are on later lines). Any other error's message
    may quote the event it failed on, so only its kind is kept: dead letters and the log hold no callers'
    numbers. The event itself is in the raw log, for whoever investigates."""
    if isinstance(exc, DBAPIError):
        message = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return f"{type(exc.orig).__name__}: {message}"[:FAILURE_TEXT_LIMIT]
    return type(exc).__name__


def record_failure(conn: Connection, event_row_id: int, error: str) -> None:
    """Keep an event whose projection failed as a dead letter (again: one more attempt)."""
    found = conn.execute(
        select(events.c.site_id, events.c.event_id).where(events.c.id == event_row_id)
    ).first()
    if found is None:
        return  # purged meanwhile: nothing left to project
    now = now_ms()
    updated = conn.execute(
        update(projection_failures)
        .where(projection_failures.c.id == event_row_id)
        .values(error=error, failed_at=now, attempts=projection_failures.c.attempts + 1)
    ).rowcount
    if not updated:
        conn.execute(
            insert(projection_failures).values(
                id=event_row_id,
                site_id=found.site_id,
                event_id=found.event_id,
                error=error,
                failed_at=now,
                attempts=1,
            )
        )


def requeue_failures(conn: Connection) -> int:
    """Put every dead letter back in the projection queue; how many. Their rows stay until they project, and
    one that fails again is recorded again, with one more attempt."""
    ids = [int(i) for i in conn.execute(select(projection_failures.c.id)).scalars()]
    queued = set(conn.execute(select(projection_queue.c.id).where(projection_queue.c.id.in_(ids))).scalars())
    fresh = [{"id": i} for i in ids if i not in queued]
    if fresh:
        conn.execute(insert(projection_queue), fresh)
    return len(ids)


def forget_projected_failures(conn: Connection, ids: Sequence[int]) -> None:
    """Dead letters whose events have now been projected are no longer failures."""
    if ids:
        conn.execute(delete(projection_failures).where(projection_failures.c.id.in_(list(ids))))


def failure_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(projection_failures)).scalar_one())
