"""The projection on real databases: scenarios through HTTP, order independence, rebuild, concurrency."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from service.admin.registry import Site
from service.config import Settings
from service.ingest.writer import EventWriter
from service.projection.queue import QueuedProjection, wait_until_projected
from service.reports.records import session_records
from service.storage.engine import make_transactor
from service.storage.events import EventRow
from service.storage.schema import actions, sessions
from tests.batches import batch, body, hash_event, message_event
from tests.conftest import ORIGIN
from tests.projection_helpers import (
    T0,
    TIMEOUTS,
    derived,
    drain_all,
    hash_row,
    ingest,
    message_row,
    queued_count,
    rebuild_all,
    reset,
)

AGENT = "agentEmail=ann%40x.com&agentNickName=Ann&sdkAppId=1400"


@pytest.mark.anyio
async def test_a_call_and_a_chat_end_to_end(api: httpx.AsyncClient, site: Site, engine: Engine) -> None:
    headers = {"origin": ORIGIN, "content-type": "text/plain"}
    call = [
        hash_event(1, f"#?mobile=18888888888&status=100&type=phone&{AGENT}", ts=T0, trigger="load"),
        hash_event(2, f"#?mobile=18888888888&status=200&type=phone&{AGENT}", ts=T0 + 6_000),
        message_event(3, "callOut", {"phoneNumber": "15889000000", "desc": "Mr. Liu"}, ts=T0 + 20_000),
        hash_event(4, f"#?mobile=18888888888&status=400&type=phone&{AGENT}", ts=T0 + 66_000),
    ]
    chat = [
        hash_event(1, f"#?userId=o_1&status=100&type=im&{AGENT}", ts=T0 + 100_000),
        hash_event(2, f"#?userId=o_1&status=200&type=im&{AGENT}", ts=T0 + 101_000),
        hash_event(3, f"#?userId=o_2&status=100&type=im&{AGENT}", ts=T0 + 102_000),
        hash_event(4, f"#?userId=o_2&status=200&type=im&{AGENT}", ts=T0 + 104_000),
        message_event(
            5, "sendCard", {"header": "Offer", "desc": "d", "pic": "p", "url": "u"}, ts=T0 + 105_000
        ),
        hash_event(6, f"#?userId=o_1&status=400&type=im&{AGENT}", ts=T0 + 200_000),
    ]
    sent_at = T0 + 300_000
    for events in (call, chat):
        document = batch(site.site_key, events, sent_at=sent_at)
        response = await api.post("/v1/events", content=body(document), headers=headers)
        assert {r["status"] for r in response.json()["results"]} == {"accepted"}

    # Projected after the answers, by the writer's thread, shortly.
    assert wait_until_projected(engine, timeout_s=30) == 0
    with engine.connect() as conn:
        records = list(session_records(conn, timeouts=TIMEOUTS, now_ms=sent_at))
        stored_actions = conn.execute(select(actions).order_by(actions.c.at)).mappings().all()
    assert [(r["channel"], r["customer_user_id"] or r["customer_mobile"]) for r in records] == [
        ("phone", "18888888888"),
        ("im", "o_1"),
        ("im", "o_2"),
    ]
    phone, chat_1, chat_2 = records
    # Times are corrected for the browser's clock (skew), so only their differences are known here.
    offered, connected, ended = (
        datetime.fromisoformat(phone[k]) for k in ("offered_at", "connected_at", "ended_at")
    )
    assert (connected - offered, ended - offered) == (timedelta(seconds=6), timedelta(seconds=66))
    assert phone["offered_at"].endswith("Z")
    assert phone | {"id": None, "offered_at": None, "connected_at": None, "ended_at": None} == {
        "id": None, "site": "crm", "sdk_app_id": "1400", "channel": "phone", "agent_email": "ann@x.com",
        "agent_mobile": None, "agent_nickname": "Ann", "agent_role_id": None, "customer_mobile": "18888888888",
        "customer_user_id": None, "customer_nickname": None, "customer_avatar": None,
        "offered_at": None, "connected_at": None,
        "ended_at": None, "ring_s": 6.0, "talk_s": 60.0, "outcome": "answered",
        "end_source": "explicit", "observed_from": 100, "cards_sent": 0, "call_outs": 1, "event_count": 3,
        "duplicate_count": 0, "call_sdk_app_id": None, "call_session_id": None, "call_leg": None,
        "call_join_offset_ms": None,
    }  # fmt: skip
    assert (chat_1["outcome"], chat_1["talk_s"], chat_1["cards_sent"]) == ("answered", 99.0, 0)
    assert (chat_2["outcome"], chat_2["end_source"], chat_2["cards_sent"]) == ("ongoing", None, 1)

    call_out, card = stored_actions
    assert (call_out["action"], call_out["session_id"], call_out["agent_email"]) == (
        "call_out",
        phone["id"],
        "ann@x.com",
    )
    assert (card["action"], card["session_id"]) == ("send_card", chat_2["id"])


def history_strategy() -> st.SearchStrategy[list[EventRow]]:
    """A few pages (agents) with interleaved voice and chat events, messages, and gaps past the timeouts."""
    step = st.tuples(
        st.integers(0, 2),  # page
        st.sampled_from([1_000, 30_000, 700_000, 5 * 3_600_000, 0]),  # gap before it
        st.one_of(
            st.tuples(
                st.just("hash"),
                st.sampled_from([100, 200, 400, None]),
                st.sampled_from(["c1", "c2", "c3"]),
                st.sampled_from(["phone", "om", "im", "oim"]),
            ),
            st.tuples(st.just("message"), st.sampled_from(["callOut", "sendCard", "sendTextMessage"])),
        ),
    )

    def build(steps: list[Any]) -> list[EventRow]:
        rows: list[EventRow] = []
        seqs = [0, 0, 0]
        at = T0
        for index, (page, gap, what) in enumerate(steps):
            at += gap
            seqs[page] += 1
            page_id = f"00000000-0000-4000-8000-00000000000{page}"
            # Ids from the step, not random: Hypothesis can replay and shrink, and ties sort the same way.
            event_id = f"00000000-0000-4000-9000-{index:012d}"
            agent = f"agentEmail=agent{page % 2}%40x.com"
            if what[0] == "hash":
                _, status, customer, channel = what
                status_part = f"&status={status}" if status else ""
                hash_value = f"#?mobile={customer}{status_part}&type={channel}&{agent}"
                rows.append(hash_row(1, page_id, seqs[page], at, hash_value, event_id))
            else:
                message = {"phoneNumber": "1", "header": "h"}
                rows.append(message_row(1, page_id, seqs[page], at, what[1], message, event_id))
        return rows

    return st.lists(step, min_size=1, max_size=24).map(build)


@hypothesis_settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=history_strategy(), seed=st.integers(0, 2**32 - 1))
def test_order_batching_and_redelivery_do_not_change_the_result(
    history: list[EventRow], seed: int, settings: Settings, engine: Engine, site: Site
) -> None:
    assert site.id == 1
    reset(engine)
    ingest(settings, [history])
    expected = derived(engine)

    rng = random.Random(seed)
    shuffled = rng.sample(history, len(history))
    cuts = sorted(rng.sample(range(1, len(history)), min(3, len(history) - 1))) if len(history) > 1 else []
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(history)], strict=True)]
    redelivered = [rng.sample(history, min(len(history), 3))]  # at-least-once: some events come again
    reset(engine)
    ingest(settings, batches + redelivered + batches[:1])
    assert derived(engine) == expected

    assert rebuild_all(settings, chunk=max(1, len(history) // 3)) == len(history)
    assert derived(engine) == expected

    # In time order, one event at a time: the projection's in-order path (a shorter look back).
    reset(engine)
    ingest(settings, [[row] for row in sorted(history, key=lambda r: (r["event_at"], r["event_id"]))])
    assert derived(engine) == expected


def test_rebuild_reproduces_ingestion(settings: Settings, engine: Engine, site: Site) -> None:
    rows = [
        hash_row(site.id, "p1", 1, T0, f"#?mobile=1&status=100&type=phone&{AGENT}"),
        hash_row(site.id, "p1", 2, T0 + 5_000, f"#?mobile=1&status=200&type=phone&{AGENT}"),
        message_row(site.id, "p1", 3, T0 + 6_000, "sendCard", {"header": "h"}),
        hash_row(site.id, "p1", 4, T0 + 9_000, f"#?mobile=2&status=100&type=phone&{AGENT}"),
    ]
    ingest(settings, [rows[:2], rows[2:]])
    expected = derived(engine)
    assert len(expected["sessions"]) == 2
    assert rebuild_all(settings, chunk=1) == 4
    assert derived(engine) == expected


def test_concurrent_writers_derive_what_one_writer_would(
    settings: Settings, engine: Engine, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """Two writers (two workers) storing interleaved events of the same streams and pages, and projecting
    them from the shared queue at once, in small batches."""
    rng = random.Random(3)
    rows: list[EventRow] = []
    for page in range(4):
        at = T0
        for seq in range(1, 31):
            at += rng.choice([1_000, 20_000])
            customer = rng.choice(["c1", "c2"])
            if seq % 5 == 0:
                rows.append(message_row(site.id, f"page-{page}", seq, at, "sendCard", {"header": "h"}))
            else:
                status = rng.choice([100, 200, 400])
                channel = rng.choice(["im", "phone"])
                hash_value = f"#?mobile={customer}&status={status}&type={channel}&{AGENT}"
                rows.append(hash_row(site.id, f"page-{page}", seq, at, hash_value))
    rng.shuffle(rows)
    writers = [
        EventWriter(
            make_transactor(settings),
            max_batch=50,
            queue_limit=100_000,
            idle_work=QueuedProjection(TIMEOUTS, batch=5),
            idle_share=1.0,
        )
        for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    errors: list[BaseException] = []

    def feed(writer: EventWriter, part: list[EventRow]) -> None:
        for start in range(0, len(part), 7):
            try:
                writer.submit(part[start : start + 7]).result(timeout=60)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=feed, args=(writers[i], rows[i::2])) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
    assert errors == []
    with engine.connect() as conn:
        # The writers projected most of it themselves, concurrently; the rest is projected here.
        assert queued_count(conn) < len(rows) // 2
    drain_all(settings)
    # Every lock is taken before any derived row is written, so no deadlock was detected and retried.
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
    concurrent = derived(engine)
    with engine.connect() as conn:
        assert sum(r.cards_sent for r in conn.execute(select(sessions.c.cards_sent))) == sum(
            1 for r in rows if r["type"] == "message"
        ) - sum(1 for a in concurrent["actions"] if a[5] is None)

    rebuild_all(settings)
    assert derived(engine) == concurrent


def test_same_millisecond_sessions_of_one_customer_resume_like_a_full_fold(
    settings: Settings, engine: Engine, site: Site
) -> None:
    """Two sessions of a customer starting in the same millisecond: the stored rows cannot say which the
    fold remembers, so the projection folds again instead of resuming."""
    phone = f"type=phone&{AGENT}"

    def at(seq: int, ms: int, customer: str, status: int) -> EventRow:
        event_id = f"00000000-0000-4000-8000-{seq:012d}"
        return hash_row(site.id, "p", seq, ms, f"#?mobile={customer}&status={status}&{phone}", event_id)

    first = [at(1, T0, "A", 100), at(2, T0, "B", 100), at(3, T0, "A", 100), at(4, T0 + 10_000, "C", 100)]
    ingest(settings, [first, [at(5, T0 + 20_000, "A", 400)]])
    incremental = derived(engine)
    rebuild_all(settings)
    assert derived(engine) == incremental
