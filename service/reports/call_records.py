"""Call records (CCC's side of a call) and their legs as records with the API's field names
(contract/models.py: Call, CallLeg, Recording), and the list's query."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, exists, or_, select, tuple_

from service.contract.models import Call, CallLeg, field_names
from service.domain.call_records import decimal_id
from service.domain.instants import iso
from service.projection.statements import SiteIds, of_sites
from service.storage.schema import call_legs, call_records, ccc_app_sites, ccc_apps

CALL_FIELDS = field_names(Call)
LEG_FIELDS = field_names(CallLeg)
CALL_PHONE_FIELDS = frozenset({"caller", "callee", "customer"})
BATCH = 500

CallKey = tuple[int, str]


@dataclass(frozen=True)
class CallFilter:
    start_ms: int | None = None
    end_ms: int | None = None
    app_ids: tuple[int, ...] | None = None  # the apps of the `site` filter; None: every app
    agent: str | None = None
    channel: str | None = None
    direction: str | None = None
    skill_group: str | None = None  # an id (digits) or a name
    end_status: str | None = None
    customer: tuple[str, ...] | None = None  # any of these forms
    seen: bool | None = None


def apps_of_site(conn: Connection, site_id: SiteIds) -> tuple[int, ...]:
    """The SdkAppIds of the CCC apps tied to a site, or to any of these sites (``calltrail ccc add
    --site``); with None, every registered app. An app tied to no site belongs to no site's scope."""
    if site_id is None:
        return tuple(conn.execute(select(ccc_apps.c.sdk_app_id).order_by(ccc_apps.c.sdk_app_id)).scalars())
    query = (
        select(ccc_apps.c.sdk_app_id)
        .join(ccc_app_sites, ccc_app_sites.c.app_id == ccc_apps.c.id)
        .where(*of_sites(ccc_app_sites.c.site_id, site_id))
        .distinct()
        .order_by(ccc_apps.c.sdk_app_id)
    )
    return tuple(conn.execute(query).scalars())


def _same_call(table: Any) -> ColumnElement[bool]:
    return and_(
        table.c.sdk_app_id == call_records.c.sdk_app_id, table.c.session_id == call_records.c.session_id
    )


