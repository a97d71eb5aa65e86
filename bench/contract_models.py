"""Which library should declare the API contract as typed models? msgspec Structs and pydantic v2 models,
measured against today's orjson + hand-written dicts and hand validation, on three hot paths:

1. POST /v1/events: parsing a 1-event and a 50-event batch of ``hash`` events (docs/protocol.md). Today's
   ``service.ingest.protocol.parse_body`` against msgspec and pydantic, each twice: validating the whole
   envelope in one call (one bad event then fails the whole batch, and no ``raw`` text is produced: a
   lower bound, not a replacement), and the variant we would have to ship, which keeps today's contract
   (see "Per-event verdicts").
2. ``GET /v1/sessions?format=ndjson``: session rows (SESSION_FIELDS of service/reports/records.py, 24
   fields; ids and text as str, times as epoch milliseconds as the columns hold them, floats, ints and
   nulls) arriving as tuples in batches of 1,000 (records.STREAM_BATCH), each turned into a record object
   and serialised; the typed models get their times as aware UTC datetimes (domain/instants.py), which
   they write as today's ISO text. ``--rows`` rows are timed (fewer than a million to keep the run short) and the times
   are scaled to seconds per million rows. The read-time timeout rule of ``session_record`` is left out:
   it would be the same code in every candidate.
3. ``GET /v1/analytics/inbound``: a 30-day hourly report (720 buckets of 15 fields, ``ring_s`` and
   ``talk_s`` nested), built from the per-bucket figures and serialised. The figures themselves (numpy
   and rounding in domain/formulas.py) are computed once beforehand: that work does not depend on the
   container they go into.

Every candidate's output is checked against today's (byte for byte where it should be equal) before it is
timed. Each repeat times every candidate once, in an order rotated from one repeat to the next; the table
gives each candidate's min and median over the repeats and its ratio to today's, the median of the ratios
taken within each repeat (the machine is shared: its speed drifts, and a paired ratio cancels most of
that). Times are the CPU time of the thread (``--wall`` for the wall clock), since other processes' turns
on a loaded machine would otherwise count as ours. The garbage collector stays on, as in the server.
Case 3 also times pydantic as a schema only: today's dicts, declared as TypedDicts, written by its
serializer.

Per-event verdicts. Today an envelope problem rejects the request, with every problem listed; an event
problem rejects that event alone, and a valid event is kept as ``raw``, its object re-serialised (key order
kept, integers of any size exact). The typed variants that keep this contract:

* msgspec has no hook that turns a failed item into a value, and stops at the first error. So the envelope
  is decoded as a Struct whose ``events`` is ``list[msgspec.Raw]`` (the envelope validated, each event only
  sliced out of the body, unparsed), then each Raw is decoded alone with a tagged-union decoder on
  ``type``; a ValidationError rejects that event. msgspec's tagged unions are closed (no catch-all tag),
  so an event of another type falls back to an ``OtherEvent`` Struct. "msgspec Raw" keeps the slice
  verbatim as ``raw`` (whitespace, escapes and repeated keys as sent: not today's re-serialised text);
  "msgspec convert" decodes the events as plain objects, validates each with ``msgspec.convert`` and
  re-encodes it, which gives today's ``raw`` byte for byte (and is what the PII transform, which rewrites
  the object, needs anyway). Listing every envelope problem at once, as docs/protocol.md promises, would
  need a fallback: on a failed envelope, a hand validator that lists them (the error path only, not timed
  and not written here: these variants report the first problem).
* pydantic collects every error. A ``WrapValidator`` on each item of ``events`` calls the item's handler
  and turns its ValidationError into a rejected verdict, so one ``validate_json`` call gives the envelope
  and every verdict ("pydantic wrap"); the item's input there is the parsed object, re-serialised with
  pydantic_core.to_json. "pydantic any" decodes the events as plain objects and validates each with
  ``TypeAdapter.validate_python``. The "other" event kind is a callable ``Discriminator``.
* Depth: neither library has a depth limit of its own to set (msgspec raises RecursionError at Python's
  recursion limit, pydantic-core stops at about 200 levels, orjson at 1,024), so every variant keeps the
  byte-level ``json_depth_exceeds`` check before parsing, and its cost is in every figure. Both keep
  integers beyond 64 bits exact, so today's 19-digit scan and standard-library fallback are not needed.

Strictness found while writing this (the script prints the checks): pydantic's strict mode still accepts
``true`` and ``1.0`` for ``Literal[1]`` (so ``v`` is an int constrained to 1 here); msgspec's ``pattern``
is Python's ``re.search``, whose ``$`` also matches before a final newline (the UUID is pinned to 36
chars and the type name ends in ``$(?!\\n)``, which JSON Schema's ECMA-262 dialect reads the same way);
pydantic's patterns are Rust regexes, where ``$`` is the end of the text and look-arounds do not exist.

    PYTHONPATH=. /tmp/benchvenv/bin/python bench/contract_models.py          # from the repository's root
    PYTHONPATH=. /tmp/benchvenv/bin/python bench/contract_models.py --rows 1000000 --cases 2

/tmp/benchvenv is a scratch virtualenv (python3 -m venv /tmp/benchvenv; /tmp/benchvenv/bin/pip install
msgspec pydantic orjson sqlalchemy numpy limits), so that the project's .venv stays as it is. The verdict
check compares each event's verdict (valid with its fields and raw text, rejected with its echoed id,
repeated) and the kind of error of a bad envelope, not the wording of messages.
"""

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, TypeVar, cast

import msgspec
import orjson
import pydantic
import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    WrapValidator,
)
from pydantic.json_schema import models_json_schema
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from service import formats
from service.domain.instants import iso, utc_datetime
from service.domain.json_depth import MAX_JSON_DEPTH, json_depth_exceeds
from service.ingest import protocol
from service.ingest.protocol import (
    MAX_HASH_LENGTH,
    MAX_SEQ,
    MAX_SITE_KEY_LENGTH,
    MAX_TIMESTAMP_MS,
    MAX_TYPE_LENGTH,
    MAX_URL_LENGTH,
    MIN_TIMESTAMP_MS,
    Envelope,
    EventVerdict,
    InvalidBody,
    InvalidEnvelope,
    Problem,
    RejectedEvent,
    RepeatedEvent,
    TooDeep,
    ValidEvent,
    parse_body,
)
from service.reports.records import SESSION_FIELDS, STREAM_BATCH

MAX_EVENTS = 500  # CALLTRAIL_MAX_EVENTS_PER_BATCH's default
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TYPE_PATTERN = "^[A-Za-z0-9_.:-]+$"
KNOWN_TYPES = ("hash", "message")
TOO_DEEP = f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"

