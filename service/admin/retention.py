"""Retention: delete raw and quarantined events past a cut-off, and derive sessions and actions again from
what remains."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, func, select

from service.domain.call_join import DEFAULT_JOIN_RULES, JoinRules
from service.domain.instants import iso
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
from service.storage.seals import remove_rows


def purge(
    engine: Engine,
    cutoff_ms: int,
    timeouts: Timeouts,
    join_rules: JoinRules = DEFAULT_JOIN_RULES,
    *,
    seal_key: bytes | None = None,
) -> dict[str, int]:
    """Delete the raw events that happened before ``cutoff_ms`` (corrected time); the counts removed.

    Derived records are then rebuilt from the remaining log, so they stay exactly what ingestion of that log
    would give: a session that spans the cut-off is derived from its remaining events (and may then read as
    observed mid-way). The rebuild reads the whole remaining log. The raw CCC records received before the
    cut-off go too (they hold the same callers' numbers), and the call records are rebuilt from the rest.
    Each removed raw row is recorded (its leaf, under a removal entry of the seal's chain signed with
    ``seal_key``: storage/seals.py), so `calltrail verify` accounts for it.
    """
    with engine.begin() as conn:
        before = _counts(conn)
        reason = f"purge: older than {iso(cutoff_ms)}"
        removed_events = remove_rows(conn, "events", events.c.event_at < cutoff_ms, reason, seal_key)
        # Quarantined events hold the same callers' numbers: retention applies to them as well.
        removed_quarantined = conn.execute(
            delete(quarantined_events).where(quarantined_events.c.event_at < cutoff_ms)
        ).rowcount
        removed_ccc = remove_rows(
            conn, "ccc_raw_records", ccc_raw_records.c.received_at < cutoff_ms, reason, seal_key
        )
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