def conditions(where: CallFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if where.start_ms is not None:
        found.append(call_records.c.sort_at >= where.start_ms)
    if where.end_ms is not None:
        found.append(call_records.c.sort_at < where.end_ms)
    if where.app_ids is not None:
        found.append(call_records.c.sdk_app_id.in_(where.app_ids))
    if where.agent is not None:
        # The record names its last agent; a call the agent had before a transfer counts for them too.
        leg_of_agent = exists().where(_same_call(call_legs), call_legs.c.agent_email == where.agent)
        found.append(or_(call_records.c.agent_email == where.agent, leg_of_agent))
    if where.channel is not None:
        found.append(call_records.c.channel == where.channel)
    if where.direction is not None:
        found.append(call_records.c.direction == where.direction)
    if where.skill_group is not None:
        group_id = decimal_id(where.skill_group)
        by_name = call_records.c.skill_group_name == where.skill_group
        found.append(by_name if group_id is None else or_(call_records.c.skill_group_id == group_id, by_name))
    if where.end_status is not None:
        found.append(call_records.c.end_status == where.end_status)
    if where.customer is not None:
        found.append(call_records.c.customer.in_(where.customer))
    if where.seen is not None:
        joined = exists().where(_same_call(call_legs), call_legs.c.join_state == "joined")
        found.append(joined if where.seen else ~joined)
    return found


def call_page(
    conn: Connection, where: CallFilter, *, after: tuple[int, int, str] | None, limit: int | None
) -> Iterator[tuple[dict[str, Any], tuple[int, int, str]]]:
    """Calls newest first (by start), each with its cursor."""
    query = select(call_records).where(*conditions(where))
    if after is not None:
        key = tuple_(call_records.c.sort_at, call_records.c.sdk_app_id, call_records.c.session_id)
        query = query.where(key < tuple_(*after))
    query = query.order_by(
        call_records.c.sort_at.desc(), call_records.c.sdk_app_id.desc(), call_records.c.session_id.desc()
    )
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execution_options(yield_per=1000).execute(query).mappings()
    # The legs come from a second connection: the first is busy streaming the records.
    with conn.engine.connect() as legs:
        for row, found in with_legs(legs, rows):
            yield call_record(row, found), (row["sort_at"], row["sdk_app_id"], row["session_id"])


def with_legs(conn: Connection, rows: Iterable[Any]) -> Iterator[tuple[Any, list[Any]]]:
    """Record rows with their leg rows, looked up a batch at a time."""
    batch: list[Any] = []

    def flush() -> Iterator[tuple[Any, list[Any]]]:
        legs = legs_of(conn, [(row["sdk_app_id"], row["session_id"]) for row in batch])
        for row in batch:
            yield row, legs.get((row["sdk_app_id"], row["session_id"]), [])

    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def legs_of(conn: Connection, keys: Sequence[CallKey]) -> dict[CallKey, list[Any]]:
    found: dict[CallKey, list[Any]] = defaultdict(list)
    for start in range(0, len(keys), BATCH):
        chunk = list(keys[start : start + BATCH])
        query = (
            select(call_legs)
            .where(tuple_(call_legs.c.sdk_app_id, call_legs.c.session_id).in_(chunk))
            .order_by(call_legs.c.sdk_app_id, call_legs.c.session_id, call_legs.c.leg)
        )
        for row in conn.execute(query).mappings():
            found[(row["sdk_app_id"], row["session_id"])].append(row)
    return found


def call_record(row: Any, legs: Sequence[Any]) -> dict[str, Any]:
    return {
        "sdk_app_id": row["sdk_app_id"],
        "session_id": row["session_id"],
        "channel": row["channel"],
        "direction": row["direction"],
        "caller": row["caller"],
        "callee": row["callee"],
        "customer": row["customer"],
        "agent_email": row["agent_email"],
        "started_at": iso(row["start_at"]),
        "queued_at": iso(row["queued_at"]),
        "ringing_at": iso(row["ring_at"]),
        "accepted_at": iso(row["accept_at"]),
        "ended_at": iso(row["end_at"]),
        "ivr_s": row["ivr_s"],
        "queue_s": row["queue_s"],
        "duration_s": row["duration_s"],
        "end_status": row["end_status"],
        "end_status_code": row["end_status_code"],
        "hung_up_by": row["hung_up_by"],
        "skill_group_id": row["skill_group_id"],
        "skill_group_name": row["skill_group_name"],
        "transfers": row["transfers"],
        "ivr_keys": orjson.loads(row["ivr_keys"]),
        "satisfaction": orjson.loads(row["satisfaction"]),
        "record_urls": orjson.loads(row["record_urls"]),
        "sources": orjson.loads(row["sources"]),
        "leg_count": len(legs),
        "page_sessions": [leg["page_session_id"] for leg in legs if leg["page_session_id"] is not None],
    }


def leg_record(row: Any) -> dict[str, Any]:
    return {
        "leg": row["leg"],
        "agent_email": row["agent_email"],
        "type": row["type"],
        "started_at": iso(row["start_at"]),
        "ringing_at": iso(row["ring_at"]),
        "accepted_at": iso(row["accept_at"]),
        "ended_at": iso(row["end_at"]),
        "end_status": row["end_status"],
        "skill_group_id": row["skill_group_id"],
        "skill_group_name": row["skill_group_name"],
        "transfer_from": row["transfer_from"],
        "transfer_to": row["transfer_to"],
        "record_id": row["record_id"],
        "record_url": row["record_url"],
        "page_session_id": row["page_session_id"],
        "join": row["join_state"],
        "join_offset_ms": row["join_offset_ms"],
    }


def call_row(conn: Connection, sdk_app_id: int, session_id: str) -> Any | None:
    query = select(call_records).where(
        call_records.c.sdk_app_id == sdk_app_id, call_records.c.session_id == session_id
    )
    return conn.execute(query).mappings().first()


def call_of(conn: Connection, sdk_app_id: int, session_id: str) -> dict[str, Any] | None:
    """One call as its record (with its legs counted and its page sessions named), or None."""
    row = call_row(conn, sdk_app_id, session_id)
    if row is None:
        return None
    return call_record(row, legs_of(conn, [(sdk_app_id, session_id)]).get((sdk_app_id, session_id), []))
