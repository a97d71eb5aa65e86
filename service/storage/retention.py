"""Retention: delete raw events and everything derived from them past a cut-off."""

from __future__ import annotations

from sqlalchemy import Engine, delete

from service.storage.schema import actions, events, hash_events, sessions


def purge(engine: Engine, cutoff_ms: int) -> dict[str, int]:
    """Delete what happened before ``cutoff_ms`` (by corrected event time); the counts per table.

    Sessions go when their last event is before the cut-off, so a call that spans it is kept whole.
    """
    removed: dict[str, int] = {}
    with engine.begin() as conn:
        removed["actions"] = conn.execute(delete(actions).where(actions.c.at < cutoff_ms)).rowcount
        removed["sessions"] = conn.execute(
            delete(sessions).where(sessions.c.last_event_at < cutoff_ms)
        ).rowcount
        removed["hash_events"] = conn.execute(
            delete(hash_events).where(hash_events.c.event_at < cutoff_ms)
        ).rowcount
        removed["events"] = conn.execute(delete(events).where(events.c.event_at < cutoff_ms)).rowcount
    return removed
