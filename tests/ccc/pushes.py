"""Builders for CCC pushes and token requests, and readers of what the receiver stored."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine, select

from service.ccc.raw_log import RawRecord, raw_records
from service.storage.schema import ccc_apps, ccc_raw_records, ccc_tokens

PUSH = "/v1/ccc/push"
TOKEN = "/v1/ccc/oauth/token"
APP_A = 1400000001
APP_B = 1400000002
OK = {"ErrCode": 0, "ErrMsg": ""}


def basic(username: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def cdr(sdk_app_id: int, session_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A phone CDR as CCC pushes it (the reference's §2, trimmed)."""
    return {
        "SdkAppId": sdk_app_id,
        "SessionId": session_id or str(uuid.uuid4()),
        "Caller": "008618888888888",
        "Callee": "02566666666",
        "Direction": 0,
        "Duration": 42,
        "StartTimestamp": 1764000000,
        "EndedTimestamp": 1764000060,
        "EndStatusString": "ok",
        "SeatUser": {"Mail": "ann@x.com", "UserId": "ann@x.com"},
        **fields,
    }


def recording(sdk_app_id: int, session_id: str) -> dict[str, Any]:
    return {
        "SdkAppId": sdk_app_id,
        "SessionId": session_id,
        "RecordId": "rec-1",
        "RecordURL": "https://ccc.example/rec-1.mp3",
    }


def as_body(document: Any) -> bytes:
    # Pretty-printed with a trailing newline: the log must keep the body as sent, not re-serialised.
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


async def push(
    api: httpx.AsyncClient,
    document: Any,
    auth: dict[str, str] | None = None,
    *,
    action: str | None = "cdr",
    push_uuid: str | None = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    params = {"action": action, "version": "1"} if action is not None else {}
    sent = {"content-type": "application/json;charset=utf8", **(auth or {}), **(headers or {})}
    if push_uuid is not None:
        sent["x-tccc-push-uuid"] = push_uuid
    return await api.post(
        PUSH, params=params, content=as_body(document) if content is None else content, headers=sent
    )


def assert_ccc_error(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"ErrCode", "ErrMsg"}
    assert answer["ErrCode"] == status
    message: str = answer["ErrMsg"]
    assert message
    for word in words:
        assert word in message, message
    return message


def stored(engine: Engine, sdk_app_id: int | None = None) -> list[RawRecord]:
    with engine.connect() as conn:
        return raw_records(conn, sdk_app_id)


def everything_stored(engine: Engine) -> str:
    """Every row of the CCC tables, as text: what a secret must never appear in."""
    with engine.connect() as conn:
        rows = [conn.execute(select(table)).all() for table in (ccc_apps, ccc_tokens, ccc_raw_records)]
    return repr(rows)
