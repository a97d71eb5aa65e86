"""Builders for CCC call records stored and projected as the receiver does, and page calls that join them."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson
from sqlalchemy import Engine

from service.admin.registry import Site
from service.ccc.raw_log import RawRecordRow, store_record
from service.domain.call_join import JoinRules
from service.domain.call_parsing import session_of
from service.domain.instants import now_ms
from service.projection.call_records import project_call_sessions
from tests.ccc.pushes import APP_A
from tests.projection_helpers import T0, hash_row

RULES = JoinRules()
S = T0 // 1000  # CCC's times are Unix seconds
AGENT = "ann@x.com"


def cdr(session_id: str, start_s: int = S, **fields: Any) -> dict[str, Any]:
    """An answered inbound call: IVR 10 s, queue 5 s, ring 3 s at ann, talk 60 s."""
    return {
        "SdkAppId": APP_A,
        "SessionId": session_id,
        "Caller": "008613012345678",
        "Callee": "02566666666",
        "Direction": 0,
        "StartTimestamp": start_s,
        "QueuedTimestamp": start_s + 10,
        "RingTimestamp": start_s + 15,
        "AcceptTimestamp": start_s + 18,
        "EndedTimestamp": start_s + 78,
        "EndStatusString": "ok",
        "HungUpSide": "user",
        "QueuedSkillGroupId": 7,
        "QueuedSkillGroupName": "Sales",
        "SeatUser": {"Mail": AGENT, "UserId": AGENT},
        "ServeParticipants": [
            {
                "Mail": AGENT,
                "Type": "staffSeat",
                "StartTimestamp": start_s + 15,
                "RingTimestamp": start_s + 15,
                "AcceptTimestamp": start_s + 18,
                "EndedTimestamp": start_s + 78,
                "EndStatusString": "ok",
                "SkillGroupId": 7,
                "SkillGroupName": "Sales",
                "RecordId": "rec-1",
            }
        ],
        **fields,
    }


def recording_push(session_id: str) -> dict[str, Any]:
    return {"SdkAppId": APP_A, "SessionId": session_id, "RecordId": "rec-1", "RecordURL": "https://r/1.mp3"}


def store_raw(
    engine: Engine,
    document: dict[str, Any],
    *,
    app: int = APP_A,
    action: str = "cdr",
    source: Literal["push", "pull"] = "push",
    push_uuid: str | None = None,
    received_at: int | None = None,
) -> str | None:
    """Store a raw record as the receiver (or the pull) does and project its session, in one transaction;
    returns its SessionId (None when it cannot be read: it is stored all the same)."""
    body = orjson.dumps(document).decode()
    session_id, problem = session_of(app, source, action, body)
    row: RawRecordRow = {
        "sdk_app_id": app,
        "source": source,
        "action": action,
        "version": "1" if source == "push" else None,
        "push_uuid": push_uuid or f"{source}:{uuid.uuid4()}",
        "received_at": now_ms() if received_at is None else received_at,
        "body": body,
        "session_id": session_id,
        "problem": problem,
    }
    with engine.begin() as conn:
        if store_record(conn, row) and session_id is not None:
            project_call_sessions(conn, [(app, session_id)], RULES)
    return session_id


def store(engine: Engine, action: str, document: dict[str, Any], push_uuid: str | None = None) -> None:
    """A push of app A."""
    store_raw(engine, document, action=action, push_uuid=push_uuid)


def page_hash(status: int, mobile: str = "13012345678", agent: str = AGENT, app: int = APP_A) -> str:
    return (
        f"#?mobile={mobile}&status={status}&type=phone&agentEmail={agent.replace('@', '%40')}&sdkAppId={app}"
    )


def page_call(site: Site, ring_ms: int, mobile: str = "13012345678") -> list[Any]:
    page_id = str(uuid.uuid4())
    return [
        hash_row(site.id, page_id, 1, ring_ms, page_hash(100, mobile)),
        hash_row(site.id, page_id, 2, ring_ms + 3_000, page_hash(200, mobile)),
        hash_row(site.id, page_id, 3, ring_ms + 63_000, page_hash(400, mobile)),
    ]