# 1. The ingest envelope: msgspec

MsUuid = Annotated[str, msgspec.Meta(min_length=36, max_length=36, pattern=UUID_PATTERN)]
MsTimestamp = Annotated[int, msgspec.Meta(ge=MIN_TIMESTAMP_MS, lt=MAX_TIMESTAMP_MS)]
MsSeq = Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]
MsTypeName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_TYPE_LENGTH, pattern=TYPE_PATTERN + r"(?!\n)")
]


class MsHashEvent(msgspec.Struct, tag_field="type", tag="hash"):
    id: MsUuid
    seq: MsSeq
    ts: MsTimestamp
    hash: Annotated[str, msgspec.Meta(max_length=MAX_HASH_LENGTH)]
    trigger: Literal["load", "hashchange"] | None = None


class MsMessageEvent(msgspec.Struct, tag_field="type", tag="message"):
    id: MsUuid
    seq: MsSeq
    ts: MsTimestamp
    data: Any


class MsOtherEvent(msgspec.Struct):
    """Any other type, stored verbatim: the fallback, since a tagged union cannot have a catch-all tag."""

    id: MsUuid
    seq: MsSeq
    ts: MsTimestamp
    type: MsTypeName


class MsLooseEvent(msgspec.Struct):
    """What a rejected event can still tell: its id and type, if any."""

    id: Any = None
    type: Any = None


MsKnownEvent = MsHashEvent | MsMessageEvent


class MsPage(msgspec.Struct):
    id: MsUuid
    url: Annotated[str, msgspec.Meta(max_length=MAX_URL_LENGTH)]


class MsEnvelope(msgspec.Struct):
    """The whole batch in one decode: one bad event fails it all, and an event of another type too."""

    v: Literal[1]
    site: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SITE_KEY_LENGTH)]
    sent_at: MsTimestamp
    page: MsPage
    events: Annotated[list[MsKnownEvent], msgspec.Meta(min_length=1, max_length=MAX_EVENTS)]


class MsRawEnvelope(msgspec.Struct):
    v: Literal[1]
    site: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SITE_KEY_LENGTH)]
    sent_at: MsTimestamp
    page: MsPage
    events: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1)]


class MsAnyEnvelope(msgspec.Struct):
    v: Literal[1]
    site: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SITE_KEY_LENGTH)]
    sent_at: MsTimestamp
    page: MsPage
    events: Annotated[list[Any], msgspec.Meta(min_length=1)]


class MsEventResult(msgspec.Struct, omit_defaults=True):
    id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    error: str | None = None


class MsIngestResponse(msgspec.Struct):
    results: list[MsEventResult]


MS_ENVELOPE = msgspec.json.Decoder(MsEnvelope)
MS_RAW_ENVELOPE = msgspec.json.Decoder(MsRawEnvelope)
MS_ANY_ENVELOPE = msgspec.json.Decoder(MsAnyEnvelope)
MS_KNOWN_EVENT = msgspec.json.Decoder(MsKnownEvent)
MS_OTHER_EVENT = msgspec.json.Decoder(MsOtherEvent)
MS_LOOSE_EVENT = msgspec.json.Decoder(MsLooseEvent)
MS_ENCODER = msgspec.json.Encoder()


def _ms_problem(exc: msgspec.ValidationError) -> Problem:
    message, _, path = str(exc).rpartition(" - at `$.")
    return Problem(path.rstrip("`"), message) if message else Problem("body", str(exc))


def _ms_envelope(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    if json_depth_exceeds(body):
        raise TooDeep(TOO_DEEP)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: first
        raise InvalidEnvelope([_ms_problem(exc)]) from None
    except msgspec.DecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}") from None


def _rest_of_envelope(events: int, url: str) -> str:
    """What the Structs cannot say: the configured batch size, and a URL's scheme and host."""
    problems = []
    if events > MAX_EVENTS:
        problems.append(Problem("events", f"has {events} events; at most {MAX_EVENTS} per request"))
    page_url = protocol._clean_page_url(url)
    if page_url is None:
        problems.append(
            Problem("page.url", f"must be an absolute http(s) URL of at most {MAX_URL_LENGTH} chars")
        )
    if problems or page_url is None:
        raise InvalidEnvelope(problems)
    return page_url


def _with_repeats(
    site: str, sent_at: int, page_id: str, page_url: str, verdicts: list[EventVerdict]
) -> Envelope:
    seen: set[str] = set()
    for index, verdict in enumerate(verdicts):
        if isinstance(verdict, ValidEvent):
            if verdict.event_id in seen:
                verdicts[index] = RepeatedEvent(verdict.event_id)
            else:
                seen.add(verdict.event_id)
    return Envelope(site, sent_at, page_id.lower(), page_url, tuple(verdicts))


