"""What a CCC Data Push request says, read without a web framework: its credential, the app it comes from,
its body and the query parameters CCC adds (reference: /work/shared/reference/ccc-call-records.md §1).

CCC POSTs each record as JSON to the push address with ``?action=cdr|record|imcdr|voicemail|videoCdr`` (and
usually ``&version=1``), an ``X-TCCC-PUSH-UUID`` header that is the same on a retry, and the console's
credential: ``Authorization: Basic`` for account/password, ``Authorization: Bearer`` with a token from the
token endpoint for OAuth2, nothing for no authentication. It counts as delivered only an answer whose
``ErrCode`` is 0, and re-pushes up to three times otherwise.

Refusals are ``PushRefused``: an HTTP status, which is also the answer's ``ErrCode``, and a message for
``ErrMsg``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import orjson
from sqlalchemy import Connection

from service.ccc.apps import MAX_SDK_APP_ID, AppRef, authenticate_client
from service.ccc.tokens import app_of_token
from service.domain.call_record_pii import protect_raw_record
from service.domain.call_records import (
    PUSH_CDR,
    PUSH_IMCDR,
    PUSH_RECORD,
    PUSH_VIDEO_CDR,
    PUSH_VOICEMAIL,
    CallRecordError,
)
from service.domain.json_depth import MAX_JSON_DEPTH, json_depth_exceeds
from service.domain.pii import PiiPolicy
from service.domain.raw_fields import RawFields, json_kind

KNOWN_ACTIONS = (PUSH_CDR, PUSH_RECORD, PUSH_IMCDR, PUSH_VOICEMAIL, PUSH_VIDEO_CDR)
# Bounds of the raw log's columns; CCC's own values are a few characters (a UUID for the push id).
MAX_ACTION_CHARS = 64
MAX_VERSION_CHARS = 16
MAX_PUSH_UUID_CHARS = 128


class PushRefused(Exception):
    """A push answered with a non-zero ErrCode: ``status`` (the HTTP status and the ErrCode) and why."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class BadCredential(ValueError):
    """An Authorization header that is not a well-formed Basic or Bearer credential."""


@dataclass(frozen=True)
class BasicCredential:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BearerCredential:
    token: str = field(repr=False)


Credential = BasicCredential | BearerCredential


def parse_authorization(header: str, *, form_encoded: bool = False) -> Credential:
    """A Basic (RFC 7617) or Bearer (RFC 6750) credential. ``form_encoded``: the user name and password are
    form-urlencoded inside the Basic credential, as RFC 6749 §2.3.1 has OAuth2 clients send them (the ids and
    secrets made here only use characters that encoding leaves alone, so a client that forgets still works).
    """
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        if not value:
            raise BadCredential("the Bearer credential is empty")
        return BearerCredential(value)
    if scheme.lower() != "basic":
        raise BadCredential("expected an Authorization header of the Basic or Bearer scheme")
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadCredential("the Basic credential is not base64 of UTF-8 text") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise BadCredential("the Basic credential has no ':' between user name and password")
    if form_encoded:
        username, password = unquote_plus(username), unquote_plus(password)
    return BasicCredential(username, password)


def authenticate(conn: Connection, credential: Credential, now_ms: int) -> AppRef | None:
    """The app whose credential this is: a ``basic`` app's user name and password, or an unexpired token of
    an ``oauth2`` app; None for anything else."""
    if isinstance(credential, BasicCredential):
        return authenticate_client(conn, "basic", credential.username, credential.password)
    return app_of_token(conn, credential.token, now_ms)


@dataclass(frozen=True)
class PushBody:
    sdk_app_id: int
    text: str  # the body as received, decoded
    document: dict[str, Any]


def parse_body(body: bytes) -> PushBody:
    """The body checked as a JSON object naming its app in ``SdkAppId``; refused with 400 otherwise."""
    if not body.strip():
        raise PushRefused(400, "the body is empty: expected a JSON object")
    # The events' limit, for the same reason: a stored body nested deeper than the serialiser writes would
    # break every later read that embeds it (docs/security.md). CCC's records nest a few levels.
    if json_depth_exceeds(body):
        raise PushRefused(400, f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep")
    try:
        text = body.decode("utf-8")
        document = orjson.loads(body)
    except UnicodeDecodeError:
        raise PushRefused(400, "the body is not UTF-8 text") from None
    except orjson.JSONDecodeError as exc:
        raise PushRefused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PushRefused(400, f"the body is JSON but not an object (got {json_kind(document)})")
    if document.get("SdkAppId") is None:
        raise PushRefused(400, "the body has no SdkAppId")
    # Read as the call records read it (a long, or its digits quoted, as some of CCC's samples have it), so
    # that nothing the receiver keeps is a record the projection cannot name.
    try:
        value = RawFields(document).integer("SdkAppId")
    except CallRecordError:
        value = None
    if value is None or not 0 < value <= MAX_SDK_APP_ID:
        raise PushRefused(400, "SdkAppId must be a positive integer")
    return PushBody(value, text, document)


def stored_text(body: PushBody, policy: PiiPolicy) -> str:
    """What the raw log keeps of a push: the body as received, or, under a PII mode other than ``raw``, the
    record with its customer's side protected (as raw events are), written again as compact JSON."""
    if policy.mode == "raw":
        return body.text
    return orjson.dumps(protect_raw_record(body.document, policy)).decode()


@dataclass(frozen=True)
class PushMeta:
    action: str | None
    version: str | None
    push_uuid: str | None


def push_meta(actions: Sequence[str], versions: Sequence[str], push_uuids: Sequence[str]) -> PushMeta:
    """The query's ``action`` and ``version`` and the X-TCCC-PUSH-UUID header, as given (an unknown action
    is kept, not refused: CCC may add data types). Each at most once, printable and within its column."""
    return PushMeta(
        _one("the action parameter", actions, MAX_ACTION_CHARS),
        _one("the version parameter", versions, MAX_VERSION_CHARS),
        _one("the X-TCCC-PUSH-UUID header", push_uuids, MAX_PUSH_UUID_CHARS),
    )


def _one(what: str, values: Sequence[str], limit: int) -> str | None:
    if len(values) > 1:
        raise PushRefused(400, f"{what} is given {len(values)} times")
    # An empty UUID is no UUID: storing "" would make every such push a repeat of the first.
    value = values[0] if values else ""
    if not value.strip():
        return None
    if len(value) > limit or not value.isprintable():
        raise PushRefused(400, f"{what} must be at most {limit} printable characters")
    return value
