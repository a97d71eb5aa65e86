"""Every recorded answer (tests/contract/golden/answers.json) decodes into its model in
service/contract/models.py: no field missing, none extra, none of another type. And the ingest envelope's
model and the endpoint's own parser (ingest/protocol.py) accept and refuse the same envelopes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.contract import models
from service.ingest.protocol import MAX_SITE_KEY_LENGTH, InvalidEnvelope, parse_envelope

ANSWERS: dict[str, str] = orjson.loads(
    (Path(__file__).resolve().parent / "golden" / "answers.json").read_bytes()
)
MODELS: list[tuple[str, type[msgspec.Struct]]] = [
    ("GET /v1/sessions?", models.SessionPage),
    ("GET /v1/sessions/", models.SessionDetail),
    ("GET /v1/audit?", models.AuditPage),
    ("GET /v1/analytics/inbound?", models.InboundReport),
    ("GET /v1/analytics/agents?", models.AgentsReport),
    ("GET /v1/analytics/cards?", models.CardsReport),
    ("GET /v1/analytics/outbound?", models.OutboundReport),
    ("GET /v1/quality?", models.Quality),
]


def recorded(prefix: str, status: str) -> list[tuple[str, bytes]]:
    found = []
    for name, text in ANSWERS.items():
        head, _, body = text.partition("\n")
        if name.startswith(prefix) and head.startswith(f"{status} application/json"):
            found.append((name, body.encode()))
    return found


@pytest.mark.parametrize(("prefix", "model"), MODELS)
def test_every_recorded_answer_is_its_model(prefix: str, model: type[msgspec.Struct]) -> None:
    answers = recorded(prefix, "200")
    assert answers, prefix
    for name, body in answers:
        decoded = msgspec.json.decode(body, type=model)
        # Decoding and writing again gives the same bytes: no field was dropped or reordered.
        assert msgspec.json.encode(decoded) == body, name


def test_every_ndjson_row_is_its_model() -> None:
    rows = {"GET /v1/sessions?": models.Session, "GET /v1/audit?": models.Action}
    rows |= {"calltrail export sessions": models.Session, "calltrail export actions": models.Action}
    rows |= {"calltrail export events": models.EventRecord}
    checked = 0
    for prefix, model in rows.items():
        for name, text in ANSWERS.items():
            if name.startswith(prefix) and "ndjson" in name:
                body = text.split("\n", 1)[1] if name.startswith("GET") else text
                for line in body.splitlines():
                    msgspec.json.decode(line, type=model)
                    checked += 1
    assert checked > 50


def test_every_recorded_error_is_the_error_model() -> None:
    errors = [(n, b) for status in ("400", "401", "404", "413", "415") for n, b in recorded("", status)]
    assert len(errors) >= 5
    for _name, body in errors:
        msgspec.json.decode(body, type=models.Error)


def test_a_model_refuses_an_answer_with_a_field_more_or_less() -> None:
    _name, body = recorded("GET /v1/quality?", "200")[0]
    answer = orjson.loads(body)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.json.decode(orjson.dumps({**answer, "surprise": 1}), type=models.Quality)
    del answer["events"]
    with pytest.raises(msgspec.ValidationError, match="missing required field"):
        msgspec.json.decode(orjson.dumps(answer), type=models.Quality)


GOOD_URL = "https://crm.example.com/ticket/"
values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3), st.just([]), st.just({})
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just(1), st.just(2), st.just(True), st.just(1.0), st.just("1"), values),
        "site": st.one_of(st.text(min_size=0, max_size=MAX_SITE_KEY_LENGTH + 2), values),
        "sent_at": st.one_of(
            st.sampled_from([946_684_800_000, 946_684_799_999, 4_102_444_799_999, 4_102_444_800_000]),
            st.integers(946_684_800_000, 4_102_444_799_999),
            st.just(1.7e12),
            values,
        ),
        "page": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": st.one_of(st.uuids().map(str), st.just("not-a-uuid"), values),
                    # the URL's rules (scheme, host) are the parser's alone; the model declares text
                    "url": st.just(GOOD_URL),
                },
            ),
            values,
        ),
        "events": st.one_of(st.lists(st.just({"type": "hash"}), max_size=2), values),
    },
)


@settings(max_examples=400, deadline=None)
@given(envelopes)
def test_the_envelope_model_and_the_parser_agree(document: dict[str, Any]) -> None:
    try:
        parse_envelope(document, max_events=100)
        parsed = True
    except InvalidEnvelope:
        parsed = False
    try:
        msgspec.convert(document, models.EventBatch, strict=True)
        declared = True
    except msgspec.ValidationError:
        declared = False
    assert parsed == declared, document


def test_a_whole_batch_is_the_envelope_model() -> None:
    document = {
        "v": 1,
        "site": "site-key",
        "sent_at": 1_764_000_000_000,
        "page": {"id": str(uuid.uuid4()), "url": GOOD_URL},
        "events": [{"id": str(uuid.uuid4()), "seq": 1, "ts": 1_764_000_000_000, "type": "hash"}],
    }
    parse_envelope(document, max_events=100)
    assert msgspec.convert(document, models.EventBatch).site == "site-key"