def _echo_id(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= 64 else None


def ms_whole(body: bytes) -> MsEnvelope:
    envelope: MsEnvelope = _ms_envelope(MS_ENVELOPE, body)
    _rest_of_envelope(len(envelope.events), envelope.page.url)
    return envelope


def _ms_raw_verdict(raw: msgspec.Raw) -> ValidEvent | RejectedEvent:
    try:
        event: MsHashEvent | MsMessageEvent | MsOtherEvent = MS_KNOWN_EVENT.decode(raw)
    except msgspec.ValidationError as exc:
        try:
            loose = MS_LOOSE_EVENT.decode(raw)
        except msgspec.ValidationError:
            return RejectedEvent(None, "an event must be a JSON object")
        if not isinstance(loose.type, str) or loose.type in KNOWN_TYPES:
            return RejectedEvent(_echo_id(loose.id), str(exc))
        try:
            event = MS_OTHER_EVENT.decode(raw)
        except msgspec.ValidationError as other:
            return RejectedEvent(_echo_id(loose.id), str(other))
    kind = event.type if isinstance(event, MsOtherEvent) else event.__struct_config__.tag
    return ValidEvent(event.id.lower(), event.seq, event.ts, cast(str, kind), bytes(raw).decode())


def ms_raw(body: bytes) -> Envelope:
    envelope: MsRawEnvelope = _ms_envelope(MS_RAW_ENVELOPE, body)
    page_url = _rest_of_envelope(len(envelope.events), envelope.page.url)
    verdicts: list[EventVerdict] = [_ms_raw_verdict(raw) for raw in envelope.events]
    return _with_repeats(envelope.site, envelope.sent_at, envelope.page.id, page_url, verdicts)


def _ms_convert_verdict(value: Any) -> ValidEvent | RejectedEvent:
    if not isinstance(value, dict):
        return RejectedEvent(None, "an event must be a JSON object")
    kind = value.get("type")
    try:
        if kind in KNOWN_TYPES or not isinstance(kind, str):
            event: MsHashEvent | MsMessageEvent | MsOtherEvent = msgspec.convert(value, MsKnownEvent)
        else:
            event = msgspec.convert(value, MsOtherEvent)
    except msgspec.ValidationError as exc:
        return RejectedEvent(_echo_id(value.get("id")), str(exc))
    kind = event.type if isinstance(event, MsOtherEvent) else event.__struct_config__.tag
    return ValidEvent(
        event.id.lower(), event.seq, event.ts, cast(str, kind), MS_ENCODER.encode(value).decode()
    )


def ms_convert(body: bytes) -> Envelope:
    envelope: MsAnyEnvelope = _ms_envelope(MS_ANY_ENVELOPE, body)
    page_url = _rest_of_envelope(len(envelope.events), envelope.page.url)
    verdicts: list[EventVerdict] = [_ms_convert_verdict(value) for value in envelope.events]
    return _with_repeats(envelope.site, envelope.sent_at, envelope.page.id, page_url, verdicts)


# 1. The ingest envelope: pydantic


class PdStrict(BaseModel):
    model_config = ConfigDict(strict=True)


PdUuid = Annotated[str, Field(pattern=UUID_PATTERN)]
PdTimestamp = Annotated[int, Field(ge=MIN_TIMESTAMP_MS, lt=MAX_TIMESTAMP_MS)]
PdSeq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
PdSiteKey = Annotated[str, Field(min_length=1, max_length=MAX_SITE_KEY_LENGTH)]
PdVersion = Annotated[int, Field(ge=1, le=1)]  # not Literal[1]: strict mode lets true and 1.0 through that


class PdHashEvent(PdStrict):
    id: PdUuid
    seq: PdSeq
    ts: PdTimestamp
    type: Literal["hash"]
    hash: Annotated[str, Field(max_length=MAX_HASH_LENGTH)]
    trigger: Literal["load", "hashchange"] | None = None


class PdMessageEvent(PdStrict):
    id: PdUuid
    seq: PdSeq
    ts: PdTimestamp
    type: Literal["message"]
    data: Any


class PdOtherEvent(PdStrict):
    id: PdUuid
    seq: PdSeq
    ts: PdTimestamp
    type: Annotated[str, Field(min_length=1, max_length=MAX_TYPE_LENGTH, pattern=TYPE_PATTERN)]


def _pd_kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in KNOWN_TYPES else "other" if isinstance(kind, str) else None


PdEvent = Annotated[
    Annotated[PdHashEvent, Tag("hash")]
    | Annotated[PdMessageEvent, Tag("message")]
    | Annotated[PdOtherEvent, Tag("other")],
    Discriminator(_pd_kind),
]
PD_EVENT = TypeAdapter[PdHashEvent | PdMessageEvent | PdOtherEvent](PdEvent)


def _pd_error(exc: ValidationError) -> str:
    """Every problem of the event, ``field: message; ...`` as today (the union's tag left out)."""
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"][1:])
        parts.append(f"{field}: {error['msg']}" if field else error["msg"])
    return "; ".join(parts)


def _pd_verdict(value: Any, validate: Callable[[Any], PdHashEvent | PdMessageEvent | PdOtherEvent]) -> Any:
    try:
        event = validate(value)
    except ValidationError as exc:
        event_id = _echo_id(value.get("id")) if isinstance(value, dict) else None
        return RejectedEvent(event_id, _pd_error(exc))
    raw = pydantic_core.to_json(value).decode()
    return ValidEvent(event.id.lower(), event.seq, event.ts, event.type, raw)


def _pd_wrap(value: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
    """An event's verdict in place of the event: its problems reject it alone."""
    return _pd_verdict(value, handler)


class PdPage(PdStrict):
    id: PdUuid
    url: Annotated[str, Field(max_length=MAX_URL_LENGTH)]


class PdEnvelope(PdStrict):
    v: PdVersion
    site: PdSiteKey
    sent_at: PdTimestamp
    page: PdPage
    events: Annotated[list[PdEvent], Field(min_length=1, max_length=MAX_EVENTS)]


class PdWrapEnvelope(PdStrict):
    """``events`` as the schema shows them; validation leaves a verdict in place of each."""

    v: PdVersion
    site: PdSiteKey
    sent_at: PdTimestamp
    page: PdPage
    events: Annotated[list[Annotated[PdEvent, WrapValidator(_pd_wrap)]], Field(min_length=1)]


class PdAnyEnvelope(PdStrict):
    v: PdVersion
    site: PdSiteKey
    sent_at: PdTimestamp
    page: PdPage
    events: Annotated[list[Any], Field(min_length=1)]


class PdEventResult(BaseModel):
    id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    error: str | None = None


class PdIngestResponse(BaseModel):
    results: list[PdEventResult]


M = TypeVar("M", bound=BaseModel)
PD_ENVELOPE = TypeAdapter(PdEnvelope)
PD_WRAP_ENVELOPE = TypeAdapter(PdWrapEnvelope)
PD_ANY_ENVELOPE = TypeAdapter(PdAnyEnvelope)


def _pd_envelope(adapter: TypeAdapter[M], body: bytes) -> M:
    if json_depth_exceeds(body):
        raise TooDeep(TOO_DEEP)
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors[0]["type"] == "json_invalid":
            raise InvalidBody(f"the body is not valid JSON: {errors[0]['msg']}") from None
        raise InvalidEnvelope(
            [Problem(".".join(str(part) for part in e["loc"]) or "body", e["msg"]) for e in errors]
        ) from None


def pd_whole(body: bytes) -> PdEnvelope:
    envelope = _pd_envelope(PD_ENVELOPE, body)
    _rest_of_envelope(len(envelope.events), envelope.page.url)
    return envelope


def pd_wrap(body: bytes) -> Envelope:
    envelope = _pd_envelope(PD_WRAP_ENVELOPE, body)
    page_url = _rest_of_envelope(len(envelope.events), envelope.page.url)
    verdicts = cast(list[EventVerdict], envelope.events)
    return _with_repeats(envelope.site, envelope.sent_at, envelope.page.id, page_url, verdicts)


def pd_any(body: bytes) -> Envelope:
    envelope = _pd_envelope(PD_ANY_ENVELOPE, body)
    page_url = _rest_of_envelope(len(envelope.events), envelope.page.url)
    verdicts: list[EventVerdict] = [_pd_verdict(value, PD_EVENT.validate_python) for value in envelope.events]
    return _with_repeats(envelope.site, envelope.sent_at, envelope.page.id, page_url, verdicts)


def today(body: bytes) -> Envelope:
    return parse_body(body, max_events=MAX_EVENTS)


# 1. Bodies, and the check that the verdicts agree

NOW_MS = 1_764_000_000_000
HASH = "#?mobile=13800000000&status=100&type=phone&agentEmail=a%40x.com&sdkAppId=1400"


def an_id(n: int) -> str:
    return str(uuid.UUID(int=(0x019A_B3C4_D5E6_7000 << 64) | 0x8000_0000_0000_0000 | n))


def hash_event(seq: int) -> dict[str, Any]:
    return {
        "id": an_id(seq),
        "seq": seq,
        "ts": NOW_MS - 1000 + seq,
        "type": "hash",
        "trigger": "hashchange",
        "hash": HASH,
    }


def envelope_of(events: list[Any], **changes: Any) -> dict[str, Any]:
    page = {"id": an_id(0), "url": "https://crm.example.com/ticket/list/#frag"}
    return {"v": 1, "site": "cts_bench", "sent_at": NOW_MS, "page": page, "events": events} | changes


def batch(events: int) -> bytes:
    return orjson.dumps(envelope_of([hash_event(seq) for seq in range(1, events + 1)]))


def hostile_events() -> list[tuple[str, Any]]:
    def ev(n: int, /, **changes: Any) -> dict[str, Any]:
        return {k: v for k, v in (hash_event(n) | changes).items() if v is not ...}

    return [
        ("valid hash", ev(1)),
        ("seq 0", ev(2, seq=0)),
        ("seq true", ev(3, seq=True)),
        ("seq 4.0", ev(4, seq=4.0)),
        ("seq 2**53", ev(5, seq=2**53)),
        ("ts as text", ev(6, ts=str(NOW_MS))),
        ("ts before 2000", ev(7, ts=MIN_TIMESTAMP_MS - 1)),
        ("id not a UUID", ev(8, id="not-a-uuid")),
        ("id upper case", ev(9, id=an_id(9).upper())),
        ("id + newline", ev(10, id=an_id(10) + "\n")),
        ("hash missing", ev(11, hash=...)),
        ("hash 8,193 chars", ev(12, hash="#" * 8193)),
        ("trigger click", ev(13, trigger="click")),
        ("trigger null", ev(14, trigger=None)),
        ("message, data", ev(15, type="message", hash=..., trigger=..., data={"source": "ccc-sdk"})),
        ("message, data null", ev(16, type="message", hash=..., trigger=..., data=None)),
        ("message, no data", ev(17, type="message", hash=..., trigger=...)),
        ("other type", ev(18, type="custom.event:x", hash=...)),
        ("other type + newline", ev(19, type="custom\n", hash=...)),
        ("type of 65 chars", ev(20, type="x" * 65, hash=...)),
        ("type 'bad type!'", ev(21, type="bad type!", hash=...)),
        ("type missing", ev(22, type=..., hash=...)),
        ("integer of 100 bits", ev(23, big=2**100)),
        ("event is an array", [1, 2]),
        ("id repeated", ev(1)),
        ("unknown field", ev(26, extra={"nested": [1, 2.5, "é"]})),
    ]


def hostile_envelopes() -> list[tuple[str, bytes]]:
    good = [hash_event(1)]
    cases: list[tuple[str, Any]] = [
        ("v true", envelope_of(good, v=True)),
        ("v 1.0", envelope_of(good, v=1.0)),
        ("v '1'", envelope_of(good, v="1")),
        ("site empty", envelope_of(good, site="")),
        ("sent_at as text", envelope_of(good, sent_at=str(NOW_MS))),
        ("page missing", {k: v for k, v in envelope_of(good).items() if k != "page"}),
        ("page.url ftp", envelope_of(good, page={"id": an_id(0), "url": "ftp://x/"})),
        ("events empty", envelope_of([])),
        ("501 events", envelope_of([hash_event(n) for n in range(1, 502)])),
        ("body an array", [1]),
    ]
    bodies = [(label, orjson.dumps(value)) for label, value in cases]
    bodies.append(("lone surrogate", batch(1).replace(b"#?mobile", b"\\ud800#?mobile")))
    bodies.append(("not JSON", b'{"v": 1,'))
    deep = orjson.dumps(envelope_of([hash_event(1) | {"data": "DEEP"}])).replace(
        b'"DEEP"', b"[" * 40 + b"]" * 40
    )
    bodies.append(("40 levels deep", deep))
    return bodies


def outcome(parse: Callable[[bytes], Envelope], body: bytes) -> tuple[Any, ...]:
    try:
        envelope = parse(body)
    except (InvalidBody, InvalidEnvelope) as exc:
        return (type(exc).__name__,)
    return (
        envelope.site_key,
        envelope.sent_at,
        envelope.page_id,
        envelope.page_url,
        *map(verdict_of, envelope.events),
    )


def verdict_of(verdict: EventVerdict) -> tuple[Any, ...]:
    if isinstance(verdict, ValidEvent):
        return ("valid", verdict.event_id, verdict.seq, verdict.ts, verdict.type, verdict.raw)
    if isinstance(verdict, RejectedEvent):
        return ("rejected", verdict.event_id)
    return ("repeated", verdict.event_id)


def check_verdicts(parsers: dict[str, Callable[[bytes], Envelope]]) -> None:
    events = hostile_events()
    # The standard library writes it: orjson cannot write the 100-bit integer.
    mixed = json.dumps(
        envelope_of([event for _, event in events]), separators=(",", ":"), ensure_ascii=False
    ).encode()
    # Valid JSON spelled otherwise than orjson writes it: spaces, an escape, 2.50, a key given twice.
    spelled = batch(2).replace(b'"trigger":', b'"note" : "caf\\u00e9", "n": 2.50, "n": 3, "trigger": ')
    envelopes = hostile_envelopes()
    expected = outcome(today, mixed)
    print(
        f"Verdict check against parse_body: {len(events)} events in one batch (valid, invalid, repeated,"
        f" other types), valid events spelled otherwise, {len(envelopes)} bad envelopes or bodies"
    )
    for name, parse in parsers.items():
        found = outcome(parse, mixed)
        differences = [
            f"{label}: {want[0]}->{got[0]}" + (" (raw text differs)" if want[0] == got[0] else "")
            for (label, _), want, got in zip(events, expected[4:], found[4:], strict=True)
            if want != got
        ]
        if outcome(parse, spelled) != outcome(today, spelled):
            differences.append("events spelled otherwise: raw text differs (kept as sent)")
        for label, body in envelopes:
            want, got = outcome(today, body), outcome(parse, body)
            if want != got:
                differences.append(f"{label}: {want[0]}->{got[0]}")
        print(
            f"  {name:<18} " + ("agrees on all" if not differences else "differs: " + "; ".join(differences))
        )


# 2. Session rows as NDJSON

Row = tuple[Any, ...]
TIME_FIELDS = ("offered_at", "connected_at", "ended_at")
TIME_INDEXES = frozenset(SESSION_FIELDS.index(name) for name in TIME_FIELDS)


class MsSession(msgspec.Struct, gc=False):
    id: str
    site: str
    sdk_app_id: str | None
    channel: str | None
    agent_email: str | None
    agent_mobile: str | None
    agent_nickname: str | None
    agent_role_id: str | None
    customer_mobile: str | None
    customer_user_id: str | None
    customer_nickname: str | None
    customer_avatar: str | None
    offered_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    ring_s: float | None
    talk_s: float | None
    outcome: Literal["ongoing", "answered", "not_answered", "unknown"]
    end_source: Literal["explicit", "superseded", "timeout"] | None
    observed_from: int
    cards_sent: int
    call_outs: int
    event_count: int
    duplicate_count: int


class PdSession(BaseModel):
    id: str
    site: str
    sdk_app_id: str | None
    channel: str | None
    agent_email: str | None
    agent_mobile: str | None
    agent_nickname: str | None
    agent_role_id: str | None
    customer_mobile: str | None
    customer_user_id: str | None
    customer_nickname: str | None
    customer_avatar: str | None
    offered_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    ring_s: float | None
    talk_s: float | None
    outcome: Literal["ongoing", "answered", "not_answered", "unknown"]
    end_source: Literal["explicit", "superseded", "timeout"] | None
    observed_from: int
    cards_sent: int
    call_outs: int
    event_count: int
    duplicate_count: int


assert tuple(MsSession.__struct_fields__) == SESSION_FIELDS == tuple(PdSession.model_fields)
PD_SESSIONS = TypeAdapter(list[PdSession])


def session_rows(count: int) -> list[Row]:
    """Rows shaped as the sessions query reads them: a mix of answered, missed, ongoing and mid-call joins."""
    rng = random.Random(7)
    start = 1_793_491_200_000  # 2026-11-01T00:00:00Z
    rows: list[Row] = []
    for n in range(count):
        offered = start + n * 2_500 + rng.randrange(1000)
        kind = rng.random()
        ring = round(rng.uniform(1, 40), 3)
        talk = round(rng.uniform(10, 900), 3)
        connected = offered + round(ring * 1000) if kind < 0.8 else None
        ended: int | None = (connected or offered) + round((talk if connected else ring) * 1000)
        call_outcome = "answered" if connected else "not_answered"
        end_source: str | None = "explicit"
        if kind > 0.97:
            ended, call_outcome, end_source = None, "ongoing", None
        chat = kind > 0.5
        rows.append(
            (
                an_id(n), "crm-main", "1400000001", "im" if chat else "phone", f"agent-{n % 40}@x.com",
                None if n % 3 else f"1390000{n % 40:04d}", f"坐席{n % 40}" if n % 2 else f"Agent {n % 40}",
                str(n % 5), None if chat else f"138{n % 10**8:08d}", f"user-{n % 977}" if chat else None,
                "张三" if n % 7 == 0 else None, "https://img.example.com/a/1.png" if chat else None,
                offered if n % 50 else None, connected, ended, ring if connected else None,
                talk if connected and ended else None, call_outcome, end_source, 100 if n % 50 else 200,
                rng.randrange(3) if chat else 0, rng.randrange(2), rng.randrange(2, 9), rng.randrange(3),
            )
        )  # fmt: skip
    return rows


def record_of(row: Row) -> dict[str, Any]:
    """session_record's steps on a tuple: the record's fields, times as ISO text with Z."""
    record = dict(zip(SESSION_FIELDS, row, strict=True))
    for name in TIME_FIELDS:
        record[name] = iso(record[name])
    return record


def with_datetimes(row: Row) -> Row:
    """The row with its times as datetimes, what the typed models declare and write as ISO text."""
    return tuple(utc_datetime(value) if i in TIME_INDEXES else value for i, value in enumerate(row))


def today_shipped_lines(chunk: Sequence[Row]) -> Iterator[str]:
    return formats.ndjson_chunks(record_of(row) for row in chunk)


def orjson_lines(chunk: Sequence[Row]) -> Iterator[bytes]:
    for row in chunk:
        yield formats.dumps(record_of(row)) + b"\n"


def ms_lines(chunk: Sequence[Row]) -> Iterator[bytes]:
    encode = MS_ENCODER.encode
    for row in chunk:
        yield encode(MsSession(*with_datetimes(row))) + b"\n"


def ms_chunk_lines(chunk: Sequence[Row]) -> Iterator[bytes]:
    yield MS_ENCODER.encode_lines([MsSession(*with_datetimes(row)) for row in chunk])


def pd_lines(chunk: Sequence[Row]) -> Iterator[str]:
    construct = PdSession.model_construct
    for row in chunk:
        yield (
            construct(**dict(zip(SESSION_FIELDS, with_datetimes(row), strict=True))).model_dump_json() + "\n"
        )


def pd_validated_lines(chunk: Sequence[Row]) -> Iterator[str]:
    for row in chunk:
        yield (
            PdSession(**dict(zip(SESSION_FIELDS, with_datetimes(row), strict=True))).model_dump_json() + "\n"
        )


def pd_chunk_array(chunk: Sequence[Row]) -> Iterator[bytes]:
    """A JSON array per chunk, not NDJSON: what a format=json page would send; pydantic's serializer alone."""
    construct = PdSession.model_construct
    yield PD_SESSIONS.dump_json(
        [construct(**dict(zip(SESSION_FIELDS, with_datetimes(row), strict=True))) for row in chunk]
    )


def drain(
    make: Callable[[Sequence[Row]], Iterator[bytes] | Iterator[str]], chunks: Sequence[Sequence[Row]]
) -> int:
    """What a streaming response does with the pieces, minus the socket: take each one."""
    size = 0
    for chunk in chunks:
        for piece in make(chunk):
            size += len(piece)
    return size


def joined(make: Callable[[Sequence[Row]], Iterator[bytes] | Iterator[str]], chunk: Sequence[Row]) -> bytes:
    return b"".join(piece.encode() if isinstance(piece, str) else piece for piece in make(chunk))


# 3. The inbound report


class MsRing(msgspec.Struct, gc=False):
    mean: float | None
    p50: float | None
    p90: float | None
    max: float | None


class MsTalk(msgspec.Struct, gc=False):
    mean: float | None
    p90: float | None


class MsFigures(msgspec.Struct, gc=False):
    offered: int
    answered: int
    not_answered: int
    unresolved: int
    answer_rate: float | None
    short_abandons: int
    not_answered_rate_excl_short: float | None
    ring_s: MsRing
    talk_s: MsTalk
    service_level: float | None


class MsBucket(msgspec.Struct, gc=False):
    start: str
    offered: int
    answered: int
    not_answered: int
    unresolved: int
    answer_rate: float | None
    short_abandons: int
    not_answered_rate_excl_short: float | None
    ring_s: MsRing
    talk_s: MsTalk
    service_level: float | None


class MsInboundReport(msgspec.Struct):
    interval: Literal["15m", "30m", "hour", "day", "week"]
    tz: str
    from_: str = msgspec.field(name="from")
    to: str
    service_level_s: int
    short_abandon_s: int
    totals: MsFigures
    buckets: list[MsBucket]


class PdRing(BaseModel):
    mean: float | None
    p50: float | None
    p90: float | None
    max: float | None


class PdTalk(BaseModel):
    mean: float | None
    p90: float | None


class PdFigures(BaseModel):
    offered: int
    answered: int
    not_answered: int
    unresolved: int
    answer_rate: float | None
    short_abandons: int
    not_answered_rate_excl_short: float | None
    ring_s: PdRing
    talk_s: PdTalk
    service_level: float | None


class PdBucket(BaseModel):
    start: str
    offered: int
    answered: int
    not_answered: int
    unresolved: int
    answer_rate: float | None
    short_abandons: int
    not_answered_rate_excl_short: float | None
    ring_s: PdRing
    talk_s: PdTalk
    service_level: float | None


class PdInboundReport(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)

    interval: Literal["15m", "30m", "hour", "day", "week"]
    tz: str
    # Not alias="from": mypy (without pydantic's plugin) would then want a keyword argument named from.
    from_: str = Field(serialization_alias="from")
    to: str
    service_level_s: int
    short_abandon_s: int
    totals: PdFigures
    buckets: list[PdBucket]


class TdRing(TypedDict):
    mean: float | None
    p50: float | None
    p90: float | None
    max: float | None


class TdTalk(TypedDict):
    mean: float | None
    p90: float | None


class TdFigures(TypedDict):
    offered: int
    answered: int
    not_answered: int
    unresolved: int
    answer_rate: float | None
    short_abandons: int
    not_answered_rate_excl_short: float | None
    ring_s: TdRing
    talk_s: TdTalk
    service_level: float | None


class TdBucket(TdFigures):
    start: str


TdInboundReport = TypedDict(
    "TdInboundReport",
    {
        "interval": str, "tz": str, "from": str, "to": str, "service_level_s": int, "short_abandon_s": int,
        "totals": TdFigures, "buckets": list[TdBucket],
    },
)  # fmt: skip
PD_REPORT = TypeAdapter(PdInboundReport)
PD_TYPED_REPORT = TypeAdapter(TdInboundReport)
# What _figures has per bucket before it builds a dict: (start, offered, answered, not_answered, unresolved,
# answer_rate, short_abandons, not_answered_rate_excl_short, ring mean, p50, p90, max, talk mean, p90,
# service_level).
Figures = tuple[Any, ...]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


def report_figures(buckets: int) -> tuple[list[Figures], Figures]:
    """Hourly figures of a month in Asia/Shanghai: quiet nights (empty buckets, nulls), busy days."""
    rng = random.Random(11)
    start = datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=8)))
    rows = []
    for hour in range(buckets):
        offered = 0 if hour % 24 < 7 else rng.randrange(5, 120)
        answered = round(offered * rng.uniform(0.7, 0.9))
        not_answered = max(0, offered - answered - 1)
        short = min(not_answered, rng.randrange(4))
        ring = (
            (round(rng.uniform(5, 12), 3), 8.0, 19.0, round(rng.uniform(40, 120), 3))
            if offered
            else (None,) * 4
        )
        talk = (round(rng.uniform(100, 400), 3), 640.0) if answered else (None, None)
        rows.append(
            (
                (start + timedelta(hours=hour)).isoformat(), offered, answered, not_answered,
                offered - answered - not_answered, _ratio(answered, offered), short,
                _ratio(not_answered - short, offered - short), *ring, *talk,
                _ratio(int(answered * 0.8), offered - short),
            )
        )  # fmt: skip
    sums = [sum(row[i] for row in rows) for i in (1, 2, 3, 4)]
    total = ("", *sums, 0.872924, 47, 0.079516, 9.842, 8.0, 19.0, 118.2, 301.5, 640.0, 0.781331)
    return rows, total


