"""Whose data a stored event or raw CCC record holds: the matching behind `calltrail erase --customer`.

A customer is named by a phone number or a user id. Stored rows may hold it in any form the PII modes have
written over time (domain/pii.py): as sent (a number in any spelling: it is compared in its normalised form,
domain/numbers.py), as an HMAC token (with the PII key), or masked. A mask (first 3 and last 4 kept) can be
shared by several customers, so a masked match is told apart (``MASKED``) and only removed when asked.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from service.domain.ccc import parse_query, split_hash
from service.domain.numbers import normalise_number
from service.domain.pii import PiiPolicy, mask

Match = Literal["exact", "masked"]
EXACT: Match = "exact"
MASKED: Match = "masked"


@dataclass(frozen=True)
class Customer:
    """The forms one customer's number or id may be stored in."""

    given: str
    normalised: str
    tokens: frozenset[str]  # HMAC forms, with the PII key (empty without one)
    masks: frozenset[str]

    @classmethod
    def of(cls, value: str, pii_key: bytes = b"") -> Customer:
        value = value.strip()
        if not value:
            raise ValueError("the customer's number or user id is empty")
        normalised = normalise_number(value)
        tokens: frozenset[str] = frozenset()
        if len(pii_key) >= 16:
            policy = PiiPolicy("hmac", pii_key)
            tokens = frozenset({policy.protect(normalised), policy.protect(value)})
        return cls(value, normalised, tokens, frozenset({mask(normalised), mask(value)}))

    def match(self, stored: Any, *, number: bool) -> Match | None:
        """How a stored value names this customer: exactly, by a mask only, or not at all."""
        if isinstance(stored, bool) or not isinstance(stored, str | int):
            return None
        text = str(stored)
        if text == "":
            return None
        if text == self.given or text in self.tokens:
            return EXACT
        if number and normalise_number(text) == self.normalised:
            return EXACT
        if text in self.masks and "*" in text:
            return MASKED
        return None


def strongest(matches: Iterable[Match | None]) -> Match | None:
    found = set(matches)
    if EXACT in found:
        return EXACT
    return MASKED if MASKED in found else None


def event_match(customer: Customer, event_type: str, raw: str) -> Match | None:
    """Whether a stored event (its type and raw JSON) holds the customer: a hash event's ``mobile`` or
    ``userId``, a callOut message's ``phoneNumber``."""
    if event_type not in ("hash", "message"):
        return None
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    if event_type == "hash":
        raw_hash = event.get("hash")
        if not isinstance(raw_hash, str):
            return None
        _route, query = split_hash(raw_hash)
        return strongest(
            customer.match(value, number=key == "mobile")
            for key, value in parse_query(query)
            if key in ("mobile", "userId")
        )
    data = event.get("data")
    payload = data.get("payload") if isinstance(data, dict) else None
    message = payload.get("message") if isinstance(payload, dict) else None
    if isinstance(payload, dict) and payload.get("event") == "callOut" and isinstance(message, dict):
        return customer.match(message.get("phoneNumber"), number=True)
    return None


def raw_record_match(customer: Customer, body: str) -> Match | None:
    """Whether a raw CCC record holds the customer, in the fields domain/call_record_pii.py protects:
    ``Caller``, ``Callee`` (either side: erasure reads both), ``TelLocation.TelNumber``, a recording's
    ``EndpointUser``, a chat's ``UserId`` / ``ClientUserId``."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    found: list[Match | None] = [
        customer.match(document.get("Caller"), number=True),
        customer.match(document.get("Callee"), number=True),
        customer.match(document.get("EndpointUser"), number=True),
        customer.match(document.get("UserId"), number=False),
        customer.match(document.get("ClientUserId"), number=False),
    ]
    location = document.get("TelLocation")
    if isinstance(location, dict):
        found.append(customer.match(location.get("TelNumber"), number=True))
    return strongest(found)
