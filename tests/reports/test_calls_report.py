"""GET /v1/analytics/calls on both databases: every figure of a small set of CCC records checked against
numbers worked out by hand (totals, two time zones' buckets, skill groups), the filters, bad parameters, and
the same answer over rollups as over the raw records, also after records change."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
import msgspec
import orjson
import pytest
from sqlalchemy import Engine, insert, select

from service.admin.registry import Site, add_site, create_key
from service.ccc.apps import add_app
from service.ccc.raw_log import RawRecordRow, store_record
from service.config import Settings
from service.contract.models import CallsReport
from service.domain.buckets import buckets
from service.domain.call_join import JoinRules
from service.domain.call_parsing import session_of
from service.domain.call_records import PULL_TEL_CDR, CallRecord, SatisfactionKey, with_derived_fields
from service.domain.instants import now_ms, parse_iso
from service.projection import call_rollups
from service.projection.call_records import project_call_sessions, record_row
from service.reports.calls_report import CallsFilter, calls
from service.storage.schema import call_records, call_rollup_marks
from tests.conftest import running_app
from tests.projection_helpers import rebuild_all

pytestmark = pytest.mark.anyio
RULES = JoinRules()
APP_A, APP_B = 1400000001, 1400000002
S = 1763942400  # 2025-11-24T00:00:00Z, in Unix seconds as CCC sends them
WINDOW = {"from": "2025-11-24T00:00:00Z", "to": "2025-11-24T02:00:00Z"}
ANN, BOB = "ann@x.com", "bob@x.com"


def cdr(
    session_id: str,
    start: int,
    *,
    app: int = APP_A,
    queued: int | None = None,
    ring: int | None = None,
    accept: int | None = None,
    end: int,
    status: str,
    hung_up: str,
    group: tuple[int, str] | None = None,
    agent: str | None = None,
    keys: tuple[str, ...] = (),
    direction: int = 0,
    transfer_to: str | None = None,
) -> dict[str, Any]:
    """A phone CDR push; times are seconds after S."""
    legs: list[dict[str, Any]] = []
    if agent is not None:
        if transfer_to is not None:
            legs.append(
                {
                    "Mail": ANN,
                    "Type": "staffSeat",
                    "StartTimestamp": S + (ring or start),
                    "AcceptTimestamp": S + (accept or 0) if accept else 0,
                    "EndedTimestamp": S + end - 10,
                    "EndStatusString": "seatForward",
                    "TransferTo": transfer_to,
                }
            )
        legs.append(
            {
                "Mail": agent,
                "Type": "staffSeat",
                "StartTimestamp": S + (ring or start),
                "RingTimestamp": S + (ring or start),
                "AcceptTimestamp": S + accept if accept else 0,
                "EndedTimestamp": S + end,
                "EndStatusString": status,
            }
        )
    body: dict[str, Any] = {
        "SdkAppId": app,
        "SessionId": session_id,
        "Caller": "008613012345678",
        "Callee": "02566666666",
        "Direction": direction,
        "StartTimestamp": S + start,
        "QueuedTimestamp": S + queued if queued is not None else 0,
        "RingTimestamp": S + ring if ring is not None else 0,
        "AcceptTimestamp": S + accept if accept is not None else 0,
        "EndedTimestamp": S + end,
        "EndStatusString": status,
        "HungUpSide": hung_up,
        "ServeParticipants": legs,
        "PostIVRKeyPressed": [{"Key": key, "Label": f"label {key}"} for key in keys],
    }
    if group is not None:
        body["QueuedSkillGroupId"], body["QueuedSkillGroupName"] = group
    if agent is not None:
        body["SeatUser"] = {"Mail": agent, "UserId": agent}
    return body


SALES, SUPPORT = (7, "Sales"), (8, "Support")
# The hand-checked set (times in seconds after 2025-11-24T00:00:00Z).
RECORDS = [
    cdr(
        "r1",
        600,
        queued=610,
        ring=620,
        accept=625,
        end=700,
        status="ok",
        hung_up="user",
        group=SALES,
        agent=ANN,
        keys=("1",),
    ),  # queue 15 s
    cdr(
        "r2",
        1200,
        queued=1210,
        ring=1240,
        accept=1250,
        end=1400,
        status="ok",
        hung_up="seat",
        group=SALES,
        agent=BOB,
        keys=("2",),
        transfer_to=BOB,
    ),  # queue 40 s, transferred
    cdr("r3", 1800, end=1830, status="ivrGiveUp", hung_up="user"),
    cdr("r4", 4000, queued=4010, end=4070, status="waitingGiveUp", hung_up="user", group=SUPPORT),  # 60 s
    cdr(
        "r5", 4200, queued=4205, ring=4215, end=4225, status="ringingGiveUp", hung_up="user", group=SUPPORT
    ),  # queue 20 s
    cdr("r6", 4500, queued=4505, end=4506, status="noSeatOnline", hung_up="system", group=SUPPORT),  # 1 s
    cdr("r7", 5000, end=5005, status="notWorkTime", hung_up="system"),
    cdr("r8", 700, accept=720, end=800, status="ok", hung_up="user", agent=ANN, direction=1),  # outbound
    cdr(
        "r9",
        800,
        app=APP_B,
        queued=805,
        ring=807,
        accept=810,
        end=900,
        status="ok",
        hung_up="user",
        group=SALES,
        agent=BOB,
        keys=("1",),
    ),  # queue 5 s, the other site's app
    cdr("r10", 5400, ring=5405, accept=5410, end=5500, status="ok", hung_up="user", agent=ANN),  # no queue
]


def figures(**given: Any) -> dict[str, Any]:
    """A figure set: zeros and nulls unless given; the two rates worked out from the counts given."""
    base: dict[str, Any] = {
        "offered": 0,
        "answered": 0,
        "answer_rate": None,
        "abandoned": 0,
        "abandon_rate": None,
        "abandoned_ivr": 0,
        "abandoned_queue": 0,
        "abandoned_ringing": 0,
        "no_agent": 0,
        "after_hours": 0,
        "queued": 0,
        "service_level": None,
        "asa_s": None,
        "queue_s": {"mean": None, "p50": None, "p90": None, "max": None},
        "transferred": 0,
        "hung_up_by": {"user": 0, "seat": 0, "system": 0},
        "satisfaction": {},
    }
    found = base | given
    if found["offered"]:
        found["answer_rate"] = round(found["answered"] / found["offered"], 6)
        found["abandon_rate"] = round(found["abandoned"] / found["offered"], 6)
    return found


TOTALS = figures(
    offered=9,
    answered=4,
    answer_rate=0.444444,
    abandoned=3,
    abandon_rate=0.333333,
    abandoned_ivr=1,
    abandoned_queue=1,
    abandoned_ringing=1,
    no_agent=1,
    after_hours=1,
    queued=6,
    service_level=0.333333,
    asa_s=20.0,
    queue_s={"mean": 23.5, "p50": 15.0, "p90": 60.0, "max": 60.0},
    transferred=1,
    hung_up_by={"user": 6, "seat": 1, "system": 2},
    satisfaction={"1": 2, "2": 1},
)
FIRST_HOUR = figures(
    offered=4,
    answered=3,
    answer_rate=0.75,
    abandoned=1,
    abandon_rate=0.25,
    abandoned_ivr=1,
    queued=3,
    service_level=0.666667,
    asa_s=20.0,
    queue_s={"mean": 20.0, "p50": 15.0, "p90": 40.0, "max": 40.0},
    transferred=1,
    hung_up_by={"user": 3, "seat": 1, "system": 0},
    satisfaction={"1": 2, "2": 1},
)
SECOND_HOUR = figures(
    offered=5,
    answered=1,
    answer_rate=0.2,
    abandoned=2,
    abandon_rate=0.4,
    abandoned_queue=1,
    abandoned_ringing=1,
    no_agent=1,
    after_hours=1,
    queued=3,
    service_level=0.0,
    queue_s={"mean": 27.0, "p50": 20.0, "p90": 60.0, "max": 60.0},
    hung_up_by={"user": 3, "seat": 0, "system": 2},
)
BY_GROUP = [
    {
        "skill_group_id": 7,
        "skill_group_name": "Sales",
        **figures(
            offered=3,
            answered=3,
            answer_rate=1.0,
            queued=3,
            service_level=0.666667,
            asa_s=20.0,
            queue_s={"mean": 20.0, "p50": 15.0, "p90": 40.0, "max": 40.0},
            transferred=1,
            hung_up_by={"user": 2, "seat": 1, "system": 0},
            satisfaction={"1": 2, "2": 1},
        ),
    },
    {
        "skill_group_id": 8,
        "skill_group_name": "Support",
        **figures(
            offered=3,
            abandoned=2,
            answer_rate=0.0,
            abandon_rate=0.666667,
            abandoned_queue=1,
            abandoned_ringing=1,
            no_agent=1,
            queued=3,
            service_level=0.0,
            queue_s={"mean": 27.0, "p50": 20.0, "p90": 60.0, "max": 60.0},
            hung_up_by={"user": 2, "seat": 0, "system": 1},
        ),
    },
    {
        "skill_group_id": None,
        "skill_group_name": None,
        **figures(
            offered=3,
            answered=1,
            answer_rate=0.333333,
            abandoned=1,
            abandon_rate=0.333333,
            abandoned_ivr=1,
            after_hours=1,
            hung_up_by={"user": 2, "seat": 0, "system": 1},
        ),
    },
]


def store(engine: Engine, body: dict[str, Any], *, pulled: bool = False) -> None:
    """Store a push (or a record pulled from DescribeTelCdr, which outranks pushes in the merge) as the
    receiver does and project its session, which marks its rollup hours."""
    app = int(body["SdkAppId"])
    text = orjson.dumps(body).decode()
    source: Literal["push", "pull"] = "pull" if pulled else "push"
    action = PULL_TEL_CDR if pulled else "cdr"
    session_id, problem = session_of(app, source, action, text)
    assert problem is None
    row: RawRecordRow = {
        "sdk_app_id": app,
        "source": source,
        "action": action,
        "version": None if pulled else "1",
        "push_uuid": None if pulled else str(uuid.uuid4()),
        "received_at": now_ms(),
        "body": text,
        "session_id": session_id,
        "problem": problem,
    }
    with engine.begin() as conn:
        assert store_record(conn, row) and session_id is not None
        project_call_sessions(conn, [(app, session_id)], RULES)


@pytest.fixture
def records(engine: Engine, site: Site) -> None:
    add_site(engine, "other", ["https://other.example.com"])
    add_app(engine, APP_A, "none", ["crm"])
    add_app(engine, APP_B, "none", ["other"])
    for body in RECORDS:
        store(engine, body)


@pytest.fixture
async def reader(settings: Settings, engine: Engine, site: Site) -> AsyncIterator[httpx.AsyncClient]:
    key = create_key(engine, "read", "tests").plaintext
    async with running_app(settings) as client:
        client.headers["authorization"] = f"Bearer {key}"
        yield client


async def report(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/analytics/calls", params={**WINDOW, **params})
    assert response.status_code == 200, response.text
    msgspec.json.decode(response.content, type=CallsReport)  # the declared shape, nothing more or less
    answer: dict[str, Any] = response.json()
    return answer


async def test_every_figure_by_hand(records: None, reader: httpx.AsyncClient) -> None:
    answer = await report(reader)
    assert answer["totals"] == TOTALS
    assert answer["buckets"] == [
        {"start": "2025-11-24T00:00:00+00:00", **FIRST_HOUR},
        {"start": "2025-11-24T01:00:00+00:00", **SECOND_HOUR},
    ]
    assert answer["by_skill_group"] == BY_GROUP
    assert (answer["interval"], answer["tz"], answer["service_level_s"]) == ("hour", "UTC", 20)
    assert (answer["from"], answer["to"]) == ("2025-11-24T00:00:00Z", "2025-11-24T02:00:00Z")
    # A day in Shanghai holds the whole range; the figures are the totals.
    day = await report(reader, interval="day", tz="Asia/Shanghai")
    assert day["buckets"] == [{"start": "2025-11-24T00:00:00+08:00", **TOTALS}]
    # A threshold of 40 s takes r2 in: 3 of 6 queued calls.
    assert (await report(reader, service_level_s=40))["totals"]["service_level"] == 0.5
    assert (await report(reader, service_level_s=0))["totals"]["service_level"] == 0.0


async def test_buckets_in_a_zone_half_an_hour_off_utc(records: None, reader: httpx.AsyncClient) -> None:
    # Kolkata is UTC+05:30: the range is 05:30-07:30 there, so three local hours, cut at UTC half hours.
    answer = await report(reader, tz="Asia/Kolkata")
    assert [b["start"] for b in answer["buckets"]] == [
        "2025-11-24T05:00:00+05:30",
        "2025-11-24T06:00:00+05:30",
        "2025-11-24T07:00:00+05:30",
    ]
    first, second, third = answer["buckets"]
    assert first == {
        "start": first["start"],
        **figures(
            offered=3,
            answered=3,
            answer_rate=1.0,
            queued=3,
            service_level=0.666667,
            asa_s=20.0,
            queue_s={"mean": 20.0, "p50": 15.0, "p90": 40.0, "max": 40.0},
            transferred=1,
            hung_up_by={"user": 2, "seat": 1, "system": 0},
            satisfaction={"1": 2, "2": 1},
        ),
    }
    assert second == {
        "start": second["start"],
        **figures(
            offered=5,
            abandoned=3,
            answer_rate=0.0,
            abandon_rate=0.6,
            abandoned_ivr=1,
            abandoned_queue=1,
            abandoned_ringing=1,
            no_agent=1,
            after_hours=1,
            queued=3,
            service_level=0.0,
            queue_s={"mean": 27.0, "p50": 20.0, "p90": 60.0, "max": 60.0},
            hung_up_by={"user": 3, "seat": 0, "system": 2},
        ),
    }
    assert third == {
        "start": third["start"],
        **figures(offered=1, answered=1, answer_rate=1.0, hung_up_by={"user": 1, "seat": 0, "system": 0}),
    }
    assert answer["totals"] == TOTALS
    assert answer["by_skill_group"] == BY_GROUP


async def test_filters(records: None, engine: Engine, reader: httpx.AsyncClient) -> None:
    # The site's apps only: r9 is the other site's app's.
    crm = (await report(reader, site="crm"))["totals"]
    assert (crm["offered"], crm["answered"], crm["queued"], crm["satisfaction"]) == (
        8,
        3,
        5,
        {"1": 1, "2": 1},
    )
    other = await report(reader, site="other")
    assert other["totals"]["offered"] == 1
    assert [g["skill_group_id"] for g in other["by_skill_group"]] == [7]
    # The record's agent (the last one: r2 was transferred from ann to bob).
    ann = (await report(reader, agent=ANN))["totals"]
    assert (ann["offered"], ann["answered"], ann["transferred"]) == (2, 2, 0)
    bob = await report(reader, agent=BOB, site="crm")
    assert (bob["totals"]["offered"], bob["totals"]["transferred"]) == (1, 1)
    support = await report(reader, skill_group=8)
    assert support["by_skill_group"] == [BY_GROUP[1]]
    assert {k: v for k, v in BY_GROUP[1].items() if not k.startswith("skill_group")} == support["totals"]
    assert (await report(reader, channel="phone"))["totals"] == TOTALS
    assert (await report(reader, channel="video"))["totals"] == figures()
    # An inbound video call (written straight into the table, as its projection would).
    video = CallRecord(
        sdk_app_id=APP_A,
        session_id="v1",
        channel="video",
        direction="inbound",
        start_ms=(S + 300) * 1000,
        accept_ms=(S + 305) * 1000,
        end_ms=(S + 400) * 1000,
        end_status="ok",
        hung_up_by="seat",
        satisfaction=(SatisfactionKey("5", "great"),),
    )
    with engine.begin() as conn:
        conn.execute(insert(call_records), [record_row(video, 1, now_ms())])
        call_rollups.mark(conn, call_rollups.marks_for([(APP_A, video.start_ms)]))
    assert (await report(reader, channel="video"))["totals"] == figures(
        offered=1,
        answered=1,
        answer_rate=1.0,
        hung_up_by={"user": 0, "seat": 1, "system": 0},
        satisfaction={"5": 1},
    )
    assert (await report(reader, channel="phone"))["totals"] == TOTALS
    assert (await report(reader))["totals"]["offered"] == 10
    # Nothing of another agent, group or site.
    assert (await report(reader, agent="nobody@x.com"))["totals"] == figures()
    assert (await report(reader, skill_group=99))["by_skill_group"] == []


async def test_a_site_without_apps_has_no_calls(
    records: None, engine: Engine, reader: httpx.AsyncClient
) -> None:
    add_site(engine, "empty", ["https://empty.example.com"])
    answer = await report(reader, site="empty")
    assert answer["totals"] == figures()
    assert [b["start"] for b in answer["buckets"]] == [
        "2025-11-24T00:00:00+00:00",
        "2025-11-24T01:00:00+00:00",
    ]
    assert answer["by_skill_group"] == []


async def test_bad_parameters_are_400_in_the_error_shape(reader: httpx.AsyncClient) -> None:
    response = await reader.get(
        "/v1/analytics/calls",
        params={
            "interval": "year",
            "tz": "Mars/Olympus",
            "channel": "fax",
            "skill_group": "sales",
            "service_level_s": "601",
            "agent": "",
        },
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert [d["field"] for d in error["details"]] == [
        "interval",
        "tz",
        "channel",
        "agent",
        "skill_group",
        "service_level_s",
    ]
    for params in (
        {"from": "2025-11-24T02:00:00Z", "to": "2025-11-24T00:00:00Z"},
        {"site": "nowhere"},
        {"interval": "15m", "from": "2000-01-01T00:00:00Z", "to": "2001-01-01T00:00:00Z"},
        {"skill_group": "-1"},
    ):
        response = await reader.get("/v1/analytics/calls", params=params)
        assert response.status_code == 400, params
        assert set(response.json()) == {"error"} and response.json()["error"]["code"] == "invalid_parameter"
    assert (await reader.get("/v1/analytics/calls", headers={"authorization": ""})).status_code == 401


async def test_records_changed_or_rebuilt_change_the_report(
    records: None, settings: Settings, engine: Engine, reader: httpx.AsyncClient
) -> None:
    assert (await report(reader))["totals"] == TOTALS  # the rollups are built now
    with engine.connect() as conn:
        marks = conn.execute(select(call_rollup_marks)).all()
    assert marks and all(m.gen == m.built_gen for m in marks if m.span == "hour")  # no whole day here
    # r4 again: answered after all, 30 s in the queue; and r3 moved into the second hour.
    store(
        engine,
        cdr(
            "r4",
            4000,
            queued=4010,
            ring=4030,
            accept=4040,
            end=4100,
            status="ok",
            hung_up="seat",
            group=SUPPORT,
            agent=ANN,
        ),
        pulled=True,
    )
    store(engine, cdr("r3", 3700, end=3730, status="ivrGiveUp", hung_up="user"), pulled=True)
    answer = await report(reader)
    first, second = answer["buckets"]
    assert (first["offered"], first["abandoned_ivr"], second["offered"], second["abandoned_ivr"]) == (
        3,
        0,
        6,
        1,
    )
    assert (second["answered"], second["abandoned_queue"], second["asa_s"]) == (2, 0, 30.0)
    assert answer["totals"]["service_level"] == 0.333333 and answer["totals"]["asa_s"] == 22.5
    before = answer
    rebuild_all(settings)
    assert await report(reader) == before


def scope(start_s: int, end_s: int, **filters: Any) -> CallsFilter:
    return CallsFilter((S + start_s) * 1000, (S + end_s) * 1000, **filters)


def both_ways(engine: Engine, window: CallsFilter, interval: Any, zone: str, level: int = 20) -> None:
    report_buckets = buckets(window.start_ms, window.end_ms, interval, ZoneInfo(zone))
    raw = calls(engine, window, report_buckets, level, use_rollups=False)
    assert calls(engine, window, report_buckets, level) == raw, (window, interval, zone)


def generated(count: int, seed: int) -> list[dict[str, Any]]:
    """Call records of every kind over two days, as rows of call_records."""
    rng = random.Random(seed)
    statuses = [
        "ok",
        "ok",
        "ok",
        "ivrGiveUp",
        "waitingGiveUp",
        "ringingGiveUp",
        "noSeatOnline",
        "notWorkTime",
        "seatGiveUp",
        "error",
    ]
    rows = []
    for i in range(count):
        start = S + rng.randrange(2 * 86_400)
        status = rng.choice(statuses)
        queued = start + rng.randrange(30) if status not in ("ivrGiveUp", "notWorkTime") else None
        answered = status == "ok" and rng.random() < 0.9
        accept = (queued or start) + rng.choice([3, 12, 20, 21, 45, 200, 700, 4000]) if answered else None
        group = rng.choice([None, (7, "Sales"), (8, "Support"), (9, None)]) if queued else None
        record = CallRecord(
            sdk_app_id=rng.choice([APP_A, APP_B]),
            session_id=f"g{i}",
            channel=rng.choice(["phone", "video"]),
            direction=rng.choice(["inbound", "inbound", "inbound", "outbound", None]),
            agent_email=rng.choice([ANN, BOB, None]),
            start_ms=start * 1000,
            queued_ms=None if queued is None else queued * 1000,
            accept_ms=None if accept is None else accept * 1000,
            end_ms=((accept or queued or start) + rng.randrange(1, 300)) * 1000,
            end_status=status,
            hung_up_by=rng.choice(["user", "seat", "system", None]),
            queued_skill_group_id=group[0] if group else None,
            queued_skill_group_name=group[1] if group else None,
            transfers=rng.choice([0, 0, 0, 1, 2]),
            satisfaction=tuple(
                SatisfactionKey(k) for k in rng.sample(["1", "2", "3", "noInput"], rng.randrange(3))
            ),
        )
        rows.append(record_row(with_derived_fields(record), 1, now_ms()))
    return rows


def test_rollups_give_what_the_records_give(engine: Engine, site: Site) -> None:
    add_app(engine, APP_A, "none", ["crm"])
    rows = generated(1500, seed=11)
    with engine.begin() as conn:
        conn.execute(insert(call_records), rows)
        assert call_rollups.mark_history(conn) > 40
    apps = (APP_A,)
    for window, interval, zone in [
        (scope(0, 2 * 86_400), "hour", "UTC"),
        (scope(0, 2 * 86_400), "day", "Asia/Shanghai"),
        (scope(123, 2 * 86_400 - 77), "hour", "Asia/Kolkata"),  # ragged edges, quarters
        (scope(3600, 90_000), "15m", "Asia/Kathmandu"),  # UTC+05:45
        (scope(1000, 170_000), "30m", "America/St_Johns"),  # UTC-03:30
        (scope(0, 2 * 86_400, apps=apps), "hour", "UTC"),
        (scope(0, 2 * 86_400, channel="video"), "day", "UTC"),
        (scope(0, 2 * 86_400, skill_group=8), "hour", "Europe/Berlin"),
        (scope(0, 2 * 86_400, apps=apps, channel="phone", skill_group=7), "week", "UTC"),
        (scope(0, 2 * 86_400, agent=ANN), "hour", "UTC"),
        (scope(0, 2 * 86_400, apps=()), "hour", "UTC"),
    ]:
        both_ways(engine, window, interval, zone)
    both_ways(engine, scope(0, 2 * 86_400), "hour", "UTC", level=45)
    # The figures are not all empty: the comparison compared something.
    whole = scope(0, 2 * 86_400)
    days = buckets(whole.start_ms, whole.end_ms, "day", ZoneInfo("UTC"))
    _, totals, groups = calls(engine, whole, days, 20)
    assert totals["offered"] > 500 and totals["queue_s"]["p90"] is not None and len(groups) == 4
    assert set(totals["satisfaction"]) == {"1", "2", "3", "noInput"}


async def test_chats_count_as_inbound_contacts(engine: Engine, site: Site, reader: httpx.AsyncClient) -> None:
    # An imcdr push carries no Direction: a chat is a customer's contact, in the report with its channel.
    add_app(engine, APP_A, "none", ["crm"])
    window_start = int(parse_iso(WINDOW["from"]) // 1000)
    chat = {
        "SdkAppId": APP_A,
        "SessionId": "chat-1",
        "UserId": "wx-user-7",
        "StartTimestamp": window_start + 3600,
        "QueuedTimestamp": window_start + 3602,
        "AcceptTimestamp": window_start + 3610,
        "EndedTimestamp": window_start + 3900,
        "EndStatusString": "ok",
        "SeatUser": {"Mail": ANN},
    }
    text = orjson.dumps(chat).decode()
    session_id, problem = session_of(APP_A, "push", "imcdr", text)
    row: RawRecordRow = {
        "sdk_app_id": APP_A,
        "source": "push",
        "action": "imcdr",
        "version": "1",
        "push_uuid": "chat-push",
        "received_at": now_ms(),
        "body": text,
        "session_id": session_id,
        "problem": problem,
    }
    with engine.begin() as conn:
        store_record(conn, row)
        project_call_sessions(conn, [(APP_A, "chat-1")], RULES)
    chats = (await report(reader, channel="chat"))["totals"]
    assert (chats["offered"], chats["answered"], chats["asa_s"]) == (1, 1, 8.0)
    assert (await report(reader, channel="phone"))["totals"]["offered"] == 0


def test_all_apps_rows_follow_each_apps_changes(engine: Engine, site: Site) -> None:
    # A report without a site reads the rows of all apps together (ALL_APPS): built from the apps' rows
    # after rebuilding the apps' dirty hours, and dirty again whenever any app's records change.
    rows = generated(1200, seed=5)
    first, later = rows[:800], rows[800:]
    with engine.begin() as conn:
        conn.execute(insert(call_records), first)
        call_rollups.mark_history(conn)
    whole, only_a = scope(0, 2 * 86_400), scope(0, 2 * 86_400, apps=(APP_A,))
    both_ways(engine, only_a, "hour", "UTC")  # builds APP_A's hours and days, not all apps'
    both_ways(engine, whole, "hour", "UTC")  # builds all apps' (and APP_B's hours on the way)
    with engine.begin() as conn:
        conn.execute(insert(call_records), later)
        call_rollups.mark(conn, call_rollups.marks_for([(r["sdk_app_id"], r["start_at"]) for r in later]))
    for window, interval in [
        (whole, "hour"),
        (only_a, "day"),
        (whole, "day"),
        (scope(0, 2 * 86_400, apps=(APP_B,)), "hour"),
    ]:
        both_ways(engine, window, interval, "Asia/Shanghai")
    with engine.connect() as conn:
        marks = conn.execute(select(call_rollup_marks)).all()
    assert {m.sdk_app_id for m in marks} == {0, APP_A, APP_B}
    assert all(m.gen == m.built_gen for m in marks if m.sdk_app_id == 0)