REPORT_HEAD = {
    "interval": "hour",
    "tz": "Asia/Shanghai",
    "from": "2026-11-01T00:00:00Z",
    "to": "2026-12-01T00:00:00Z",
}


def today_report(rows: list[Figures], total: Figures) -> bytes:
    return formats.dumps(report_dict(rows, total))


def pd_typed_report(rows: list[Figures], total: Figures) -> bytes:
    """Today's dicts, declared as TypedDicts, written by pydantic's serializer: the schema without models."""
    return PD_TYPED_REPORT.dump_json(cast(TdInboundReport, report_dict(rows, total)))


def report_dict(rows: list[Figures], total: Figures) -> dict[str, Any]:
    """_figures' dicts, then inbound_report's response (a bucket is {"start": ..., **figures})."""

    def figures(f: Figures) -> dict[str, Any]:
        return {
            "offered": f[1],
            "answered": f[2],
            "not_answered": f[3],
            "unresolved": f[4],
            "answer_rate": f[5],
            "short_abandons": f[6],
            "not_answered_rate_excl_short": f[7],
            "ring_s": {"mean": f[8], "p50": f[9], "p90": f[10], "max": f[11]},
            "talk_s": {"mean": f[12], "p90": f[13]},
            "service_level": f[14],
        }

    per_bucket = [figures(f) for f in rows]
    report = {
        **REPORT_HEAD,
        "service_level_s": 20,
        "short_abandon_s": 5,
        "totals": figures(total),
        "buckets": [{"start": f[0], **figured} for f, figured in zip(rows, per_bucket, strict=True)],
    }
    return report


