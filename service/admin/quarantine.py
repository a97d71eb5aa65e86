"""Quarantine: stored events that break a limit of the protocol, moved out of the log with their bytes kept.

The limits (ingest/protocol.py) keep new events readable by every read path. Rows stored before a limit
existed may break it; ``quarantine`` finds them, moves each one, as it was, to ``quarantined_events`` with the
reason, and derives sessions and actions again from the rest of the log (like ``purge``), so no read path
and no report includes them any more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, insert, select

from service.domain.call_join import DEFAULT_JOIN_RULES, JoinRules
from service.domain.instants import iso, now_ms
from service.domain.sessions import Timeouts
from service.ingest.protocol import stored_event_problem
from service.projection.rebuild import rebuild
from service.storage.schema import events, projection_failures, projection_queue, quarantined_events, sites
from service.storage.seals import remove_ids

SCAN_CHUNK = 5000
_EVENT_COLUMNS = [column.name for column in events.columns]


@dataclass(frozen=True)
class Suspect:
    id: int  # events.id
    site: str
    event_id: str
    size: int  # characters of the stored JSON
    reason: str


def find(conn: Connection) -> Iterator[Suspect]:
    """Every stored event that breaks a limit, in storage order, reading the log in chunks."""
    names = {row.id: row.name for row in conn.execute(select(sites.c.id, sites.c.name))}
    last_id = 0
    while True:
        query = (
            select(events.c.id, events.c.site_id, events.c.event_id, events.c.raw)
            .where(events.c.id > last_id)
            .order_by(events.c.id)
            .limit(SCAN_CHUNK)
        )
        rows = conn.execute(query).all()
        if not rows:
            return
        for row in rows:
            reason = stored_event_problem(row.raw)
            if reason is not None:
                yield Suspect(row.id, names.get(row.site_id, ""), row.event_id, len(row.raw), reason)
        last_id = rows[-1].id


def quarantine(
    engine: Engine,
    timeouts: Timeouts,
    join_rules: JoinRules = DEFAULT_JOIN_RULES,
    *,
    dry_run: bool = False,
    seal_key: bytes | None = None,
) -> list[Suspect]:
    """Find the events that break a limit and, unless ``dry_run``, move them to ``quarantined_events`` in
    one transaction, then rebuild what is derived from the rest. Returns what was found. Each moved event
    leaves the raw log through the seal's removal record (storage/seals.py), signed with ``seal_key``."""
    with engine.connect() as conn:
        found = list(find(conn))
    if dry_run or not found:
        return found
    reasons = {suspect.id: suspect.reason for suspect in found}
    now = now_ms()
    with engine.begin() as conn:

        def move(chunk: list[int]) -> None:
            rows = conn.execute(select(events).where(events.c.id.in_(chunk))).mappings().all()
            conn.execute(
                insert(quarantined_events),
                [
                    {
                        **{name: row[name] for name in _EVENT_COLUMNS},
                        "reason": reasons[row["id"]],
                        "quarantined_at": now,
                    }
                    for row in rows
                ],
            )
            for table in (projection_queue, projection_failures):
                conn.execute(delete(table).where(table.c.id.in_(chunk)))

        remove_ids(conn, "events", sorted(reasons), "quarantine", seal_key, before_delete=move)
    rebuild(engine, timeouts, join_rules)
    return found


QUARANTINE_FIELDS = (
    "id", "site", "page_id", "type", "event_at", "received_at", "quarantined_at", "reason", "raw",
)  # fmt: skip


def quarantined_records(conn: Connection) -> Iterator[dict[str, object]]:
    """The quarantined events, oldest first; ``raw`` as a string holding the stored JSON text, unparsed."""
    query = (
        select(quarantined_events, sites.c.name.label("site_name"))
        .join(sites, sites.c.id == quarantined_events.c.site_id)
        .order_by(quarantined_events.c.id)
    )
    for row in conn.execution_options(yield_per=1000).execute(query).mappings():
        yield {
            "id": row["event_id"],
            "site": row["site_name"],
            "page_id": row["page_id"],
            "type": row["type"],
            "event_at": iso(row["event_at"]),
            "received_at": iso(row["received_at"]),
            "quarantined_at": iso(row["quarantined_at"]),
            "reason": row["reason"],
            "raw": row["raw"],
        }
