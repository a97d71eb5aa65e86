"""The CCC pop-up hash: ``#?mobile=...&status=100&type=phone&agentEmail=...`` parsed into typed fields.

The workstation writes URL-encoded parameters after ``#?``; a page with a hash router may show them as
``#/route?k=v``. Any parameter may be missing, unknown ones are kept, and values are kept verbatim (after
URL-decoding, a NUL aside) except ``status``, which is only meaningful as 100, 200 or 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args
from urllib.parse import unquote

Status = Literal[100, 200, 400]
STATUSES: tuple[Status, ...] = (100, 200, 400)
# The workstation's `type`: a call (phone; om, an outbound call) or a chat (im; oim, an outbound chat).
Channel = Literal["im", "oim", "om", "phone"]
CHANNELS: frozenset[str] = frozenset(get_args(Channel))
VOICE_CHANNELS = frozenset({"phone", "om"})
CHAT_CHANNELS = CHANNELS - VOICE_CHANNELS

# CCC's parameter -> our field name.
_KNOWN = {
    "mobile": "customer_mobile",
    "userId": "customer_user_id",
    "nickName": "customer_nickname",
    "avatar": "customer_avatar",
    "type": "channel",
    "agentEmail": "agent_email",
    "agentMobile": "agent_mobile",
    "agentNickName": "agent_nickname",
    "agentRoleId": "agent_role_id",
    "sdkAppId": "sdk_app_id",
}
CUSTOMER_PARAMS = ("mobile", "userId")
# PostgreSQL's text cannot hold NUL (SQLite's can): a decoded %00 becomes U+FFFD, the replacement character,
# on both, so that the same hash derives the same session everywhere. The raw event keeps the hash as sent.
NUL_REPLACEMENT = "\ufffd"


def storable_text(value: str) -> str:
    """Text any database column can hold as it is."""
    return value.replace("\x00", NUL_REPLACEMENT) if "\x00" in value else value


@dataclass(frozen=True)
class CccHash:
    status: Status | None = None
    channel: str | None = None
    sdk_app_id: str | None = None
    agent_email: str | None = None
    agent_mobile: str | None = None
    agent_nickname: str | None = None
    agent_role_id: str | None = None
    customer_mobile: str | None = None
    customer_user_id: str | None = None
    customer_nickname: str | None = None
    customer_avatar: str | None = None
    route: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_call_event(self) -> bool:
        return self.status is not None

    @property
    def agent(self) -> str:
        """Who holds the workstation: the email, or the agent's mobile when there is no email."""
        return self.agent_email or self.agent_mobile or ""

    @property
    def customer(self) -> str:
        return self.customer_mobile or self.customer_user_id or ""


def split_hash(raw_hash: str) -> tuple[str, str]:
    """(route, query) of a hash: ``#?a=1`` -> ("", "a=1"); ``#/tickets?a=1`` -> ("/tickets", "a=1")."""
    text = raw_hash[1:] if raw_hash.startswith("#") else raw_hash
    route, _, query = text.partition("?")
    return route, query


def parse_hash(raw_hash: str) -> CccHash:
    route, query = split_hash(raw_hash)
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    status: Status | None = None
    for key, value in parse_query(query):
        if key == "status":
            status = _status(value)
        elif key in _KNOWN:
            if value != "":
                values[_KNOWN[key]] = value
        else:
            extra[key] = value
    return CccHash(status=status, route=route, extra=extra, **values)


def parse_query(query: str) -> list[tuple[str, str]]:
    """``k=v&...`` URL-decoded. Unlike form decoding, ``+`` stays ``+``: it starts international numbers,
    and the workstation percent-encodes spaces."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((storable_text(unquote(key)), storable_text(unquote(value))))
    return pairs


def _status(value: str) -> Status | None:
    try:
        number = int(value.strip())
    except ValueError:
        return None
    for status in STATUSES:
        if number == status:
            return status
    return None
