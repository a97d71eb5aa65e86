"""Agent actions: every ``ccc-sdk`` message a page posted, attributed to the agent and the session that
the same page was showing at that moment (its latest hash before the message, by the page's own ``seq``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.domain.ccc import storable_text

CCC_SDK_SOURCE = "ccc-sdk"


@dataclass(frozen=True)
class PageHash:
    seq: int
    event_id: str
    session_id: str | None
    agent_email: str | None


@dataclass(frozen=True)
class PageMessage:
    event_id: str
    seq: int
    at: int
    data: Any


@dataclass(frozen=True)
class Action:
    id: str
    at: int
    page_id: str
    action: str
    agent_email: str | None
    session_id: str | None
    details: dict[str, Any]


def describe(data: Any) -> tuple[str, dict[str, Any]] | None:
    """(action name, details) of a posted message, or None when it is not a ccc-sdk request."""
    if not isinstance(data, dict) or data.get("source") != CCC_SDK_SOURCE:
        return None
    payload = data.get("payload")
    event = payload.get("event") if isinstance(payload, dict) else None
    message = payload.get("message") if isinstance(payload, dict) else None
    if event == "callOut":
        fields = message if isinstance(message, dict) else {}
        return "call_out", {"phone_number": fields.get("phoneNumber"), "label": fields.get("desc")}
    if event == "sendCard":
        fields = message if isinstance(message, dict) else {}
        return "send_card", {key: fields.get(key) for key in ("header", "desc", "pic", "url")}
    if isinstance(event, str) and event:
        return storable_text(event), {"message": message}
    return "unknown", {"payload": payload}


def actions_for_page(
    page_id: str, hashes: Sequence[PageHash], messages: Sequence[PageMessage]
) -> list[Action]:
    ordered_hashes = sorted(hashes, key=lambda h: (h.seq, h.event_id))
    actions: list[Action] = []
    for message in sorted(messages, key=lambda m: (m.seq, m.event_id)):
        described = describe(message.data)
        if described is None:
            continue
        name, details = described
        shown = _latest_before(ordered_hashes, message.seq)
        actions.append(
            Action(
                id=message.event_id,
                at=message.at,
                page_id=page_id,
                action=name,
                agent_email=shown.agent_email if shown else None,
                session_id=shown.session_id if shown else None,
                details=details,
            )
        )
    return actions


def _latest_before(hashes: Sequence[PageHash], seq: int) -> PageHash | None:
    latest = None
    for page_hash in hashes:
        if page_hash.seq >= seq:
            break
        latest = page_hash
    return latest