def ms_report(rows: list[Figures], total: Figures) -> bytes:
    buckets = [
        MsBucket(
            start=f[0], offered=f[1], answered=f[2], not_answered=f[3], unresolved=f[4], answer_rate=f[5],
            short_abandons=f[6], not_answered_rate_excl_short=f[7],
            ring_s=MsRing(mean=f[8], p50=f[9], p90=f[10], max=f[11]), talk_s=MsTalk(mean=f[12], p90=f[13]),
            service_level=f[14],
        )
        for f in rows
    ]  # fmt: skip
    t = total
    totals = MsFigures(
        offered=t[1], answered=t[2], not_answered=t[3], unresolved=t[4], answer_rate=t[5],
        short_abandons=t[6], not_answered_rate_excl_short=t[7],
        ring_s=MsRing(mean=t[8], p50=t[9], p90=t[10], max=t[11]),
        talk_s=MsTalk(mean=t[12], p90=t[13]), service_level=t[14],
    )  # fmt: skip
    head = REPORT_HEAD
    report = MsInboundReport(
        interval="hour", tz=head["tz"], from_=head["from"], to=head["to"], service_level_s=20,
        short_abandon_s=5, totals=totals, buckets=buckets,
    )  # fmt: skip
    return MS_ENCODER.encode(report)


