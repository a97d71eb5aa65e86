"""Lists for the query API: sessions (newest first) and the audit trail (oldest first), by keyset pages.

A cursor is the sort key of the last row a page returned; the next page starts strictly after it, so pages
never skip or repeat a row while new rows arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, or_, select, tuple_

from service.domain.sessions import Timeouts
from service.formats import StoredJson
from service.reports.records import iso, session_record
from service.storage.schema import actions, events, hash_events, sessions, sites

SessionOutcome = Literal["answered", "not_answered", "ongoing", "unknown"]


@dataclass(frozen=True)
class SessionFilter:
    start_ms: int | None = None
    end_ms: int | None = None
    site_id: int | None = None
    agent: str | None = None
    channel: str | None = None
    outcome: SessionOutcome | None = None
    customer: tuple[str, ...] | None = None  # a mobile or userId, in any of these forms


def outcome_condition(outcome: SessionOutcome, now_ms: int, timeouts: Timeouts) -> ColumnElement[bool]:
    """The outcome as records read it now: an open session past its timeout reads as ended."""
    open_ = sessions.c.ended_at.is_(None)
    connected = sessions.c.connected_at.is_not(None)
    past_timeout = or_(
        and_(connected, sessions.c.last_event_at < now_ms - timeouts.connected_ms),
        and_(~connected, sessions.c.last_event_at < now_ms - timeouts.ringing_ms),
    )
    timed_out = and_(open_, past_timeout)
    if outcome == "answered":
        return or_(sessions.c.outcome == "answered", and_(timed_out, connected))
    if outcome == "unknown":
        return or_(sessions.c.outcome == "unknown", and_(timed_out, ~connected))
    if outcome == "ongoing":
        return and_(sessions.c.outcome == "ongoing", ~past_timeout)
    return sessions.c.outcome == "not_answered"


def session_page(
    conn: Connection,
    where: SessionFilter,
    *,
    now_ms: int,
    timeouts: Timeouts,
    after: tuple[int, str] | None,
    limit: int | None,
) -> Iterator[tuple[dict[str, Any], tuple[int, str]]]:
    """Sessions newest first (by offer time, or first sight for one joined mid-call), each with its cursor."""
    # No join: it would keep both databases from walking the (started_at, id) index in order.
    names = site_names(conn)
    query = select(sessions)
    conditions: list[ColumnElement[bool]] = []
    if where.start_ms is not None:
        conditions.append(sessions.c.started_at >= where.start_ms)
    if where.end_ms is not None:
        conditions.append(sessions.c.started_at < where.end_ms)
    if where.site_id is not None:
        conditions.append(sessions.c.site_id == where.site_id)
    if where.agent is not None:
        conditions.append(sessions.c.agent_email == where.agent)
    if where.channel is not None:
        conditions.append(sessions.c.channel == where.channel)
    if where.outcome is not None:
        conditions.append(outcome_condition(where.outcome, now_ms, timeouts))
    if where.customer is not None:
        conditions.append(
            or_(
                sessions.c.customer_mobile.in_(where.customer),
                sessions.c.customer_user_id.in_(where.customer),
            )
        )
    if after is not None:
        conditions.append(tuple_(sessions.c.started_at, sessions.c.id) < tuple_(after[0], after[1]))
    query = query.where(*conditions).order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    for row in conn.execution_options(yield_per=1000).execute(query).mappings():
        record = session_record({**row, "site_name": names.get(row["site_id"])}, timeouts, now_ms)
        yield record, (row["started_at"], row["id"])


def session_detail(
    conn: Connection, session_id: str, *, now_ms: int, timeouts: Timeouts
) -> dict[str, Any] | None:
    """One session as its record, with its timeline: its raw hash events and its actions, in time order."""
    query = (
        select(sessions, sites.c.name.label("site_name"))
        .join(sites, sites.c.id == sessions.c.site_id)
        .where(sessions.c.id == session_id)
    )
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    timeline: list[tuple[int, int, dict[str, Any]]] = []
    event_query = (
        select(events, hash_events.c.status)
        .join(
            hash_events,
            and_(hash_events.c.site_id == events.c.site_id, hash_events.c.event_id == events.c.event_id),
        )
        .where(hash_events.c.session_id == session_id, hash_events.c.site_id == row["site_id"])
    )
    for found in conn.execute(event_query).mappings():
        timeline.append(
            (
                found["event_at"],
                0,
                {
                    "kind": "event",
                    "at": iso(found["event_at"]),
                    "id": found["event_id"],
                    "type": found["type"],
                    "status": found["status"],
                    "page_id": found["page_id"],
                    "seq": found["seq"],
                    "ts_flag": found["ts_flag"],
                    "raw": StoredJson(found["raw"]),
                },
            )
        )
    action_query = select(actions).where(
        actions.c.session_id == session_id, actions.c.site_id == row["site_id"]
    )
    for found in conn.execute(action_query).mappings():
        timeline.append((found["at"], 1, {"kind": "action", **action_record(found, row["site_name"])}))
    timeline.sort(key=lambda item: (item[0], item[1], item[2]["id"]))
    return {**session_record(row, timeouts, now_ms), "timeline": [item for _, _, item in timeline]}


def action_record(row: Any, site_name: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": iso(row["at"]),
        "site": site_name,
        "agent_email": row["agent_email"],
        "action": row["action"],
        "session_id": row["session_id"],
        "page_id": row["page_id"],
        "details": StoredJson(row["details"]),
    }


@dataclass(frozen=True)
class AuditFilter:
    start_ms: int | None = None
    end_ms: int | None = None
    site_id: int | None = None
    agent: str | None = None
    action: str | None = None


def audit_page(
    conn: Connection, where: AuditFilter, *, after: tuple[int, int, str] | None, limit: int | None
) -> Iterator[tuple[dict[str, Any], tuple[int, int, str]]]:
    """Agent actions oldest first, each with its cursor (time, site, id)."""
    names = site_names(conn)
    query = select(actions)
    conditions: list[ColumnElement[bool]] = []
    if where.start_ms is not None:
        conditions.append(actions.c.at >= where.start_ms)
    if where.end_ms is not None:
        conditions.append(actions.c.at < where.end_ms)
    if where.site_id is not None:
        conditions.append(actions.c.site_id == where.site_id)
    if where.agent is not None:
        conditions.append(actions.c.agent_email == where.agent)
    if where.action is not None:
        conditions.append(actions.c.action == where.action)
    if after is not None:
        conditions.append(tuple_(actions.c.at, actions.c.site_id, actions.c.id) > tuple_(*after))
    query = query.where(*conditions).order_by(actions.c.at, actions.c.site_id, actions.c.id)
    if limit is not None:
        query = query.limit(limit)
    for row in conn.execution_options(yield_per=1000).execute(query).mappings():
        yield action_record(row, names.get(row["site_id"], "")), (row["at"], row["site_id"], row["id"])


def site_names(conn: Connection) -> dict[int, str]:
    return {row.id: row.name for row in conn.execute(select(sites.c.id, sites.c.name))}


def site_id_of(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(sites.c.id).where(sites.c.name == name)).scalar()
    return int(found) if found is not None else None
