"""GET /v1/calls, /v1/calls/{app}/{session}, the joined record in sessions, and the outbound report's
placed calls, on both databases, against hand-made truth."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import Engine

from service.admin.registry import Site, add_site, create_key
from service.ccc.apps import add_app
from service.config import Settings
from service.contract.models import Call, CallDetail, CallPage, SessionDetail
from service.reports.call_records import CALL_FIELDS
from tests.ccc.call_records import AGENT, S, cdr, page_call, store, store_raw
from tests.ccc.pushes import APP_A, APP_B
from tests.conftest import running_app
from tests.projection_helpers import T0, hash_row, ingest, message_row

pytestmark = pytest.mark.anyio
WINDOW = {"from": "2025-11-24T00:00:00Z", "to": "2025-11-25T00:00:00Z"}
BOB = "bob@x.com"


def leg(mail: str, start_s: int, *, accept: bool = True, status: str = "ok", **fields: Any) -> dict[str, Any]:
    return {
        "Mail": mail,
        "Type": "staffSeat",
        "StartTimestamp": start_s,
        "RingTimestamp": start_s,
        "AcceptTimestamp": start_s + 3 if accept else 0,
        "EndedTimestamp": start_s + 60,
        "EndStatusString": status,
        "SkillGroupId": 7,
        "SkillGroupName": "Sales",
        **fields,
    }


@pytest.fixture
def calls(settings: Settings, engine: Engine, site: Site) -> None:
    """Four calls of app A (tied to the site), one of app B (no site); ann's page saw the first."""
    add_app(engine, APP_A, "none", [site.name])
    add_app(engine, APP_B, "none")
    store(engine, "cdr", cdr("s-answered"))  # at S, ann, ring S+15
    ingest(settings, [page_call(site, (S + 15) * 1000 + 800)])
    store(
        engine,
        "cdr",
        cdr(
            "s-ivr",
            S + 600,
            QueuedTimestamp=0,
            RingTimestamp=0,
            AcceptTimestamp=0,
            EndStatusString="ivrGiveUp",
            SeatUser=None,
            ServeParticipants=[],
            QueuedSkillGroupId=0,
            QueuedSkillGroupName="",
        ),
    )
    store(
        engine,
        "cdr",
        cdr(
            "s-transfer",
            S + 1200,
            Caller="008613099990001",
            SeatUser={"Mail": BOB},
            ServeParticipants=[
                leg(AGENT, S + 1215, status="seatForward", TransferTo=BOB),
                leg(BOB, S + 1280, TransferFrom=AGENT),
            ],
        ),
    )
    store(
        engine,
        "cdr",
        cdr(
            "s-out",
            S + 1800,
            Direction=1,
            Caller="02566666666",
            Callee="008613055550000",
            QueuedTimestamp=0,
            EndedTimestamp=S + 1800 + 95,
            AcceptTimestamp=S + 1805,
            Duration=90,
            ServeParticipants=[leg(AGENT, S + 1800)],
        ),
    )
    other = cdr("s-other-app", S + 2400)
    other["SdkAppId"] = APP_B
    store_raw(engine, other, app=APP_B, received_at=T0)


@pytest.fixture
async def reader(settings: Settings, engine: Engine, site: Site) -> AsyncIterator[httpx.AsyncClient]:
    key = create_key(engine, "read", "tests").plaintext
    async with running_app(settings) as client:
        client.headers["authorization"] = f"Bearer {key}"
        yield client


async def ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/v1/calls", params={**WINDOW, **params})
    assert response.status_code == 200, response.text
    page = msgspec.json.decode(response.content, type=CallPage, strict=True)
    return [call.session_id for call in page.calls]


async def test_calls_newest_first_with_their_legs_and_joined_sessions(
    reader: httpx.AsyncClient, calls: None
) -> None:
    response = await reader.get("/v1/calls", params=WINDOW)
    page = msgspec.json.decode(response.content, type=CallPage, strict=True)
    assert [c.session_id for c in page.calls] == ["s-other-app", "s-out", "s-transfer", "s-ivr", "s-answered"]
    by_id = {c.session_id: c for c in page.calls}
    answered = by_id["s-answered"]
    assert (answered.customer, answered.queue_s, answered.duration_s) == ("13012345678", 8, 60)
    assert (answered.started_at, answered.accepted_at) == (
        "2025-11-24T16:00:00Z",
        "2025-11-24T16:00:18Z",
    )
    assert answered.leg_count == 1 and len(answered.page_sessions) == 1
    transfer = by_id["s-transfer"]
    assert (transfer.agent_email, transfer.transfers, transfer.leg_count, transfer.page_sessions) == (
        BOB,
        1,
        2,
        [],
    )
    assert by_id["s-ivr"].end_status == "ivrGiveUp" and by_id["s-ivr"].leg_count == 0
    assert by_id["s-out"].direction == "outbound" and by_id["s-out"].customer == "13055550000"


