"""Wire format v1, parsed without I/O."""

from __future__ import annotations

from typing import Any

import pytest

from service.ingest.protocol import (
    InvalidBody,
    InvalidEnvelope,
    RejectedEvent,
    RepeatedEvent,
    ValidEvent,
    parse_body,
    parse_envelope,
    parse_event,
)
from tests.batches import BASE_TS, batch, body, hash_event, message_event


def test_parses_a_valid_batch() -> None:
    events = [
        hash_event(1, "#?status=100", trigger="load"),
        message_event(2, "callOut", {"phoneNumber": "1"}),
    ]
    envelope = parse_body(
        body(batch("cts_k", events, page_id="6F1C1A52-8F0E-4C43-9A34-0C8F5A3A9D01")), max_events=10
    )
    assert envelope.site_key == "cts_k"
    assert envelope.page_id == "6f1c1a52-8f0e-4c43-9a34-0c8f5a3a9d01"
    assert [type(e) for e in envelope.events] == [ValidEvent, ValidEvent]
    assert envelope.valid_events[1].type == "message"


def test_not_json_is_invalid_body() -> None:
    with pytest.raises(InvalidBody):
        parse_body(b"\xff{", max_events=10)


@pytest.mark.parametrize("document", [[], "x", 1, None])
def test_non_object_body(document: Any) -> None:
    with pytest.raises(InvalidEnvelope) as info:
        parse_envelope(document, max_events=10)
    assert [p.field for p in info.value.problems] == ["body"]


def test_booleans_are_not_integers() -> None:
    document = batch("k", [hash_event(1, "#")])
    document["v"] = True
    with pytest.raises(InvalidEnvelope) as info:
        parse_envelope(document, max_events=10)
    assert [p.field for p in info.value.problems] == ["v"]
    assert isinstance(parse_event({**hash_event(1, "#"), "seq": True}), RejectedEvent)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "123"}, "id"),
        ({"seq": 0}, "seq"),
        ({"seq": 2**53}, "seq"),
        ({"ts": 1.5}, "ts"),
        ({"ts": 12}, "ts"),
        ({"type": ""}, "type"),
        ({"type": "a b"}, "type"),
        ({"type": ["hash"]}, "type"),
        ({"type": {"hash": 1}}, "type"),
        ({"type": "x" * 65}, "type"),
        ({"id": "6F1C1A52-8F0E-4C43-9A34-0C8F5A3A9D0"}, "id"),
        ({"hash": None}, "hash"),
        ({"hash": "#" * 9000}, "hash"),
        ({"trigger": "popstate"}, "trigger"),
    ],
)
def test_event_problems(change: dict[str, Any], field: str) -> None:
    verdict = parse_event({**hash_event(1, "#?a=1"), **change})
    assert isinstance(verdict, RejectedEvent)
    assert verdict.error.startswith(f"{field}:")


def test_message_event_needs_data() -> None:
    event = message_event(1, "sendCard", {})
    del event["data"]
    verdict = parse_event(event)
    assert isinstance(verdict, RejectedEvent)
    assert "data:" in verdict.error


def test_raw_keeps_unknown_fields() -> None:
    event = {**hash_event(1, "#?x=%E4%BD%A0"), "extra": {"nested": [1, "二"]}}
    verdict = parse_event(event)
    assert isinstance(verdict, ValidEvent)
    assert '"extra":{"nested":[1,"二"]}' in verdict.raw
    assert "%E4%BD%A0" in verdict.raw


def test_repeated_ids_in_a_batch() -> None:
    event = hash_event(1, "#")
    upper = {**event, "id": event["id"].upper()}
    envelope = parse_envelope(batch("k", [event, upper]), max_events=10)
    assert isinstance(envelope.events[0], ValidEvent)
    assert envelope.events[1] == RepeatedEvent(event["id"])


def test_page_url_fragment_is_dropped_and_scheme_checked() -> None:
    envelope = parse_envelope(
        batch("k", [hash_event(1, "#")], url="https://a.example/p#?mobile=1"), max_events=5
    )
    assert envelope.page_url == "https://a.example/p"
    with pytest.raises(InvalidEnvelope):
        parse_envelope(batch("k", [hash_event(1, "#")], url="javascript:alert(1)"), max_events=5)


def test_sent_at_must_be_plausible() -> None:
    with pytest.raises(InvalidEnvelope) as info:
        parse_envelope(batch("k", [hash_event(1, "#")], sent_at=BASE_TS // 1000), max_events=5)
    assert [p.field for p in info.value.problems] == ["sent_at"]


@pytest.mark.parametrize("suffix", ["\n", " ", "\x00"])
def test_ids_and_types_must_match_whole(suffix: str) -> None:
    event = hash_event(1, "#")
    assert isinstance(parse_event({**event, "id": event["id"] + suffix}), RejectedEvent)
    assert isinstance(parse_event({**event, "type": "hash" + suffix}), RejectedEvent)
    with pytest.raises(InvalidEnvelope) as info:
        parse_envelope(batch("k", [event], page_id=str(event["id"]) + suffix), max_events=5)
    assert [p.field for p in info.value.problems] == ["page.id"]


@pytest.mark.parametrize("bad", ["https://a.example/\x00", "https://a.example/\n", "https://a.example/\x7f"])
def test_page_url_with_control_characters_is_refused(bad: str) -> None:
    with pytest.raises(InvalidEnvelope) as info:
        parse_envelope(batch("k", [hash_event(1, "#")], url=bad), max_events=5)
    assert [p.field for p in info.value.problems] == ["page.url"]


def test_ids_are_stored_in_lower_case() -> None:
    event = {**hash_event(1, "#?a=1"), "id": "6F1C1A52-8F0E-4C43-9A34-0C8F5A3A9D01"}
    verdict = parse_event(event)
    assert isinstance(verdict, ValidEvent)
    assert verdict.event_id == "6f1c1a52-8f0e-4c43-9a34-0c8f5a3a9d01"


def test_nineteen_digits_anywhere_switch_to_the_exact_parser() -> None:
    event = message_event(1, "custom", {"n": -9223372036854775809, "s": "1234567890123456789"})
    envelope = parse_body(body_with_big_ints(batch("k", [event])), max_events=5)
    (verdict,) = envelope.events
    assert isinstance(verdict, ValidEvent)
    assert '"n":-9223372036854775809' in verdict.raw


def test_integers_beyond_64_bits_are_kept_exactly() -> None:
    event = {**message_event(1, "custom", {"big": 123456789012345678901234567890, "neg": -(2**70)}), "f": 0.1}
    envelope = parse_body(body_with_big_ints(batch("k", [event])), max_events=5)
    (verdict,) = envelope.events
    assert isinstance(verdict, ValidEvent)
    assert '"big":123456789012345678901234567890' in verdict.raw
    assert f'"neg":{-(2**70)}' in verdict.raw
    assert '"f":0.1' in verdict.raw


@pytest.mark.parametrize(
    "bad", [b'{"v": NaN}', b'{"v": 1, "s": "\\ud800"}', b"[" * 100_000, b"\xef\xbb\xbf{}"]
)
def test_non_json_is_refused_whatever_the_parser(bad: bytes) -> None:
    with pytest.raises(InvalidBody):
        parse_body(bad + b"1234567890123456789012", max_events=5)
    with pytest.raises(InvalidBody):
        parse_body(bad, max_events=5)


def body_with_big_ints(document: Any) -> bytes:
    import json

    return json.dumps(document).encode()
