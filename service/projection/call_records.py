"""Call records and their legs, projected from the raw CCC log (``ccc_raw_records``).

Each time a raw record of a session is stored (a push, or a page of a pull), ``project_call_sessions``
merges *all* of that session's raw records again (domain/call_merge.py) and replaces its call record and
legs; then the legs' joins to page sessions are brought up to date (call_join.py). Merging from everything
stored is what makes the result independent of the order the records came in and of repeats, and what
makes ``rebuild_call_records`` (everything again, from the log) equal to what arrival produced.

The raw log already holds the customer's side protected under the PII mode (ccc/push.py, ccc/sync.py), so
what is parsed from it is stored as it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, insert, select, tuple_, update

from service.domain.call_join import JoinRules, LegSide
from service.domain.call_merge import merge
from service.domain.call_parsing import read_raw, session_of
from service.domain.call_records import (
    CallLeg,
    CallRecord,
    CallRecordError,
    RecordingRef,
)
from service.domain.instants import now_ms
from service.projection import call_rollups
from service.projection.call_join import leg_side, rejoin, rejoin_everything
from service.projection.statements import chunks, clip, lock
from service.storage.schema import call_legs, call_records, ccc_raw_records

SessionKey = tuple[int, str]


def project_call_sessions(conn: Connection, keys: Iterable[SessionKey], rules: JoinRules) -> None:
    """Replace these sessions' call records and legs by the merge of their raw records, and rejoin."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    if conn.dialect.name == "postgresql":
        # The projection lock first, shared, as every projector takes it (rebuild takes it exclusively).
        lock(conn, ["projection"], shared=True)
        lock(conn, [f"call:{app}:{session}" for app, session in ordered])
    items = _parsed(conn, ordered)
    merged = merge(*items) if items else ()
    old_legs = _stored_legs(conn, ordered)
    if conn.dialect.name == "postgresql":
        # The join locks of every agent whose legs are about to be replaced, before their rows are: a
        # concurrent rejoin of the same agent holds that lock while it updates the agent's legs, so taking it
        # only after deleting them (row locks held) would wait on each other (call_join.py, lock order).
        agents = {agent for agent in (*_agents(old_legs), *_agents_of(merged))}
        lock(conn, [f"join:{app}:{agent}" for app, agent in sorted(agents)])
    touched: list[tuple[int, int | None]] = [(record.sdk_app_id, record.start_ms) for record in merged]
    for batch in chunks(ordered):
        condition = tuple_(call_records.c.sdk_app_id, call_records.c.session_id).in_(list(batch))
        deleted = conn.execute(
            delete(call_records)
            .where(condition)
            .returning(call_records.c.sdk_app_id, call_records.c.start_at)
        )
        touched.extend((int(app), start) for app, start in deleted)
        conn.execute(
            delete(call_legs).where(tuple_(call_legs.c.sdk_app_id, call_legs.c.session_id).in_(list(batch)))
        )
    new_legs = _write(conn, merged, _raw_counts(items))
    rejoin(conn, [*new_legs, *old_legs], [], rules)
    # The calls report's rollups of the hours and days the old and the new records start in are built
    # again. Last: every push of the current hour bumps the same marks, so each holds their row locks
    # (PostgreSQL) only from here to its commit.
    call_rollups.mark(conn, call_rollups.marks_for(touched))


def _agents(legs: Iterable[LegSide]) -> Iterable[tuple[str, str]]:
    return ((str(leg.key[0]), leg.agent_email) for leg in legs if leg.agent_email is not None)


def _agents_of(records: Iterable[CallRecord]) -> Iterable[tuple[str, str]]:
    for record in records:
        for leg in legs_of(record):
            if leg.agent_email is not None:
                yield (str(record.sdk_app_id), leg.agent_email)


def _parsed(conn: Connection, keys: Sequence[SessionKey]) -> list[CallRecord | RecordingRef]:
    by_app: dict[int, list[str]] = defaultdict(list)
    for app, session in keys:
        by_app[app].append(session)
    found: list[CallRecord | RecordingRef] = []
    for app, session_ids in sorted(by_app.items()):
        for batch in chunks(session_ids):
            query = select(ccc_raw_records.c.source, ccc_raw_records.c.action, ccc_raw_records.c.body).where(
                ccc_raw_records.c.sdk_app_id == app, ccc_raw_records.c.session_id.in_(list(batch))
            )
            for row in conn.execute(query):
                item = _readable(app, row.source, row.action, row.body)
                if item is not None:
                    found.append(item)
    return found


