"""The projection: hash events, sessions and agent actions derived from the raw event log.

It runs on events already stored, in batches taken from the projection queue (projection/queue.py), or on
the whole log (``rebuild``). It recomputes whole units rather than patching: every *stream* (see
domain/sessions.py) that got a call event is folded again from all of its events, and every page that got an
event (or whose hash events changed session) has its actions computed again. Recomputing from the stored set
is what makes the result independent of arrival order and batching, of projecting an event twice, and what
makes `rebuild` equal to ingestion.

On PostgreSQL, concurrent projectors (worker processes) serialize per stream, then per page, then per session
(for the card and call-out counts) with transaction-scoped advisory locks, taken in that one global order and
sorted within each kind, so they cannot deadlock; a projector that waited then reads, in a new statement,
what the other committed. SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)

from service.domain.call_join import DEFAULT_JOIN_RULES, JoinRules, PageSide
from service.domain.ccc import CccHash, Status, parse_hash
from service.domain.sessions import CallEvent, Session, Timeouts, fold, resume, stream_of
from service.projection import rollups
from service.projection.action_rows import (
    compute_actions,
    pages_with_actions,
    recount_sessions,
    write_actions,
)
from service.projection.call_join import PAGE_COLUMNS, legs_linked_to, may_join, page_side, rejoin
from service.projection.statements import PageKey, chunks, clip, insert_ignoring_existing, lock
from service.storage.events import EventRow
from service.storage.schema import (
    hash_events,
    sessions,
)

_HASH_FIELDS = (
    "channel",
    "sdk_app_id",
    "agent_email",
    "agent_mobile",
    "agent_nickname",
    "agent_role_id",
    "customer_mobile",
    "customer_user_id",
    "customer_nickname",
    "customer_avatar",
)


def project(
    conn: Connection, rows: Sequence[EventRow], timeouts: Timeouts, join_rules: JoinRules = DEFAULT_JOIN_RULES
) -> None:
    """Derive what the new rows change, in three phases: read and fold; take every lock; write.

    No derived row is written before the last lock is held, so on PostgreSQL two writers can only ever wait
    for each other in the global lock order (projection, streams, pages, sessions), never in a cycle.
    """
    parsed = [_hash_event_row(r) for r in rows if r["type"] == "hash"]
    streams = sorted({p["stream"] for p in parsed if p["stream"] is not None})
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # Shared with every other writer, exclusive for `rebuild`: a rebuild never interleaves with ingestion.
        lock(conn, ["projection"], shared=True)
        lock(conn, [f"stream:{s}" for s in streams])
    folded = _fold_streams(conn, streams, parsed, timeouts) if streams else _Folded()
    for p in parsed:
        p["session_id"] = folded.assigned.get(p["event_id"], p["session_id"])

    # Actions come from messages only: a page needs them recomputed when it got a message, or when it
    # already has actions that a new or re-assigned hash event may now precede.
    pages: set[PageKey] = {(r["site_id"], r["page_id"]) for r in rows if r["type"] == "message"}
    candidates = pages | {(p["site_id"], p["page_id"]) for p in parsed} | folded.moved_pages
    if postgres:
        # Locked before looking: a page that only got a hash event here may be getting its first message in
        # another writer right now.
        lock(conn, [f"page:{site_id}:{page_id}" for site_id, page_id in sorted(candidates)])
    pages |= pages_with_actions(conn, sorted(candidates - pages))
    new_actions, previous_sessions = compute_actions(conn, sorted(pages), parsed, folded.moves)

    touched = folded.old_ids | folded.new_ids | previous_sessions
    touched.update(a["session_id"] for a in new_actions if a["session_id"] is not None)
    ordered_sessions = sorted(touched)
    if postgres:
        lock(conn, [f"session:{s}" for s in ordered_sessions])

    joinable = bool(folded.old_ids or folded.rows) and may_join(conn)
    # The sessions replaced, as probes, and the legs joined to them: their links may change.
    gone = _page_sides(conn, folded.old_ids) if joinable else []
    linked = legs_linked_to(conn, folded.old_ids) if joinable else []
    touched_sessions = _write_folds(conn, folded)
    if parsed:
        insert_ignoring_existing(conn, hash_events, parsed, ["site_id", "event_id"])
    action_times = write_actions(conn, sorted(pages), new_actions)
    recount_sessions(conn, ordered_sessions)
    rollups.mark(conn, rollups.marks_for(touched_sessions, action_times))
    if joinable:
        rejoin(conn, linked, [*gone, *(page_side(row) for row in folded.rows)], join_rules)


def _page_sides(conn: Connection, ids: set[str]) -> list[PageSide]:
    found: list[PageSide] = []
    for chunk in chunks(sorted(ids)):
        query = select(*PAGE_COLUMNS).where(sessions.c.id.in_(chunk))
        found.extend(page_side(row) for row in conn.execute(query).mappings())
    return found


def _hash_event_row(row: EventRow) -> dict[str, Any]:
    raw = orjson.loads(row["raw"])
    call = parse_hash(raw.get("hash") if isinstance(raw.get("hash"), str) else "")
    values = {name: clip(getattr(call, name), hash_events.c[name].type) for name in _HASH_FIELDS}
    return {
        "site_id": row["site_id"],
        "event_id": row["event_id"],
        "page_id": row["page_id"],
        "seq": row["seq"],
        "event_at": row["event_at"],
        "status": call.status,
        "stream": stream_of(row["site_id"], call) if call.is_call_event else None,
        "session_id": None,
        **values,
    }


def _fold_streams(
    conn: Connection, streams: list[str], parsed: list[dict[str, Any]], timeouts: Timeouts
) -> _Folded:
    """The streams' sessions brought up to date, from the stored events and the new ones (not stored yet);
    reads only.

    Usually the new events come after everything stored for their stream: the fold then *resumes* from the
    stored state (the open session and each new event's customer's latest closed session). Otherwise the
    stream's recent past is folded again: an event at time t can only affect sessions still open or heard of
    since t minus the longest timeout (no rule looks back further), so older closed sessions are *frozen*,
    kept as stored, their events left out. Either way the result is what a fold of the whole stream gives
    (docs/sessions.md; the property tests compare the two).
    """
    new_events: dict[str, list[CallEvent]] = defaultdict(list)
    new_ids_of: set[str] = set()
    current: dict[str, tuple[int, str, str | None]] = {}  # event id -> (site, page, session id now)
    site_of: dict[str, int] = {}
    for p in parsed:
        if p["stream"] is not None:
            new_events[p["stream"]].append(_call_event(p))
            new_ids_of.add(p["event_id"])
            current[p["event_id"]] = (p["site_id"], p["page_id"], None)
            site_of[p["stream"]] = p["site_id"]
    earliest = {stream: min(e.at for e in found) for stream, found in new_events.items()}
    longest = max(timeouts.ringing_ms, timeouts.connected_ms)
    oldest_cutoff = min(earliest.values()) - longest
    stored: dict[str, list[Any]] = defaultdict(list)
    for chunk in chunks(streams):
        query = select(sessions).where(
            sessions.c.stream.in_(chunk),
            or_(
                sessions.c.ended_at.is_(None),
                sessions.c.last_event_at >= oldest_cutoff,
                sessions.c.ended_at >= oldest_cutoff,
            ),
        )
        for row in conn.execute(query).mappings():
            stored[row["stream"]].append(row)

    old_ids: set[str] = set()
    folded: dict[str, list[Session]] = {}
    refold: dict[str, tuple[set[str], int]] = {}  # stream -> (ids of sessions not frozen, fold from)
    for stream in streams:
        rows = stored[stream]
        latest_closed = _latest_closed(rows, {e.hash.customer for e in new_events[stream]})
        if latest_closed is not None and all(row["last_event_at"] < earliest[stream] for row in rows):
            open_rows = [row for row in rows if row["ended_at"] is None]
            state = [*open_rows, *latest_closed.values()]
            old_ids.update(row["id"] for row in state)
            open_session = _stored_session(open_rows[0]) if open_rows else None
            closed = [_stored_session(row) for row in latest_closed.values()]
            folded[stream] = resume(stream, open_session, closed, new_events[stream], timeouts)
        else:
            cutoff = earliest[stream] - longest
            live = {row["id"] for row in rows if row["ended_at"] is None or _last_touch(row) >= cutoff}
            since = min([earliest[stream], *(row["started_at"] for row in rows if row["id"] in live)])
            refold[stream] = (live, since)
            old_ids |= live

    if refold:
        since = min(start for _, start in refold.values())
        by_stream: dict[str, list[CallEvent]] = defaultdict(list)
        for chunk in chunks(sorted(refold)):
            query = select(hash_events).where(
                hash_events.c.stream.in_(chunk), hash_events.c.event_at >= since
            )
            for hit in conn.execute(query).mappings():
                live, _ = refold[hit["stream"]]
                if hit["session_id"] is not None and hit["session_id"] not in live:
                    continue  # an event of a frozen session
                by_stream[hit["stream"]].append(_call_event(hit))
                current[hit["event_id"]] = (hit["site_id"], hit["page_id"], hit["session_id"])
        for stream in refold:
            # The new events are not stored yet (they go in with their sessions, below).
            stored_ids = {e.event_id for e in by_stream[stream]}
            fresh = [e for e in new_events[stream] if e.event_id not in stored_ids]
            folded[stream] = fold(stream, [*by_stream[stream], *fresh], timeouts)

    folded_rows = [_session_row(site_of[stream], s) for stream, found in folded.items() for s in found]
    moves: list[dict[str, Any]] = []
    moved_pages: set[PageKey] = set()
    assigned: dict[str, str] = {}
    for found in folded.values():
        for session in found:
            for event_id in session.event_ids:
                site_id, page_id, before = current[event_id]
                if event_id in new_ids_of and before is None:
                    assigned[event_id] = session.id
                elif before != session.id:
                    moves.append({"b_site": site_id, "b_event": event_id, "b_session": session.id})
                    moved_pages.add((site_id, page_id))
    new_ids = {row["id"] for row in folded_rows}
    return _Folded(old_ids, new_ids, folded_rows, assigned, moves, moved_pages)


@dataclass
class _Folded:
    old_ids: set[str] = field(default_factory=set)
    new_ids: set[str] = field(default_factory=set)
    rows: list[dict[str, Any]] = field(default_factory=list)
    assigned: dict[str, str] = field(default_factory=dict)  # new event id -> its session
    moves: list[dict[str, Any]] = field(default_factory=list)  # stored events that change session
    moved_pages: set[PageKey] = field(default_factory=set)


def _write_folds(conn: Connection, folded: _Folded) -> list[rollups.Touched]:
    """Replace the folded sessions; returns what was deleted and written, for the rollup marks."""
    touched: list[rollups.Touched] = []
    for chunk in chunks(sorted(folded.old_ids)):
        deleted = conn.execute(
            delete(sessions)
            .where(sessions.c.id.in_(chunk))
            .returning(
                sessions.c.site_id, sessions.c.started_at, sessions.c.last_event_at, sessions.c.ended_at
            )
        )
        touched.extend(rollups.Touched(r.site_id, r.started_at, _last_touch(r._mapping)) for r in deleted)
    for session_rows in chunks(folded.rows):
        conn.execute(insert(sessions), session_rows)
    touched.extend(rollups.Touched(r["site_id"], r["started_at"], _last_touch(r)) for r in folded.rows)
    if folded.moves:
        conn.execute(
            update(hash_events)
            .where(
                hash_events.c.site_id == bindparam("b_site"),
                hash_events.c.event_id == bindparam("b_event"),
            )
            .values(session_id=bindparam("b_session")),
            folded.moves,
        )
    return touched


def _latest_closed(rows: list[Any], customers: set[str]) -> dict[str, Any] | None:
    """Per customer, the closed session a fold would remember last; None when two tie (same first
    millisecond), which the stored rows cannot order the way the fold did."""
    latest: dict[str, Any] = {}
    tied: set[str] = set()
    for row in rows:
        customer = _row_call(row).customer
        if row["ended_at"] is None or customer not in customers:
            continue
        if customer not in latest or row["started_at"] > latest[customer]["started_at"]:
            latest[customer] = row
            tied.discard(customer)
        elif row["started_at"] == latest[customer]["started_at"]:
            tied.add(customer)
    return None if tied else latest


def _last_touch(row: Any) -> int:
    ended = row["ended_at"]
    return int(row["last_event_at"]) if ended is None else max(int(row["last_event_at"]), int(ended))


def _row_call(row: Any) -> CccHash:
    return CccHash(**{name: row[name] for name in _HASH_FIELDS})


def _call_event(row: Any) -> CallEvent:
    call = CccHash(status=row["status"], **{name: row[name] for name in _HASH_FIELDS})
    return CallEvent(row["event_id"], row["event_at"], row["status"], call)


def _stored_session(row: Any) -> Session:
    """A stored session as the fold's state: what the fold consults and what it may still change."""
    call = _row_call(row)
    explicit_end = row["end_source"] == "explicit"
    status: Status = 400 if explicit_end else 200 if row["connected_at"] is not None else 100
    return Session(
        id=row["id"],
        stream=row["stream"],
        customer=call.customer,
        hash=call,
        first_event_at=row["started_at"],
        last_event_at=row["last_event_at"],
        observed_from=row["observed_from"],
        status=status,
        offered_at=row["offered_at"],
        connected_at=row["connected_at"],
        ended_at=row["ended_at"],
        end_source=row["end_source"],
        event_count=row["event_count"],
        duplicate_count=row["duplicate_count"],
    )


def _session_row(site_id: int, session: Session) -> dict[str, Any]:
    call = session.hash
    return {
        "id": session.id,
        "stream": session.stream,
        "site_id": site_id,
        **{name: getattr(call, name) for name in _HASH_FIELDS},
        "offered_at": session.offered_at,
        "connected_at": session.connected_at,
        "ended_at": session.ended_at,
        "ring_s": session.ring_s,
        "talk_s": session.talk_s,
        "outcome": session.outcome,
        "end_source": session.end_source,
        "observed_from": session.observed_from,
        "cards_sent": 0,
        "call_outs": 0,
        "event_count": session.event_count,
        "duplicate_count": session.duplicate_count,
        "started_at": session.first_event_at,
        "last_event_at": session.last_event_at,
    }
