"""POST /v1/events through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select
from starlette.types import Message

from service.admin.registry import Site, add_site
from service.app import create_app
from service.config import Settings
from service.storage.schema import events
from tests.batches import BASE_TS, batch, body, hash_event, message_event
from tests.conftest import ORIGIN

pytestmark = pytest.mark.anyio

HEADERS = {"origin": ORIGIN, "content-type": "text/plain;charset=UTF-8"}


async def post(
    api: httpx.AsyncClient, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await api.post("/v1/events", content=content, headers=HEADERS if headers is None else headers)


def stored_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(events).order_by(events.c.seq)).all())


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    document = response.json()
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message", "details"}
    assert document["error"]["code"] == code
    assert document["error"]["message"]
    error: dict[str, Any] = document["error"]
    return error


async def test_accepts_a_batch_and_stores_it_verbatim(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    first = hash_event(1, "#?mobile=18888888888&status=100&type=phone", trigger="load")
    second = message_event(
        2, "sendCard", {"header": "Offer", "desc": "10% off", "pic": "", "url": "https://x"}
    )
    response = await post(api, body(batch(site.site_key, [first, second])))

    assert response.status_code == 200
    assert response.json() == {
        "results": [{"id": first["id"], "status": "accepted"}, {"id": second["id"], "status": "accepted"}]
    }
    rows = stored_rows(engine)
    assert [r.event_id for r in rows] == [first["id"], second["id"]]
    assert orjson.loads(rows[0].raw) == first
    assert orjson.loads(rows[1].raw) == second
    assert rows[0].type == "hash"
    assert rows[1].type == "message"
    assert rows[0].site_id == site.id


async def test_resent_batch_answers_duplicate_and_stores_nothing_new(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    document = batch(site.site_key, [hash_event(1, "#?status=100"), hash_event(2, "#?status=200")])
    first = await post(api, body(document))
    again = await post(api, body(document))

    assert [r["status"] for r in first.json()["results"]] == ["accepted", "accepted"]
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert len(stored_rows(engine)) == 2


async def test_same_batch_twice_at_once_is_stored_once(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    document = batch(site.site_key, [hash_event(i, f"#?status=100&i={i}") for i in range(1, 21)])
    responses = await asyncio.gather(*(post(api, body(document)) for _ in range(8)))

    statuses = [[r["status"] for r in resp.json()["results"]] for resp in responses]
    accepted = sum(s.count("accepted") for s in statuses)
    duplicate = sum(s.count("duplicate") for s in statuses)
    assert accepted == 20
    assert duplicate == 7 * 20
    assert len(stored_rows(engine)) == 20


async def test_repeated_id_within_one_batch_is_a_duplicate(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    event = hash_event(1, "#?status=100")
    response = await post(api, body(batch(site.site_key, [event, dict(event)])))
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "duplicate"]
    assert len(stored_rows(engine)) == 1


async def test_invalid_event_is_rejected_alone(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    good = hash_event(1, "#?status=100")
    bad = {"id": "not-a-uuid", "seq": 0, "ts": "yesterday", "type": "hash", "hash": 5}
    also_good = message_event(3, "callOut", {"phoneNumber": "15889000000"})
    response = await post(api, body(batch(site.site_key, [good, bad, "not an object", also_good])))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "accepted"]
    assert results[1]["id"] == "not-a-uuid"
    for part in ("id:", "seq:", "ts:", "hash:"):
        assert part in results[1]["error"]
    assert results[2]["id"] is None
    assert [r.event_id for r in stored_rows(engine)] == [good["id"], also_good["id"]]


async def test_unknown_type_is_stored_verbatim(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    event = {
        "id": "3b0c6a0e-1d8e-4a57-9d0a-2f1b1c1d1e1f",
        "seq": 1,
        "ts": BASE_TS,
        "type": "visibility",
        "x": [1],
    }
    response = await post(api, body(batch(site.site_key, [event])))
    assert response.json()["results"][0]["status"] == "accepted"
    (row,) = stored_rows(engine)
    assert row.type == "visibility"
    assert orjson.loads(row.raw) == event


async def test_times_are_kept_and_corrected_for_skew(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    # A browser clock one hour fast: the event happened 2 s before sending, by any clock.
    now = int(time.time() * 1000)
    sent_at = now + 3_600_000
    event = hash_event(1, "#?status=100", ts=sent_at - 2000)
    before = int(time.time() * 1000)
    await post(api, body(batch(site.site_key, [event], sent_at=sent_at)))
    after = int(time.time() * 1000)

    (row,) = stored_rows(engine)
    assert row.client_ts == sent_at - 2000
    assert row.sent_at == sent_at
    assert before <= row.received_at <= after
    assert row.event_at == row.received_at - 2000
    assert row.skew_ms == sent_at - row.received_at
    assert row.ts_flag is None


async def test_event_stamped_after_its_batch_is_clamped_and_flagged(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    sent_at = int(time.time() * 1000)
    await post(
        api, body(batch(site.site_key, [hash_event(1, "#?a=1", ts=sent_at + 600_000)], sent_at=sent_at))
    )
    (row,) = stored_rows(engine)
    assert row.ts_flag == "after_sent"
    assert row.event_at == row.received_at


async def test_page_url_loses_its_fragment(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    document = batch(
        site.site_key, [hash_event(1, "#?status=100")], url="https://crm.example.com/t?q=1#?mobile=1"
    )
    await post(api, body(document))
    (row,) = stored_rows(engine)
    assert row.page_url == "https://crm.example.com/t?q=1"


async def test_application_json_is_accepted(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    headers = {"origin": ORIGIN, "content-type": "application/json"}
    response = await post(api, body(batch(site.site_key, [hash_event(1, "#?a=1")])), headers)
    assert response.status_code == 200
    assert len(stored_rows(engine)) == 1


# Bad requests: the answer, and nothing stored.


async def test_body_over_limit_is_413(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    padding = "x" * 70_000
    response = await post(
        api,
        body(
            batch(
                site.site_key,
                [hash_event(1, "#?pad=" + padding[:8000])] * 1
                + [message_event(2, "sendCard", {"desc": padding})],
            )
        ),
    )
    assert_error(response, 413, "body_too_large")
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert stored_rows(engine) == []


async def test_malformed_json_is_400(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    response = await post(api, b'{"v": 1, "site": ')
    assert_error(response, 400, "invalid_json")
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert stored_rows(engine) == []


async def test_invalid_envelope_lists_every_problem(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    document = {"v": 2, "sent_at": "now", "page": {"id": "x", "url": "ftp://a"}, "events": []}
    error = assert_error(await post(api, body(document)), 400, "invalid_envelope")
    assert {d["field"] for d in error["details"]} == {"v", "site", "sent_at", "page.id", "page.url", "events"}
    assert all(d["message"] for d in error["details"])
    assert stored_rows(engine) == []


async def test_too_many_events_is_an_envelope_problem(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    document = batch(site.site_key, [hash_event(i, "#") for i in range(1, 502)])
    error = assert_error(await post(api, body(document)), 400, "invalid_envelope")
    assert [d["field"] for d in error["details"]] == ["events"]
    assert stored_rows(engine) == []


async def test_unknown_site_key_is_401(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    response = await post(api, body(batch("cts_nope", [hash_event(1, "#?a=1")])))
    assert_error(response, 401, "unknown_site")
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert stored_rows(engine) == []


async def test_origin_of_another_site_is_403(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    add_site(engine, "other", ["https://other.example.com"])
    headers = {"origin": "https://other.example.com", "content-type": "text/plain"}
    response = await post(api, body(batch(site.site_key, [hash_event(1, "#?a=1")])), headers)
    assert_error(response, 403, "origin_not_allowed")
    # A registered origin reads the error, though it may not write here.
    assert response.headers["access-control-allow-origin"] == "https://other.example.com"
    assert stored_rows(engine) == []


async def test_unregistered_origin_is_403_without_cors(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    headers = {"origin": "https://evil.example.net", "content-type": "text/plain"}
    response = await post(api, body(batch(site.site_key, [hash_event(1, "#?a=1")])), headers)
    assert_error(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers
    assert stored_rows(engine) == []


async def test_missing_origin_is_403(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    response = await post(
        api, body(batch(site.site_key, [hash_event(1, "#?a=1")])), {"content-type": "text/plain"}
    )
    assert_error(response, 403, "origin_not_allowed")
    assert stored_rows(engine) == []


async def test_other_media_type_is_415(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    headers = {"origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"}
    response = await post(api, body(batch(site.site_key, [hash_event(1, "#?a=1")])), headers)
    assert_error(response, 415, "unsupported_media_type")
    assert stored_rows(engine) == []


async def chunks_of(content: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


async def test_body_in_many_chunks_is_put_together(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    content = body(batch(site.site_key, [hash_event(1, "#?a=1"), hash_event(2, "#?a=2")]))
    response = await api.post("/v1/events", content=chunks_of(content, 50), headers=HEADERS)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]
    assert [row.seq for row in stored_rows(engine)] == [1, 2]


async def test_streamed_body_over_limit_is_413(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    # No Content-Length to refuse it by: the limit is kept while the chunks arrive.
    content = body(batch(site.site_key, [hash_event(1, "#?pad=" + "x" * 7000)] * 10))
    assert len(content) > 64 * 1024
    response = await api.post("/v1/events", content=chunks_of(content, 8192), headers=HEADERS)
    assert_error(response, 413, "body_too_large")
    assert stored_rows(engine) == []


async def test_client_gone_before_its_body_gets_no_answer_and_stores_nothing(
    settings: Settings, site: Site, engine: Engine
) -> None:
    app = create_app(settings)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "headers": [(b"origin", ORIGIN.encode()), (b"content-type", b"text/plain")],
        "client": ("203.0.113.7", 50000),
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent == []
    assert stored_rows(engine) == []


async def test_ingestion_is_served_under_a_root_path(settings: Settings, site: Site, engine: Engine) -> None:
    # What uvicorn's --root-path does: the prefix stays in the path, and root_path says what it is.
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, root_path="/calltrail")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            content = body(batch(site.site_key, [hash_event(1, "#?a=1")]))
            response = await client.post("/calltrail/v1/events", content=content, headers=HEADERS)
    assert response.status_code == 200, response.text
    assert [row.seq for row in stored_rows(engine)] == [1]


async def test_other_methods_are_405_with_allow(api: httpx.AsyncClient, site: Site) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await api.request(method, "/v1/events", headers={"origin": ORIGIN})
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "POST, OPTIONS"
        assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_preflight_from_registered_origin(api: httpx.AsyncClient, site: Site) -> None:
    response = await api.options(
        "/v1/events", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"]
    assert "Origin" in response.headers["vary"]


async def test_preflight_from_unknown_origin_is_refused(api: httpx.AsyncClient, site: Site) -> None:
    response = await api.options(
        "/v1/events", headers={"origin": "https://evil.example.net", "access-control-request-method": "POST"}
    )
    assert_error(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers


async def test_site_added_after_start_works_at_once(
    api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    await post(api, body(batch(site.site_key, [hash_event(1, "#?a=1")])))  # fills the cache
    late = add_site(engine, "late", ["https://late.example.com"])
    headers = {"origin": "https://late.example.com", "content-type": "text/plain"}
    await asyncio.sleep(0.6)  # past the directory's minimum reload interval
    response = await post(api, body(batch(late.site_key, [hash_event(1, "#?a=1")])), headers)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "accepted"


@pytest.mark.parametrize(
    "hostile",
    [
        {"id_suffix": "\n"},
        {"url": "https://crm.example.com/\x00"},
        {"page_id_suffix": "\n"},
        {"big": 2**80},
        {"deep": True},
    ],
)
async def test_hostile_input_never_fails_the_server(
    api: httpx.AsyncClient, site: Site, engine: Engine, hostile: dict[str, Any]
) -> None:
    import json

    good = hash_event(1, "#?status=100")
    event = hash_event(2, "#?status=200")
    page_id = "6f1c1a52-8f0e-4c43-9a34-0c8f5a3a9d01"
    url = hostile.get("url", "https://crm.example.com/")
    if "id_suffix" in hostile:
        event["id"] += hostile["id_suffix"]
    if "page_id_suffix" in hostile:
        page_id += hostile["page_id_suffix"]
    if "big" in hostile:
        event["n"] = hostile["big"]
    document = batch(site.site_key, [good, event], page_id=page_id, url=url)
    content = json.dumps(document).encode()
    if "deep" in hostile:
        content = content[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await post(api, content)

    assert response.status_code in (200, 400), response.text
    rows = stored_rows(engine)
    if response.status_code == 400:
        assert rows == []
        return
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses[0] == "accepted"
    if "id_suffix" in hostile:
        assert statuses[1] == "rejected"
        assert len(rows) == 1
    else:
        assert statuses[1] == "accepted"
        assert orjson.loads(rows[1].raw.replace(str(2**80), "0")) is not None
        assert str(2**80) in rows[1].raw


async def test_new_site_origin_gets_cors_at_once(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    await post(api, body(batch(site.site_key, [hash_event(1, "#?a=1")])))  # fills the cache
    late = add_site(engine, "later", ["https://later.example.com"])
    await asyncio.sleep(0.6)  # past the directory's minimum reload interval
    preflight = await api.options(
        "/v1/events", headers={"origin": "https://later.example.com", "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 204
    headers = {"origin": "https://later.example.com", "content-type": "text/plain"}
    response = await post(api, body(batch(late.site_key, [hash_event(1, "#?a=1")])), headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://later.example.com"