async def test_the_filters(reader: httpx.AsyncClient, calls: None) -> None:
    # ann's calls include the one she transferred to bob (a leg of hers, though the record names bob).
    assert await ids(reader, agent=AGENT) == ["s-other-app", "s-out", "s-transfer", "s-answered"]
    assert await ids(reader, agent=BOB) == ["s-transfer"]
    assert await ids(reader, direction="outbound") == ["s-out"]
    assert await ids(reader, skill_group="Sales", direction="inbound") == [
        "s-other-app",
        "s-transfer",
        "s-answered",
    ]
    assert await ids(reader, skill_group="7", direction="inbound") == [
        "s-other-app",
        "s-transfer",
        "s-answered",
    ]
    assert await ids(reader, end_status="ivrGiveUp") == ["s-ivr"]
    assert await ids(reader, customer="+86 130 9999 0001") == ["s-transfer"]
    assert await ids(reader, seen="true") == ["s-answered"]
    assert "s-answered" not in await ids(reader, seen="false")
    assert await ids(reader, site="crm") == ["s-out", "s-transfer", "s-ivr", "s-answered"]
    assert await ids(reader, channel="chat") == []
    assert await ids(reader, **{"from": "2025-11-24T16:20:00Z", "to": "2025-11-24T16:40:00Z"}) == [
        "s-out",
        "s-transfer",
    ]


async def test_bad_parameters_are_one_400(reader: httpx.AsyncClient, calls: None) -> None:
    response = await reader.get(
        "/v1/calls", params={"channel": "fax", "seen": "maybe", "site": "nope", "cursor": "x"}
    )
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid_parameter"
    assert [d["field"] for d in body["details"]] == ["channel", "seen", "cursor"]
    unknown_site = await reader.get("/v1/calls", params={"site": "nope"})
    assert unknown_site.status_code == 400 and unknown_site.json()["error"]["details"][0]["field"] == "site"


async def test_keyset_pages_walk_every_call_once(reader: httpx.AsyncClient, calls: None) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {**WINDOW, "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await reader.get("/v1/calls", params=params)).json()
        seen += [call["session_id"] for call in page["calls"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == await ids(reader)


async def test_csv_and_ndjson_exports(reader: httpx.AsyncClient, calls: None) -> None:
    text = (await reader.get("/v1/calls", params={**WINDOW, "format": "csv"})).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CALL_FIELDS
    assert [row["session_id"] for row in rows] == await ids(reader)
    answered = next(row for row in rows if row["session_id"] == "s-answered")
    assert answered["sources"] == '["cdr"]' and answered["leg_count"] == "1"
    lines = (await reader.get("/v1/calls", params={**WINDOW, "format": "ndjson"})).text.splitlines()
    decoded = [msgspec.json.decode(line, type=Call, strict=True) for line in lines]
    assert [call.session_id for call in decoded] == await ids(reader)


async def test_one_call_with_one_timeline(reader: httpx.AsyncClient, calls: None) -> None:
    response = await reader.get(f"/v1/calls/{APP_A}/s-answered")
    assert response.status_code == 200
    detail = msgspec.json.decode(response.content, type=CallDetail, strict=True)
    (joined,) = detail.sessions
    assert detail.legs[0].page_session_id == joined.id and detail.legs[0].join == "joined"
    assert detail.legs[0].join_offset_ms == 800
    assert joined.call_session_id == "s-answered" and joined.call_leg == 0
    kinds = [(item.kind if hasattr(item, "kind") else type(item).__name__) for item in detail.timeline]
    events = [getattr(item, "event", None) or getattr(item, "status", None) for item in detail.timeline]
    assert events == ["started", "queued", "ringing", 100, "answered", 200, "leg_ended", "ended", 400]
    assert len(kinds) == len(events)
    missing = await reader.get(f"/v1/calls/{APP_A}/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert (await reader.get("/v1/calls/abc/s-answered")).status_code == 404


async def test_a_session_names_its_call_and_its_detail_carries_it(
    reader: httpx.AsyncClient, calls: None
) -> None:
    (session,) = (await reader.get("/v1/sessions", params=WINDOW)).json()["sessions"]
    assert (session["call_sdk_app_id"], session["call_session_id"], session["call_leg"]) == (
        APP_A,
        "s-answered",
        0,
    )
    response = await reader.get(f"/v1/sessions/{session['id']}")
    detail = msgspec.json.decode(response.content, type=SessionDetail, strict=True)
    assert detail.call is not None and detail.call.session_id == "s-answered"
    text = (await reader.get("/v1/sessions", params={**WINDOW, "format": "csv"})).text
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["call_session_id"] == "s-answered" and row["call_join_offset_ms"] == "800"


async def test_outbound_call_outs_are_matched_to_the_records_they_started(
    settings: Settings, engine: Engine, site: Site, reader: httpx.AsyncClient, calls: None
) -> None:
    page_id = str(uuid.uuid4())
    at = (S + 1800) * 1000 - 2_000  # clicked 2 s before CCC's start
    context = "#?agentEmail=ann%40x.com&sdkAppId=1400000001"
    ingest(
        settings,
        [
            [
                hash_row(site.id, page_id, 1, at - 5_000, context),
                message_row(site.id, page_id, 2, at, "callOut", {"phoneNumber": "+8613055550000"}),
                message_row(site.id, page_id, 3, at + 1_000, "callOut", {"phoneNumber": "13000000000"}),
            ]
        ],
    )
    report = (await reader.get("/v1/analytics/outbound", params=WINDOW)).json()
    assert report["placed"] == {
        "call_outs": 2,
        "placed": 1,
        "answered": 1,
        "talk_s": 90,
        "mean_talk_s": 90.0,
        "end_status": {"ok": 1},
    }
    (ann,) = report["by_agent"]
    assert (ann["call_outs"], ann["placed"], ann["answered"]) == (2, 1, 1)
    # Another site's report matches nothing of app A's.
    add_site(engine, "other", ["https://other.example.com"])
    other = (await reader.get("/v1/analytics/outbound", params={**WINDOW, "site": "other"})).json()
    assert other["placed"]["placed"] == 0