def _pd_report(rows: list[Figures], total: Figures, validate: bool) -> bytes:
    ring, talk, bucket, figures_of, report_of = (
        (PdRing, PdTalk, PdBucket, PdFigures, PdInboundReport)
        if validate
        else (
            PdRing.model_construct, PdTalk.model_construct, PdBucket.model_construct,
            PdFigures.model_construct, PdInboundReport.model_construct,
        )
    )  # fmt: skip
    buckets = [
        bucket(
            start=f[0], offered=f[1], answered=f[2], not_answered=f[3], unresolved=f[4], answer_rate=f[5],
            short_abandons=f[6], not_answered_rate_excl_short=f[7],
            ring_s=ring(mean=f[8], p50=f[9], p90=f[10], max=f[11]), talk_s=talk(mean=f[12], p90=f[13]),
            service_level=f[14],
        )
        for f in rows
    ]  # fmt: skip
    t = total
    totals = figures_of(
        offered=t[1], answered=t[2], not_answered=t[3], unresolved=t[4], answer_rate=t[5],
        short_abandons=t[6], not_answered_rate_excl_short=t[7],
        ring_s=ring(mean=t[8], p50=t[9], p90=t[10], max=t[11]),
        talk_s=talk(mean=t[12], p90=t[13]), service_level=t[14],
    )  # fmt: skip
    head = REPORT_HEAD
    report = report_of(
        interval="hour", tz=head["tz"], from_=head["from"], to=head["to"], service_level_s=20,
        short_abandon_s=5, totals=totals, buckets=buckets,
    )  # fmt: skip
    return PD_REPORT.dump_json(report)


