"""Erasure on request (China's PIPL, GDPR): one customer's data out of the raw logs and everything derived.

The raw logs are the source of everything else, so erasure removes the customer's rows there: the hash
events whose ``mobile`` or ``userId`` is the customer and the callOut messages with their ``phoneNumber``
(events, and the quarantine), and the raw CCC records that name them (domain/erasure.py says which fields,
in which stored forms). Sessions, actions, call records and their legs are then derived again from what is
left (as ``purge`` does), so nothing derived keeps them. Each removed raw row leaves its leaf in a removal
record of the seal's chain (storage/seals.py), signed, so `calltrail verify` still passes; the record
holds hashes and a reason, never the customer's number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, delete, func, select, tuple_

from service.domain.call_join import DEFAULT_JOIN_RULES, JoinRules
from service.domain.erasure import EXACT, MASKED, Customer, Match, event_match, raw_record_match
from service.domain.sessions import Timeouts
from service.projection.rebuild import rebuild
from service.storage.schema import (
    actions,
    call_records,
    ccc_raw_records,
    events,
    hash_events,
    projection_failures,
    projection_queue,
    quarantined_events,
    sessions,
)
from service.storage.seals import remove_ids

SCAN_CHUNK = 5000
DELETE_CHUNK = 500


@dataclass
class Found:
    """What holds the customer: row ids per raw table, matched exactly or by a mask only."""

    events: dict[Match, list[int]] = field(default_factory=lambda: {EXACT: [], MASKED: []})
    quarantined: dict[Match, list[int]] = field(default_factory=lambda: {EXACT: [], MASKED: []})
    ccc: dict[Match, list[int]] = field(default_factory=lambda: {EXACT: [], MASKED: []})

    def chosen(self, with_masked: bool) -> tuple[list[int], list[int], list[int]]:
        def pick(found: dict[Match, list[int]]) -> list[int]:
            return sorted(found[EXACT] + (found[MASKED] if with_masked else []))

        return pick(self.events), pick(self.quarantined), pick(self.ccc)


def find(conn: Connection, customer: Customer) -> Found:
    """Every raw row that holds the customer, reading the logs in chunks by id."""
    found = Found()
    for table, target in ((events, found.events), (quarantined_events, found.quarantined)):
        last = 0
        while True:
            rows = conn.execute(
                select(table.c.id, table.c.type, table.c.raw)
                .where(table.c.id > last, table.c.type.in_(("hash", "message")))
                .order_by(table.c.id)
                .limit(SCAN_CHUNK)
            ).all()
            if not rows:
                break
            for row in rows:
                match = event_match(customer, row.type, row.raw)
                if match is not None:
                    target[match].append(int(row.id))
            last = rows[-1].id
    last = 0
    while True:
        records = conn.execute(
            select(ccc_raw_records.c.id, ccc_raw_records.c.body)
            .where(ccc_raw_records.c.id > last)
            .order_by(ccc_raw_records.c.id)
            .limit(SCAN_CHUNK)
        ).all()
        if not records:
            break
        for record in records:
            match = raw_record_match(customer, record.body)
            if match is not None:
                found.ccc[match].append(int(record.id))
        last = records[-1].id
    return found


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), DELETE_CHUNK):
        yield ids[start : start + DELETE_CHUNK]


def _derived_estimate(conn: Connection, event_ids: list[int], ccc_ids: list[int]) -> dict[str, int]:
    """Sessions and call records derived from these raw rows (what the rebuild will drop or shrink)."""
    session_ids: set[str] = set()
    call_keys: set[tuple[int, str]] = set()
    for chunk in _chunks(event_ids):
        keys = select(events.c.site_id, events.c.event_id).where(events.c.id.in_(chunk))
        session_ids.update(
            s
            for s in conn.execute(
                select(hash_events.c.session_id).where(
                    tuple_(hash_events.c.site_id, hash_events.c.event_id).in_(keys)
                )
            ).scalars()
            if s is not None
        )
    for chunk in _chunks(ccc_ids):
        for app, session in conn.execute(
            select(ccc_raw_records.c.sdk_app_id, ccc_raw_records.c.session_id).where(
                ccc_raw_records.c.id.in_(chunk), ccc_raw_records.c.session_id.is_not(None)
            )
        ):
            call_keys.add((int(app), str(session)))
    return {"sessions": len(session_ids), "call records": len(call_keys)}


@dataclass(frozen=True)
class Erasure:
    removed: dict[str, int]  # per table: what went (or, in a dry run, would go)
    masked_only: dict[str, int]  # rows matched by a mask only, left unless asked
    dry_run: bool


def _counts(conn: Connection) -> dict[str, int]:
    return {
        name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        for name, table in (("sessions", sessions), ("actions", actions), ("call records", call_records))
    }


def erase(
    engine: Engine,
    customer: Customer,
    timeouts: Timeouts,
    join_rules: JoinRules = DEFAULT_JOIN_RULES,
    *,
    dry_run: bool = True,
    with_masked: bool = False,
    seal_key: bytes | None = None,
    reason: str = "erasure request",
) -> Erasure:
    """Find the customer's raw rows and, unless ``dry_run``, remove them (with the seal's removal record,
    reason ``erasure: <reason>``) in one transaction, then derive everything again from the rest."""
    with engine.connect() as conn:
        found = find(conn, customer)
        event_ids, quarantined_ids, ccc_ids = found.chosen(with_masked)
        masked_only = {
            "raw events": 0 if with_masked else len(found.events[MASKED]),
            "quarantined events": 0 if with_masked else len(found.quarantined[MASKED]),
            "raw CCC records": 0 if with_masked else len(found.ccc[MASKED]),
        }
        if dry_run:
            estimate = _derived_estimate(conn, event_ids, ccc_ids)
            removed = {
                "raw events": len(event_ids),
                "sessions": estimate["sessions"],
                "quarantined events": len(quarantined_ids),
                "raw CCC records": len(ccc_ids),
                "call records": estimate["call records"],
            }
            return Erasure(removed, masked_only, dry_run=True)
    record_reason = f"erasure: {reason}"
    with engine.begin() as conn:
        before = _counts(conn)

        def forget_queued(ids: list[int]) -> None:
            for table in (projection_queue, projection_failures):
                conn.execute(delete(table).where(table.c.id.in_(ids)))

        removed_events = remove_ids(
            conn, "events", event_ids, record_reason, seal_key, before_delete=forget_queued
        )
        removed_quarantined = 0
        for chunk in _chunks(quarantined_ids):
            removed_quarantined += conn.execute(
                delete(quarantined_events).where(quarantined_events.c.id.in_(chunk))
            ).rowcount
        removed_ccc = remove_ids(conn, "ccc_raw_records", ccc_ids, record_reason, seal_key)
    rebuild(engine, timeouts, join_rules)
    with engine.connect() as conn:
        after = _counts(conn)
    removed = {
        "raw events": removed_events,
        "sessions": before["sessions"] - after["sessions"],
        "actions": before["actions"] - after["actions"],
        "quarantined events": removed_quarantined,
        "raw CCC records": removed_ccc,
        "call records": before["call records"] - after["call records"],
    }
    return Erasure(removed, masked_only, dry_run=False)
