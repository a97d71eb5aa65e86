"""Call records and legs projected from the raw CCC log, and their join to page sessions, on both databases:
in any order, repeated, rebuilt."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select

from service.admin.registry import Site
from service.ccc.apps import add_app
from service.ccc.raw_log import RawRecordRow, store_record
from service.config import Settings
from service.domain.call_parsing import session_of
from service.domain.instants import now_ms
from service.projection.call_records import project_call_sessions
from service.storage.engine import make_engine
from service.storage.schema import call_legs, call_records, ccc_raw_records, sessions
from tests.batches import batch, hash_event
from tests.ccc.call_records import (
    AGENT,
    RULES,
    S,
    cdr,
    page_call,
    page_hash,
    recording_push,
    store,
    store_raw,
)
from tests.ccc.pushes import APP_A, basic, push
from tests.conftest import ORIGIN, running_app
from tests.projection_helpers import T0, hash_row, ingest, rebuild_all


def record_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(call_records).order_by(call_records.c.session_id)).mappings().all()
    return [{k: v for k, v in row.items() if k != "updated_at"} for row in rows]


def leg_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(call_legs).order_by(call_legs.c.session_id, call_legs.c.leg)
        return [dict(row) for row in conn.execute(query).mappings()]


def page_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(sessions.c.id).order_by(sessions.c.offered_at)).scalars())


def test_a_pushed_cdr_becomes_a_call_record_with_its_legs(engine: Engine) -> None:
    store(engine, "cdr", cdr("s1"))
    (record,) = record_rows(engine)
    assert record["channel"] == "phone" and record["direction"] == "inbound"
    assert record["customer"] == "13012345678"
    assert (record["start_at"], record["queued_at"], record["accept_at"]) == (T0, T0 + 10_000, T0 + 18_000)
    assert (record["ivr_s"], record["queue_s"], record["duration_s"]) == (10, 8, 60)
    assert (record["end_status"], record["hung_up_by"], record["skill_group_id"]) == ("ok", "user", 7)
    assert record["sort_at"] == T0 and record["raw_count"] == 1
    (leg,) = leg_rows(engine)
    assert (leg["agent_email"], leg["join_at"], leg["accept_at"]) == (AGENT, T0 + 15_000, T0 + 18_000)
    assert leg["join_state"] is None  # no page session yet


def test_order_and_repeats_do_not_change_the_record(settings: Settings, engine: Engine) -> None:
    pushes = [("cdr", cdr("s1")), ("record", recording_push("s1")), ("cdr", cdr("s1", EndStatusString="ok"))]
    results = []
    for order in itertools.permutations(pushes):
        with engine.begin() as conn:
            conn.execute(call_legs.delete())
            conn.execute(call_records.delete())
            conn.execute(ccc_raw_records.delete())
        for action, document in order:
            store(engine, action, document)
        results.append((record_rows(engine), leg_rows(engine)))
    first = results[0]
    assert all(result == first for result in results)
    (record,) = first[0]
    assert orjson.loads(record["record_urls"]) == ["https://r/1.mp3"]
    assert first[1][0]["record_url"] == "https://r/1.mp3"  # the leg got its URL from the record push


def test_a_record_push_before_its_cdr_is_a_partial_record_made_whole_later(engine: Engine) -> None:
    store(engine, "record", recording_push("s1"))
    (partial,) = record_rows(engine)
    assert partial["start_at"] is None and partial["sources"] == '["record"]'
    store(engine, "cdr", cdr("s1"))
    (whole,) = record_rows(engine)
    assert whole["start_at"] == T0 and orjson.loads(whole["sources"]) == ["cdr", "record"]


def test_a_record_that_cannot_be_read_is_kept_with_its_problem(engine: Engine) -> None:
    store(engine, "cdr", {"SdkAppId": APP_A, "Caller": "1"})
    store(engine, "somethingNew", {"SdkAppId": APP_A, "SessionId": "x"})
    with engine.connect() as conn:
        rows = conn.execute(select(ccc_raw_records).order_by(ccc_raw_records.c.id)).mappings().all()
    assert [(r["session_id"], r["problem"]) for r in rows] == [(None, "SessionId: missing"), (None, None)]
    assert record_rows(engine) == []


@pytest.mark.parametrize("page_first", [True, False])
def test_a_leg_joins_its_page_session_whichever_arrives_first(
    settings: Settings, engine: Engine, site: Site, page_first: bool
) -> None:
    # The page saw the ring 1.2 s after CCC's RingTimestamp.
    events = page_call(site, T0 + 15_000 + 1_200)
    if page_first:
        ingest(settings, [events])
        store(engine, "cdr", cdr("s1"))
    else:
        store(engine, "cdr", cdr("s1"))
        ingest(settings, [events])
    (page_id,) = page_ids(engine)
    (leg,) = leg_rows(engine)
    assert (leg["page_session_id"], leg["join_state"], leg["join_offset_ms"]) == (page_id, "joined", 1_200)


@pytest.mark.anyio
async def test_a_page_number_in_another_form_joins_under_hmac(settings: Settings, site: Site) -> None:
    # The page's `+86 130 1234 5678` and CCC's `008613012345678` both become the token of `13012345678`:
    # events through the events API, the push through the receiver, each applying the PII mode.
    protected = settings.replace(pii_mode="hmac", pii_key="k" * 32)
    engine = make_engine(protected, "write")
    credentials = add_app(engine, APP_A, "basic")
    assert credentials.app.client_id is not None and credentials.secret is not None
    start_s = now_ms() // 1000 - 300
    ring_ms = (start_s + 15) * 1000 + 900
    async with running_app(protected) as api:
        events = [
            hash_event(1, page_hash(100, "%2B86%20130%201234%205678"), ts=ring_ms),
            hash_event(2, page_hash(200, "%2B86%20130%201234%205678"), ts=ring_ms + 3_000),
        ]
        response = await api.post(
            "/v1/events",
            content=orjson.dumps(batch(site.site_key, events, sent_at=now_ms())),
            headers={"origin": ORIGIN, "content-type": "application/json"},
        )
        assert response.status_code == 200, response.text
        auth = basic(credentials.app.client_id, credentials.secret)
        answer = await push(api, cdr("s1", start_s), auth, push_uuid="p1")
        assert answer.json() == {"ErrCode": 0, "ErrMsg": ""}
    (record,) = record_rows(engine)
    (leg,) = leg_rows(engine)
    assert record["customer"].startswith("h:") and "13012345678" not in str(record)
    assert leg["join_state"] == "joined" and leg["page_session_id"] == page_ids(engine)[0]
    engine.dispose()


def test_a_session_refolded_under_another_id_is_rejoined(
    settings: Settings, engine: Engine, site: Site
) -> None:
    store(engine, "cdr", cdr("s1"))
    ingest(settings, [page_call(site, T0 + 16_000)])
    (leg,) = leg_rows(engine)
    assert leg["join_state"] == "joined"
    rebuild_all(settings)
    (page_id,) = page_ids(engine)
    (rebuilt,) = leg_rows(engine)
    assert rebuilt["page_session_id"] == page_id


def test_rebuild_gives_what_arrival_gave(settings: Settings, engine: Engine, site: Site) -> None:
    for index in range(4):
        start = S + index * 300
        store(engine, "cdr", cdr(f"s{index}", start))
        ingest(settings, [page_call(site, (start + 15) * 1000 + 700)])
    store(engine, "record", recording_push("s2"))
    before = (record_rows(engine), leg_rows(engine))
    assert sum(1 for leg in before[1] if leg["join_state"] == "joined") == 4
    rebuild_all(settings)
    after = (record_rows(engine), leg_rows(engine))
    assert after == before


def test_a_page_session_projected_while_a_push_is_uncommitted_still_joins(
    settings: Settings, engine: Engine, site: Site
) -> None:
    # The push's transaction has written its leg and rejoined (seeing no page session), but not committed;
    # the page session is projected meanwhile. On PostgreSQL the projector must wait for the agent's join
    # lock and then see the leg; on SQLite it waits for the write lock. Either way they end joined.
    add_app(engine, APP_A, "none")
    body = orjson.dumps(cdr("s1")).decode()
    session_id, _ = session_of(APP_A, "push", "cdr", body)
    assert session_id == "s1"
    row: RawRecordRow = {
        "sdk_app_id": APP_A,
        "source": "push",
        "action": "cdr",
        "version": "1",
        "push_uuid": "p-1",
        "received_at": now_ms(),
        "body": body,
        "session_id": session_id,
        "problem": None,
    }
    writer = make_engine(settings, "write")
    try:
        with writer.connect() as conn:
            transaction = conn.begin()
            store_record(conn, row)
            project_call_sessions(conn, [(APP_A, "s1")], RULES)
            page = threading.Thread(target=ingest, args=(settings, [page_call(site, T0 + 16_000)]))
            page.start()
            time.sleep(1.0)  # the projector is now waiting for this transaction
            transaction.commit()
            page.join(timeout=60)
            assert not page.is_alive()
    finally:
        writer.dispose()
    (leg,) = leg_rows(engine)
    assert leg["join_state"] == "joined" and leg["page_session_id"] == page_ids(engine)[0]


def test_a_chat_without_legs_joins_by_its_agent_and_user_id(
    settings: Settings, engine: Engine, site: Site
) -> None:
    chat = {
        "SdkAppId": APP_A,
        "SessionId": "chat-1",
        "UserId": "wx-user-7",
        "StartTimestamp": S,
        "RingTimestamp": S + 4,
        "AcceptTimestamp": S + 6,
        "EndedTimestamp": S + 300,
        "EndStatusString": "ok",
        "SeatUser": {"Mail": AGENT, "UserId": AGENT},
    }
    store(engine, "imcdr", chat)
    page_id = str(uuid.uuid4())
    chat_hash = f"#?userId=wx-user-7&status=100&type=im&agentEmail=ann%40x.com&sdkAppId={APP_A}"
    ingest(settings, [[hash_row(site.id, page_id, 1, (S + 4) * 1000 + 300, chat_hash)]])
    (leg,) = leg_rows(engine)
    assert (leg["channel"], leg["customer"], leg["accept_at"]) == ("chat", "wx-user-7", (S + 6) * 1000)
    assert leg["join_state"] == "joined" and leg["page_session_id"] == page_ids(engine)[0]


def test_a_push_and_a_pull_of_one_call_make_one_record(engine: Engine) -> None:
    store(engine, "cdr", cdr("s1"))
    pulled = {key: value for key, value in cdr("s1", EndStatusString="ok").items() if key != "SdkAppId"}
    body = orjson.dumps(pulled).decode()
    session_id, problem = session_of(APP_A, "pull", "DescribeTelCdr", body)
    assert (session_id, problem) == ("s1", None)
    row: RawRecordRow = {
        "sdk_app_id": APP_A,
        "source": "pull",
        "action": "DescribeTelCdr",
        "version": None,
        "push_uuid": "pull:1",
        "received_at": now_ms(),
        "body": body,
        "session_id": session_id,
        "problem": None,
    }
    with engine.begin() as conn:
        store_record(conn, row)
        project_call_sessions(conn, [(APP_A, "s1")], RULES)
    (record,) = record_rows(engine)
    assert orjson.loads(record["sources"]) == ["DescribeTelCdr", "cdr"] and record["raw_count"] == 2
    assert len(leg_rows(engine)) == 1


def test_concurrent_re_pushes_of_one_agents_calls_neither_deadlock_nor_lose_a_link(
    settings: Settings, engine: Engine, site: Site
) -> None:
    # Re-pushing a session replaces its legs (row locks) and rejoins its agent's neighbours (updates): each
    # push takes the agent's join lock before touching legs, so concurrent pushes wait in line, not in a
    # cycle. Four threads re-push four of one agent's calls 25 s apart, with page sessions to join.
    add_app(engine, APP_A, "none")
    starts = [S + index * 25 for index in range(4)]
    for index, start in enumerate(starts):
        mobile = f"1300000{index:04d}"
        ingest(settings, [page_call(site, (start + 15) * 1000 + 300, mobile)])
    errors: list[BaseException] = []
    writer = make_engine(settings, "write")

    def pushes(index: int) -> None:
        try:
            for round_ in range(6):
                document = cdr(
                    f"c{index}", starts[index], Caller=f"00861300000{index:04d}", Duration=60 + round_
                )
                store_raw(writer, document, push_uuid=f"p-{index}-{round_}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pushes, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    writer.dispose()
    assert errors == []
    assert [leg["join_state"] for leg in leg_rows(engine)] == ["joined"] * 4
