"""POST /v1/ccc/push: credentials, the raw log, dedup, refusals and the app's rate limit, on both
databases."""

from __future__ import annotations

import asyncio
import base64
import logging
import sqlite3
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from service.ccc.apps import Credentials, add_app, remove_app
from service.config import Settings
from service.domain.pii import PiiPolicy
from tests.ccc.pushes import (
    APP_A,
    APP_B,
    OK,
    as_body,
    assert_ccc_error,
    basic,
    cdr,
    everything_stored,
    push,
    recording,
    stored,
)
from tests.conftest import running_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def app_a(engine: Engine) -> Credentials:
    return add_app(engine, APP_A, "basic")


@pytest.fixture
def app_b(engine: Engine) -> Credentials:
    return add_app(engine, APP_B, "basic")


def auth_of(credentials: Credentials) -> dict[str, str]:
    assert credentials.app.client_id is not None and credentials.secret is not None
    return basic(credentials.app.client_id, credentials.secret)


async def test_a_basic_push_is_stored_verbatim_and_acknowledged(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    document = cdr(APP_A, "e97be0ab-1ef6-4ad2-a8c4-2b2bbfb18e55")
    before = time.time_ns() // 1_000_000
    response = await push(api, document, auth_of(app_a), push_uuid="push-1")

    assert response.status_code == 200
    assert response.json() == OK
    assert response.headers["content-type"] == "application/json"
    (row,) = stored(engine)
    assert row.sdk_app_id == APP_A
    assert row.source == "push"
    assert (row.action, row.version, row.push_uuid) == ("cdr", "1", "push-1")
    assert row.body == as_body(document).decode()  # byte for byte, indentation and newline included
    assert before <= row.received_at <= time.time_ns() // 1_000_000


async def test_wrong_or_missing_credentials_are_401(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    assert app_a.app.client_id is not None
    cases: dict[str, dict[str, str] | None] = {
        "wrong password": basic(app_a.app.client_id, "not-the-password"),
        "unknown user": basic("ccc_0000000000000000", app_a.secret or ""),
        "missing": None,
        "not base64": {"authorization": "Basic %%%"},
        "no colon": {"authorization": "Basic " + base64.b64encode(b"justone").decode()},
        "another scheme": {"authorization": "Digest username=x"},
        "unknown token": {"authorization": "Bearer ccct_" + "A" * 43},
        "empty bearer": {"authorization": "Bearer "},
    }
    for what, auth in cases.items():
        response = await push(api, cdr(APP_A), auth)
        assert_ccc_error(response, 401)
        expected = "Bearer" if what == "unknown token" else "Basic"
        assert response.headers["www-authenticate"].startswith(expected), what
    assert stored(engine) == []


async def test_a_credential_for_another_app_is_403(
    api: httpx.AsyncClient, app_a: Credentials, app_b: Credentials, engine: Engine
) -> None:
    response = await push(api, cdr(APP_B), auth_of(app_a))
    assert_ccc_error(response, 403, str(APP_A), str(APP_B))
    assert stored(engine) == []
    assert (await push(api, cdr(APP_B), auth_of(app_b))).json() == OK


async def test_a_repeated_push_uuid_is_acknowledged_and_stored_once_per_app(
    api: httpx.AsyncClient, app_a: Credentials, app_b: Credentials, engine: Engine
) -> None:
    document = cdr(APP_A)
    for _ in range(3):  # CCC retries up to three times
        assert (await push(api, document, auth_of(app_a), push_uuid="same")).json() == OK
    assert len(stored(engine)) == 1
    # Another push, and the same UUID from another app, are records of their own.
    assert (await push(api, cdr(APP_A), auth_of(app_a), push_uuid="other")).json() == OK
    assert (await push(api, cdr(APP_B), auth_of(app_b), push_uuid="same")).json() == OK
    assert [r.push_uuid for r in stored(engine, APP_A)] == ["same", "other"]
    assert [r.push_uuid for r in stored(engine, APP_B)] == ["same"]


async def test_two_identical_pushes_at_once_store_one_row(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    document = cdr(APP_A)
    responses = await asyncio.gather(
        *(push(api, document, auth_of(app_a), push_uuid="race") for _ in range(6))
    )
    assert [r.json() for r in responses] == [OK] * 6
    assert len(stored(engine)) == 1


async def test_pushes_without_a_uuid_are_each_stored(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    document = cdr(APP_A)
    assert (await push(api, document, auth_of(app_a))).json() == OK
    assert (await push(api, document, auth_of(app_a), push_uuid="  ")).json() == OK
    assert [r.push_uuid for r in stored(engine)] == [None, None]


async def test_a_recording_before_its_cdr_both_stored(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    session = str(uuid.uuid4())
    first = await push(api, recording(APP_A, session), auth_of(app_a), action="record", push_uuid="r")
    second = await push(api, cdr(APP_A, session), auth_of(app_a), action="cdr", push_uuid="c")
    assert first.json() == second.json() == OK
    assert [(r.action, r.push_uuid) for r in stored(engine)] == [("record", "r"), ("cdr", "c")]


async def test_an_unknown_or_missing_action_is_stored_raw_and_acknowledged(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    assert (await push(api, cdr(APP_A), auth_of(app_a), action="agentStatus")).json() == OK
    assert (await push(api, cdr(APP_A), auth_of(app_a), action=None)).json() == OK
    for action in ("record", "imcdr", "voicemail", "videoCdr"):
        assert (await push(api, cdr(APP_A), auth_of(app_a), action=action)).json() == OK
    actions = [r.action for r in stored(engine)]
    assert actions == ["agentStatus", None, "record", "imcdr", "voicemail", "videoCdr"]
    assert stored(engine)[1].version is None


async def test_bad_bodies_are_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    auth = auth_of(app_a)
    cases: list[tuple[bytes, int, str]] = [
        (b"{not json", 400, "not JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "array"),
        (b'"SdkAppId"', 400, "not an object"),
        (b'{"SessionId": "x"}', 400, "SdkAppId"),
        (b'{"SdkAppId": "14x"}', 400, "SdkAppId"),
        (b'{"SdkAppId": true}', 400, "SdkAppId"),
        (b'{"SdkAppId": -1}', 400, "SdkAppId"),
        (b'{"SdkAppId": 1400000001, "x": "\xff"}', 400, "UTF-8"),
        (b'{"SdkAppId": 1400000001, "x": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "levels deep"),
        (b'{"SdkAppId": 1400000001, "pad": "' + b"x" * 70_000 + b'"}', 413, "limit"),
    ]
    for content, status, words in cases:
        assert_ccc_error(await push(api, None, auth, content=content), status, words)
    assert_ccc_error(await push(api, cdr(APP_A), auth, action="x" * 65), 400, "action")
    assert_ccc_error(await push(api, cdr(APP_A), auth, push_uuid="u" * 129), 400, "X-TCCC-PUSH-UUID")
    assert_ccc_error(await push(api, cdr(APP_A), auth, action="a\x00b"), 400, "action")
    twice = "/v1/ccc/push?action=cdr&action=record"
    response = await api.post(twice, content=as_body(cdr(APP_A)), headers=auth)
    assert_ccc_error(response, 400, "2 times")
    compressed = await push(api, cdr(APP_A), auth, headers={"content-encoding": "gzip"})
    assert_ccc_error(compressed, 415, "uncompressed")
    assert stored(engine) == []


async def test_a_string_sdk_app_id_of_digits_is_taken(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    assert (await push(api, cdr(APP_A, SdkAppId=str(APP_A)), auth_of(app_a))).json() == OK
    assert len(stored(engine)) == 1


async def test_an_app_without_authentication_is_found_by_its_sdk_app_id(
    api: httpx.AsyncClient, engine: Engine, app_a: Credentials
) -> None:
    add_app(engine, APP_B, "none")
    assert (await push(api, cdr(APP_B))).json() == OK
    assert [r.sdk_app_id for r in stored(engine)] == [APP_B]

    unknown = await push(api, cdr(1400000099))
    assert_ccc_error(unknown, 401, "1400000099", "calltrail ccc add")
    # An app registered with a credential must send it; its SdkAppId alone is not enough.
    needs_basic = await push(api, cdr(APP_A))
    assert_ccc_error(needs_basic, 401, "basic")
    assert needs_basic.headers["www-authenticate"].startswith("Basic")
    assert len(stored(engine)) == 1


async def test_a_removed_app_is_refused_and_its_records_stay(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine
) -> None:
    assert (await push(api, cdr(APP_A), auth_of(app_a))).json() == OK
    remove_app(engine, APP_A)
    assert_ccc_error(await push(api, cdr(APP_A), auth_of(app_a)), 401)
    assert len(stored(engine)) == 1


async def test_the_rate_limit_is_per_app(db_url: str, engine: Engine) -> None:
    a, b = add_app(engine, APP_A, "basic"), add_app(engine, APP_B, "basic")
    async with running_app(Settings(database_url=db_url, ccc_push_rate="2/minute")) as api:
        for _ in range(2):
            assert (await push(api, cdr(APP_A), auth_of(a))).json() == OK
        limited = await push(api, cdr(APP_A), auth_of(a))
        assert_ccc_error(limited, 429, "CALLTRAIL_CCC_PUSH_RATE")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Another app has its own budget; a wrong credential for the limited app spends none of it.
        assert (await push(api, cdr(APP_B), auth_of(b))).json() == OK
        assert (await push(api, cdr(APP_B), auth_of(b))).json() == OK
        assert_ccc_error(await push(api, cdr(APP_B), basic(b.app.client_id or "", "wrong")), 401)
    assert len(stored(engine, APP_A)) == 2
    assert len(stored(engine, APP_B)) == 2


async def test_the_log_never_holds_the_secret_or_the_authorization_header(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = auth_of(app_a)
    await push(api, cdr(APP_A), auth, push_uuid="p1")
    await push(api, cdr(APP_A), auth, push_uuid="p1")  # a repeat, logged
    guess = basic(app_a.app.client_id or "", "guess-" + (app_a.secret or ""))
    assert_ccc_error(await push(api, cdr(APP_A), guess), 401)  # a refusal, logged
    assert "refused with 401" in caplog.text and "repeated" in caplog.text
    assert app_a.secret is not None
    for text in (everything_stored(engine), caplog.text, repr(app_a)):
        assert app_a.secret not in text
        assert auth["authorization"].split()[1] not in text
        assert guess["authorization"].split()[1] not in text
    assert "Basic" not in everything_stored(engine)
    assert len(stored(engine)) == 1


async def test_the_raw_log_keeps_the_customer_protected_under_a_pii_mode(db_url: str, engine: Engine) -> None:
    policy = PiiPolicy("hmac", b"k" * 32)
    app = add_app(engine, APP_A, "basic")
    settings = Settings(database_url=db_url, pii_mode="hmac", pii_key="k" * 32)
    inbound = cdr(APP_A, Caller="008613800000003", Callee="4001234567")
    outbound = cdr(APP_A, Direction=1, Caller="4001234567", Callee="+86 138-0000-0004")
    voice = {**recording(APP_A, inbound["SessionId"]), "EndpointUser": 8613800000003}
    agent_side = {**recording(APP_A, inbound["SessionId"]), "EndpointUser": "ann@x.com"}
    async with running_app(settings) as api:
        for document, action in (
            (inbound, "cdr"),
            (outbound, "cdr"),
            (voice, "record"),
            (agent_side, "record"),
        ):
            assert (await push(api, document, auth_of(app), action=action)).json() == OK
    bodies = [orjson.loads(row.body) for row in stored(engine)]
    by_number = policy.protect("13800000003")
    assert (bodies[0]["Caller"], bodies[0]["Callee"]) == (by_number, "4001234567")
    assert (bodies[1]["Caller"], bodies[1]["Callee"]) == ("4001234567", policy.protect("13800000004"))
    assert bodies[2]["EndpointUser"] == by_number  # the same token from either form of the number
    assert bodies[3]["EndpointUser"] == "ann@x.com"
    assert bodies[0]["SeatUser"] == inbound["SeatUser"]  # the agent's side is kept
    assert {k: v for k, v in bodies[0].items() if k != "Caller"} == {
        k: v for k, v in inbound.items() if k != "Caller"
    }


async def test_an_unavailable_database_is_503_and_a_crash_500_in_cccs_shape(
    api: httpx.AsyncClient, app_a: Credentials, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*_args: Any) -> bool:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr("service.http.ccc.store_record", locked)
    unavailable = await push(api, cdr(APP_A), auth_of(app_a))
    assert_ccc_error(unavailable, 503, "retry")
    assert unavailable.headers["retry-after"] == "5"

    def bug(*_args: Any) -> bool:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("service.http.ccc.store_record", bug)
    crashed = await push(api, cdr(APP_A), auth_of(app_a))
    message = assert_ccc_error(crashed, 500)
    assert "simulated" not in message
    assert stored(engine) == []


async def test_other_methods_are_the_routers_405(api: httpx.AsyncClient) -> None:
    # CCC only POSTs; a GET is someone looking, answered like any other route.
    response = await api.get("/v1/ccc/push")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