def pd_report(rows: list[Figures], total: Figures) -> bytes:
    return _pd_report(rows, total, validate=True)


def pd_report_constructed(rows: list[Figures], total: Figures) -> bytes:
    return _pd_report(rows, total, validate=False)


# Timing

# The CPU time of this thread, not the wall clock: on a shared machine (a load of 8 on 2 cores is common
# here) the wall clock counts the time other processes ran, and the CPU clock only this work's own.
CLOCK = time.thread_time


def time_each(
    title: str,
    unit: str,
    scale: float,
    calls: int,
    repeat: int,
    candidates: list[tuple[str, Callable[[], object]]],
) -> None:
    """Times ``calls`` calls of each candidate per repeat, in a rotated order; ``scale`` turns seconds per
    call into ``unit``. The first candidate is today's, the one the ratios divide by."""
    times: dict[str, list[float]] = {name: [] for name, _ in candidates}
    for r in range(repeat):
        shift = r % len(candidates)
        for name, run in candidates[shift:] + candidates[:shift]:
            gc.collect()
            started = CLOCK()
            for _ in range(calls):
                run()
            times[name].append((CLOCK() - started) / calls * scale)
    base = times[candidates[0][0]]
    print(f"\n{title}\n  {unit}; {calls:,} call(s) a timing, {repeat} repeats, order rotated each repeat")
    print(f"  {'candidate':<58} {'min':>9} {'median':>9} {'ratio':>6}  ratio range")
    for name, found in times.items():
        ratios = [t / b for t, b in zip(found, base, strict=True)]
        print(
            f"  {name:<58} {min(found):9.3f} {statistics.median(found):9.3f} {statistics.median(ratios):6.2f}"
            f"  {min(ratios):.2f}-{max(ratios):.2f}"
        )


def calls_for(run: Callable[[], object], seconds: float) -> int:
    started = CLOCK()
    count = 0
    while CLOCK() - started < 0.05:
        run()
        count += 1
    return max(1, round(seconds / ((CLOCK() - started) / count)))


def ingest_case(repeat: int, seconds: float) -> None:
    parsers: dict[str, Callable[[bytes], Envelope]] = {
        "msgspec Raw": ms_raw,
        "msgspec convert": ms_convert,
        "pydantic wrap": pd_wrap,
        "pydantic any": pd_any,
    }
    check_verdicts(parsers)
    for events in (1, 50):
        body = batch(events)
        expected = outcome(today, body)
        assert all(outcome(parse, body) == expected for parse in parsers.values()), "verdicts differ"
        assert len(ms_whole(body).events) == len(pd_whole(body).events) == events

        def bind(parse: Callable[[bytes], object], body: bytes = body) -> Callable[[], object]:
            return lambda: parse(body)

        candidates = [
            ("today: parse_body (orjson + hand checks, per-event verdicts)", bind(today)),
            ("msgspec Raw: Raw events + per-event tagged decode", bind(ms_raw)),
            ("msgspec convert: list[Any] + convert + re-encode", bind(ms_convert)),
            ("pydantic wrap: validate_json + WrapValidator per event", bind(pd_wrap)),
            ("pydantic any: validate_json list[Any] + validate_python", bind(pd_any)),
            ("msgspec whole: decode(Envelope), no verdicts, no raw", bind(ms_whole)),
            ("pydantic whole: validate_json(Envelope), no verdicts/raw", bind(pd_whole)),
        ]
        time_each(
            f"1. Ingest parse, {events}-event batch ({len(body):,} bytes)", "us per body", 1e6,
            calls_for(candidates[0][1], seconds), repeat, candidates,
        )  # fmt: skip


