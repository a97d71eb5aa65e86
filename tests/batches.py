"""Builders for wire-format v1 batches."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

BASE_TS = 1_764_000_000_000


def hash_event(
    seq: int, hash_value: str, *, ts: int | None = None, trigger: str = "hashchange"
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "seq": seq,
        "ts": BASE_TS + seq * 1000 if ts is None else ts,
        "type": "hash",
        "trigger": trigger,
        "hash": hash_value,
    }


def message_event(seq: int, event: str, message: Any, *, ts: int | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "seq": seq,
        "ts": BASE_TS + seq * 1000 if ts is None else ts,
        "type": "message",
        "data": {"source": "ccc-sdk", "payload": {"event": event, "message": message}},
    }


def batch(
    site_key: str,
    events: list[Any],
    *,
    page_id: str | None = None,
    sent_at: int | None = None,
    url: str = "https://crm.example.com/ticket/list/",
) -> dict[str, Any]:
    return {
        "v": 1,
        "site": site_key,
        "sent_at": BASE_TS + 3_600_000 if sent_at is None else sent_at,
        "page": {"id": page_id or str(uuid.uuid4()), "url": url},
        "events": events,
    }


def body(document: Any) -> bytes:
    return orjson.dumps(document)
