"""Retention: delete raw and quarantined events past a cut-off, and derive sessions and actions again from
what remains."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, func, select

from service.domain.call_join import DEFAULT_JOIN_RULES, JoinRules
from service.domain.sessions import Timeouts
from service.projection.rebuild import rebuild
from service.storage.schema import (
    actions,
    call_records,
    ccc_raw_records,
    events,
    quarantined_events,
    sessions,
)


def purge(
    engine: Engine, cutoff_ms: int, timeouts: Timeouts, join_rules: JoinRules = DEFAULT_JOIN_RULES
) -> dict[str, int]:
    """Delete the raw events that happened before ``cutoff_ms`` (corrected time); the counts removed.

    Derived records are then rebuilt from the remaining log, so they stay exactly what ingestion of that log
    would give: a session that spans the cut-off is derived from its remaining events (and may then read as
    observed mid-way). The rebuild reads the whole remaining log. The raw CCC records received before the
    cut-off go too (they hold the same callers' numbers), and the call records are rebuilt from the rest.
    """
    with engine.begin() as conn:
        before = _counts(conn)
        removed_events = conn.execute(delete(events).where(events.c.event_at < cutoff_ms)).rowcount
        # Quarantined events hold the same callers' numbers: retention applies to them as well.
        removed_quarantined = conn.execute(
            delete(quarantined_events).where(quarantined_events.c.event_at < cutoff_ms)
        ).rowcount
        removed_ccc = conn.execute(
            delete(ccc_raw_records).where(ccc_raw_records.c.received_at < cutoff_ms)
        ).rowcount
    rebuild(engine, timeouts, join_rules)
    with engine.connect() as conn:
        after = _counts(conn)
    return {
        "events": removed_events,
        "sessions": before["sessions"] - after["sessions"],
        "actions": before["actions"] - after["actions"],
        "quarantined events": removed_quarantined,
        "CCC raw records": removed_ccc,
        "call records": before["call records"] - after["call records"],
    }


def _counts(conn: Connection) -> dict[str, int]:
    return {
        name: conn.execute(select(func.count()).select_from(table)).scalar_one()
        for name, table in (("sessions", sessions), ("actions", actions), ("call records", call_records))
    }