def sessions_case(repeat: int, count: int) -> None:
    rows = session_rows(count)
    chunks = [rows[i : i + STREAM_BATCH] for i in range(0, len(rows), STREAM_BATCH)]
    expected = joined(today_shipped_lines, chunks[0])
    for make in (orjson_lines, ms_lines, ms_chunk_lines, pd_lines, pd_validated_lines):
        assert joined(make, chunks[0]) == expected, f"{make.__name__} writes other NDJSON"
    assert joined(pd_chunk_array, chunks[0]) == b"[" + expected.rstrip(b"\n").replace(b"\n", b",") + b"]"

    def bind(make: Callable[[Sequence[Row]], Iterator[bytes] | Iterator[str]]) -> Callable[[], object]:
        return lambda: drain(make, chunks)

    candidates = [
        ("shipped: dict + formats.ndjson_chunks (msgspec encode_lines)", bind(today_shipped_lines)),
        ("orjson bytes lines: dict + orjson.dumps + b'\\n'", bind(orjson_lines)),
        ("msgspec Struct(*row) + Encoder.encode per row", bind(ms_lines)),
        ("msgspec Struct(*row) + Encoder.encode_lines per 1,000", bind(ms_chunk_lines)),
        ("pydantic model_construct + model_dump_json per row", bind(pd_lines)),
        ("pydantic Model(**row) (validating) + model_dump_json", bind(pd_validated_lines)),
        ("pydantic construct + TypeAdapter(list).dump_json per 1,000*", bind(pd_chunk_array)),
    ]
    time_each(
        f"2. {count:,} session rows as NDJSON, scaled to a million (tuple -> record -> line, 1,000 a batch)",
        "seconds per million rows", 1e6 / count, 1, repeat, candidates,
    )  # fmt: skip
    print("  * a JSON array per batch, not NDJSON (pydantic has no dump of lines)")


def report_case(repeat: int, seconds: float) -> None:
    rows, total = report_figures(720)
    expected = today_report(rows, total)
    for make in (ms_report, pd_report, pd_report_constructed, pd_typed_report):
        assert make(rows, total) == expected, f"{make.__name__} writes another report"
    candidates: list[tuple[str, Callable[[], object]]] = [
        ("today: dicts + {'start', **figures} + orjson", lambda: today_report(rows, total)),
        ("msgspec Structs + Encoder.encode", lambda: ms_report(rows, total)),
        ("pydantic models (validating) + TypeAdapter.dump_json", lambda: pd_report(rows, total)),
        ("pydantic model_construct + TypeAdapter.dump_json", lambda: pd_report_constructed(rows, total)),
        ("pydantic TypedDict: today's dicts + TypeAdapter.dump_json", lambda: pd_typed_report(rows, total)),
    ]
    time_each(
        f"3. Inbound report, 720 hourly buckets ({len(expected):,} bytes), built and serialised",
        "ms per report", 1e3, calls_for(candidates[0][1], seconds), repeat, candidates,
    )  # fmt: skip


def schemas() -> None:
    """The contract as OpenAPI 3.1 components (JSON Schema 2020-12), from each library."""
    ref = "#/components/schemas/{name}"
    ms_types = (MsEnvelope, MsOtherEvent, MsIngestResponse, MsSession, MsInboundReport)
    _, ms_components = msgspec.json.schema_components(ms_types, ref_template=ref)
    pd_models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (PdEnvelope, "validation"),
        (PdIngestResponse, "serialization"),
        (PdSession, "serialization"),
        (PdInboundReport, "serialization"),
    ]
    _, pd_schema = models_json_schema(pd_models, ref_template="#/components/schemas/{model}")
    pd_components = pd_schema.get("$defs", {})
    print("\nSchemas (OpenAPI 3.1 components)")
    for name, components, hash_event in (
        ("msgspec.json.schema_components", ms_components, ms_components["MsHashEvent"]),
        ("pydantic models_json_schema", pd_components, pd_components["PdHashEvent"]),
    ):
        size = len(orjson.dumps(components))
        print(
            f"  {name:<32} {len(components)} components, {size:,} bytes; hash event:"
            f" {orjson.dumps(hash_event).decode()}"
        )


def strictness() -> None:
    class LiteralVersion(PdStrict):
        v: Literal[1]

    let_through = []
    for text in (b'{"v": true}', b'{"v": 1.0}'):
        try:
            LiteralVersion.model_validate_json(text)
            let_through.append(text.decode())
        except ValidationError:
            pass
    print(f"\npydantic strict Literal[1] lets through: {', '.join(let_through) or 'nothing'}")
    print(f"msgspec pattern '$' lets 'x\\n' through: {_lets_newline_through()}")


def _lets_newline_through() -> bool:
    try:
        msgspec.convert("x\n", Annotated[str, msgspec.Meta(pattern=TYPE_PATTERN)])
    except msgspec.ValidationError:
        return False
    return True


def _load() -> str:
    return " ".join(f"{load:.1f}" for load in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="timings of each candidate, cases 1 and 3")
    parser.add_argument("--rows", type=int, default=100_000, help="session rows timed (scaled to a million)")
    parser.add_argument("--row-repeat", type=int, default=5, help="timings of each candidate, case 2")
    parser.add_argument(
        "--seconds", type=float, default=0.05, help="target length of one timing, cases 1 and 3"
    )
    parser.add_argument("--cases", default="123", help="which cases to run")
    parser.add_argument("--wall", action="store_true", help="time by the wall clock instead of CPU time")
    args = parser.parse_args()
    if args.wall:
        global CLOCK
        CLOCK = time.perf_counter
    pythonpath = os.environ.get("PYTHONPATH")
    print(
        f"$ cd {os.getcwd()} && {f'PYTHONPATH={pythonpath} ' if pythonpath else ''}{sys.executable}",
        *sys.argv,
    )
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {platform.platform()}; msgspec"
        f" {msgspec.__version__}, pydantic {pydantic.VERSION} (pydantic-core {pydantic_core.__version__}),"
        f" orjson {orjson.__version__}; {os.cpu_count()} CPUs"
    )
    print(f"Clock: {'wall' if args.wall else 'CPU time of the thread'}; load average {_load()}")
    started = time.perf_counter()
    if "1" in args.cases:
        ingest_case(args.repeat, args.seconds)
    if "2" in args.cases:
        sessions_case(args.row_repeat, args.rows)
    if "3" in args.cases:
        report_case(args.repeat, args.seconds)
    schemas()
    strictness()
    print(f"\nTotal {time.perf_counter() - started:.0f} s (wall); load average {_load()}")


if __name__ == "__main__":
    main()
