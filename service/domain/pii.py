"""Customer numbers and ids are personal data: keep them raw, masked, or as a keyed hash.

``hmac`` keeps repeat callers groupable (the same number always maps to the same token) without keeping the
number; it is keyed because an unkeyed hash of a phone number is reversed by trying every number. The
policy is applied once, at ingestion, to the raw event itself, so nothing stored holds the original value
and everything rebuilt from the raw events gets the same tokens.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from service.domain.ccc import CUSTOMER_PARAMS, parse_query, split_hash
from service.domain.numbers import normalise_number

PiiMode = Literal["raw", "mask", "hmac"]
HMAC_PREFIX = "h:"


@dataclass(frozen=True)
class PiiPolicy:
    mode: PiiMode = "raw"
    key: bytes = b""

    def __post_init__(self) -> None:
        if self.mode == "hmac" and len(self.key) < 16:
            raise ValueError("hmac mode needs a key of at least 16 bytes")

    def protect(self, value: str) -> str:
        # Applied once, at ingestion: there is no already-protected value to recognise and skip.
        if self.mode == "raw" or value == "":
            return value
        if self.mode == "mask":
            return mask(value)
        digest = hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:24]
        return HMAC_PREFIX + digest

    def protect_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event with its customer values protected: the hash's mobile/userId, a callOut's number."""
        if self.mode == "raw":
            return event
        if event.get("type") == "hash" and isinstance(event.get("hash"), str):
            return {**event, "hash": self.protect_hash(event["hash"])}
        if event.get("type") == "message":
            data = event.get("data")
            payload = data.get("payload") if isinstance(data, dict) else None
            message = payload.get("message") if isinstance(payload, dict) else None
            if (
                isinstance(payload, dict)
                and payload.get("event") == "callOut"
                and isinstance(message, dict)
                and isinstance(message.get("phoneNumber"), str | int)
                and not isinstance(message.get("phoneNumber"), bool)
            ):
                number = normalise_number(str(message["phoneNumber"]))
                message = {**message, "phoneNumber": self.protect(number)}
                return {**event, "data": {**data, "payload": {**payload, "message": message}}}  # type: ignore[dict-item]
        return event

    def protect_hash(self, raw_hash: str) -> str:
        """The hash with customer parameters replaced, every other byte as it was."""
        route, query = split_hash(raw_hash)
        if not query or self.mode == "raw":
            return raw_hash
        parts = query.split("&")
        for index, part in enumerate(parts):
            decoded = parse_query(part)
            if decoded and decoded[0][0] in CUSTOMER_PARAMS:
                key_text = part.partition("=")[0]
                value = decoded[0][1]
                if decoded[0][0] == "mobile":
                    value = normalise_number(value)
                parts[index] = f"{key_text}={quote(self.protect(value), safe='')}"
        prefix = "#" if raw_hash.startswith("#") else ""
        return f"{prefix}{route}?{'&'.join(parts)}"


def mask(value: str) -> str:
    """Keep enough to recognise a number on a screen (first 3, last 4), never enough to dial it."""
    if len(value) <= 4:
        return "*" * len(value)
    if len(value) <= 7:
        return "*" * (len(value) - 4) + value[-4:]
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