def _readable(app: int, source: str, action: str | None, body: str) -> CallRecord | RecordingRef | None:
    # A row names its session only when it was read when stored; reading it again cannot fail then.
    try:
        return read_raw(app, source, action, body)
    except CallRecordError:
        return None


def _raw_counts(items: Sequence[CallRecord | RecordingRef]) -> dict[SessionKey, int]:
    counts: dict[SessionKey, int] = defaultdict(int)
    for item in items:
        counts[item.key] += 1
    return counts


def _stored_legs(conn: Connection, keys: Sequence[SessionKey]) -> list[LegSide]:
    found: list[LegSide] = []
    for batch in chunks(keys):
        query = select(call_legs).where(
            tuple_(call_legs.c.sdk_app_id, call_legs.c.session_id).in_(list(batch))
        )
        found.extend(leg_side(row) for row in conn.execute(query).mappings())
    return found


def _write(
    conn: Connection, records: Sequence[CallRecord], raw_counts: dict[SessionKey, int]
) -> list[LegSide]:
    now = now_ms()
    record_rows = [record_row(record, raw_counts.get(record.key, 0), now) for record in records]
    leg_rows = [row for record in records for row in leg_rows_of(record)]
    for batch in chunks(record_rows):
        conn.execute(insert(call_records), list(batch))
    for batch in chunks(leg_rows):
        conn.execute(insert(call_legs), list(batch))
    return [leg_side(row) for row in leg_rows]


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def record_row(record: CallRecord, raw_count: int, now: int) -> dict[str, Any]:
    sort_at = record.start_ms if record.start_ms is not None else record.time_ms
    return {
        "sdk_app_id": record.sdk_app_id,
        "session_id": record.session_id,
        "channel": record.channel,
        "direction": record.direction,
        "caller": clip(record.caller, call_records.c.caller.type),
        "callee": clip(record.callee, call_records.c.callee.type),
        "customer": clip(record.customer, call_records.c.customer.type),
        "agent_email": clip(record.agent_email, call_records.c.agent_email.type),
        "start_at": record.start_ms,
        "queued_at": record.queued_ms,
        "ring_at": record.ring_ms,
        "accept_at": record.accept_ms,
        "end_at": record.end_ms,
        "record_at": record.time_ms,
        "ivr_s": record.ivr_s,
        "queue_s": record.queue_s,
        "duration_s": record.duration_s,
        "end_status": clip(record.end_status, call_records.c.end_status.type),
        "end_status_code": record.end_status_code,
        "hung_up_by": record.hung_up_by,
        "skill_group_id": record.queued_skill_group_id,
        "skill_group_name": clip(record.queued_skill_group_name, call_records.c.skill_group_name.type),
        "transfers": record.transfers,
        "ivr_keys": _json(list(record.ivr_keys)),
        "satisfaction": _json([asdict(key) for key in record.satisfaction]),
        "record_ids": _json(list(record.record_ids)),
        "record_urls": _json(list(record.record_urls)),
        "recordings": _json([_recording(ref) for ref in record.recordings]),
        "uui": record.uui,
        "sources": _json(list(record.sources)),
        "raw_count": raw_count,
        "updated_at": now,
        "sort_at": sort_at if sort_at is not None else now,
    }


def _recording(ref: RecordingRef) -> dict[str, object]:
    return {
        "kind": ref.kind,
        "record_id": ref.record_id,
        "endpoint_user": ref.endpoint_user,
        "url": ref.url,
        "custom_url": ref.custom_url,
        "at": ref.timestamp_ms,
    }


def legs_of(record: CallRecord) -> tuple[CallLeg, ...]:
    """The record's agent legs; a record that lists none but names its agent (a chat or video session, which
    CCC sends without ServeParticipants, or an older CDR) has one, from its SeatUser and its own times, so
    that it too can join the page session that showed it and count in coverage."""
    if record.legs or record.agent_email is None:
        return record.legs
    return (
        CallLeg(
            agent_email=record.agent_email,
            start_ms=record.ring_ms if record.ring_ms is not None else record.start_ms,
            ring_ms=record.ring_ms,
            accept_ms=record.accept_ms,
            end_ms=record.end_ms,
            end_status=record.end_status,
            skill_group_id=record.queued_skill_group_id,
            skill_group_name=record.queued_skill_group_name,
        ),
    )


def leg_rows_of(record: CallRecord) -> list[dict[str, Any]]:
    rows = []
    for index, leg in enumerate(legs_of(record)):
        join_at = leg.ring_ms if leg.ring_ms is not None else leg.start_ms
        rows.append(
            {
                "sdk_app_id": record.sdk_app_id,
                "session_id": record.session_id,
                "leg": index,
                "channel": record.channel,
                "customer": clip(record.customer, call_legs.c.customer.type),
                "agent_email": clip(leg.agent_email, call_legs.c.agent_email.type),
                "type": clip(leg.type, call_legs.c.type.type),
                "start_at": leg.start_ms,
                "ring_at": leg.ring_ms,
                "accept_at": leg.accept_ms,
                "end_at": leg.end_ms,
                "end_status": clip(leg.end_status, call_legs.c.end_status.type),
                "skill_group_id": leg.skill_group_id,
                "skill_group_name": clip(leg.skill_group_name, call_legs.c.skill_group_name.type),
                "transfer_from": clip(leg.transfer_from, call_legs.c.transfer_from.type),
                "transfer_to": clip(leg.transfer_to, call_legs.c.transfer_to.type),
                "record_id": clip(leg.record_id, call_legs.c.record_id.type),
                "record_url": leg.record_url,
                "join_at": join_at,
                "page_session_id": None,
                "join_state": None,
                "join_offset_ms": None,
            }
        )
    return rows


def rebuild_call_records(conn: Connection, rules: JoinRules, chunk: int = 2000) -> int:
    """Every call record, leg and join again from the raw log; each raw record's session read again (a
    record stored before it was named, or one a newer parser reads). Returns the raw records read."""
    conn.execute(delete(call_legs))
    conn.execute(delete(call_records))
    last_id, total = 0, 0
    while True:
        rows = conn.execute(
            select(
                ccc_raw_records.c.id,
                ccc_raw_records.c.sdk_app_id,
                ccc_raw_records.c.source,
                ccc_raw_records.c.action,
                ccc_raw_records.c.body,
                ccc_raw_records.c.session_id,
                ccc_raw_records.c.problem,
            )
            .where(ccc_raw_records.c.id > last_id)
            .order_by(ccc_raw_records.c.id)
            .limit(chunk)
        ).all()
        if not rows:
            break
        changed = []
        for row in rows:
            session_id, problem = session_of(row.sdk_app_id, row.source, row.action, row.body)
            if (session_id, problem) != (row.session_id, row.problem):
                changed.append({"k_id": row.id, "session_id": session_id, "problem": problem})
        if changed:
            conn.execute(
                update(ccc_raw_records)
                .where(ccc_raw_records.c.id == bindparam("k_id"))
                .values(session_id=bindparam("session_id"), problem=bindparam("problem")),
                changed,
            )
        last_id, total = rows[-1].id, total + len(rows)
    after: SessionKey = (0, "")
    while True:
        key = tuple_(ccc_raw_records.c.sdk_app_id, ccc_raw_records.c.session_id)
        found = conn.execute(
            select(ccc_raw_records.c.sdk_app_id, ccc_raw_records.c.session_id)
            .where(ccc_raw_records.c.session_id.is_not(None), key > after)
            .group_by(ccc_raw_records.c.sdk_app_id, ccc_raw_records.c.session_id)
            .order_by(ccc_raw_records.c.sdk_app_id, ccc_raw_records.c.session_id)
            .limit(chunk)
        ).all()
        if not found:
            break
        batch = [(int(app), str(session)) for app, session in found]
        items = _parsed(conn, batch)
        _write(conn, merge(*items) if items else (), _raw_counts(items))
        after = batch[-1]
    call_rollups.invalidate(conn)
    call_rollups.mark_history(conn)
    rejoin_everything(conn, rules)
    return total
