"""The group-commit writer against real databases."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.exc import DBAPIError, OperationalError

from service.admin.registry import Site
from service.config import Settings
from service.ingest.idle import LIGHT_LOAD_IDLE_BATCH, LIGHT_LOAD_REQUESTS, IdleWork
from service.ingest.writer import EventWriter
from service.storage.engine import AsyncpgTransactor, Transactor, make_transactor
from service.storage.events import (
    COLUMNS,
    POSTGRES_INSERT,
    SQLITE_INSERT,
    SQLITE_ROWS_PER_STATEMENT,
    EventKey,
    EventRow,
    count_events,
)
from service.storage.failures import Overloaded, StorageUnavailable, WriterClosed, classify_failure
from service.storage.schema import events, projection_queue
from tests import databases


def row(site_id: int, event_id: str | None = None, seq: int = 1) -> EventRow:
    return {
        "site_id": site_id,
        "event_id": event_id or str(uuid.uuid4()),
        "page_id": "6f1c1a52-8f0e-4c43-9a34-0c8f5a3a9d01",
        "page_url": "https://crm.example.com/",
        "seq": seq,
        "type": "hash",
        "client_ts": 1,
        "sent_at": 1,
        "received_at": 1,
        "event_at": 1,
        "skew_ms": 0,
        "ts_flag": None,
        "raw": "{}",
    }


@pytest.fixture
def transactor(settings: Settings) -> Transactor:
    # The writer that uses it disposes of it when it closes.
    return make_transactor(settings)


def count_commits(transactor: Transactor) -> list[int]:
    """Transactions as the database runs them: the writer's hot path works on the driver's connection, out of
    SQLAlchemy's sight. On SQLite the connection itself counts each COMMIT, and each insert run outside a
    transaction (a statement that is a transaction of its own)."""
    commits = [0]
    engine = transactor.sync_engine
    if engine.dialect.name == "sqlite":

        class CountingConnection(sqlite3.Connection):
            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
                words = sql.split(None, 3)[:3]
                if words == ["COMMIT"] or (words == ["INSERT", "INTO", "events"] and not self.in_transaction):
                    commits[0] += 1
                return super().execute(sql, *args)

            def commit(self) -> None:
                commits[0] += self.in_transaction
                super().commit()

        @event.listens_for(engine, "do_connect")
        def _on_connect(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            params["factory"] = CountingConnection

    else:
        # The hot path runs one statement per transaction on asyncpg's own connection; the rest goes
        # through SQLAlchemy, whose commits are events.
        assert isinstance(transactor, AsyncpgTransactor)
        fetch_single = transactor.fetch_single

        def counted(statement: str, *args: Any) -> Any:
            commits[0] += 1
            return fetch_single(statement, *args)

        transactor.fetch_single = counted  # type: ignore[method-assign]

        @event.listens_for(engine, "commit")
        def _on_commit(_conn: Connection) -> None:
            commits[0] += 1

    return commits


def test_concurrent_requests_share_transactions(transactor: Transactor, engine: Engine, site: Site) -> None:
    commits = count_commits(transactor)
    writer = EventWriter(transactor, max_batch=10_000, queue_limit=100_000)
    # Queue everything before the thread starts, so the grouping is deterministic.
    futures = [writer.submit([row(site.id, seq=i) for i in range(5)]) for _ in range(40)]
    writer.start()
    results = [f.result(timeout=30) for f in futures]
    writer.close()

    assert all(len(r) == 5 for r in results)
    assert commits[0] == 1
    with engine.connect() as conn:
        assert count_events(conn) == 200


def test_coroutines_are_answered_with_one_wake_up_of_their_loop_per_group(
    transactor: Transactor, engine: Engine, site: Site
) -> None:
    writer = EventWriter(transactor, max_batch=10_000, queue_limit=100_000)

    async def scenario() -> tuple[list[set[EventKey]], int]:
        loop = asyncio.get_running_loop()
        wake_ups = 0
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal wake_ups
            wake_ups += 1
            return call_soon_threadsafe(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
        writes = [asyncio.ensure_future(writer.write([row(site.id) for _ in range(5)])) for _ in range(40)]
        await asyncio.sleep(0)  # every write is queued before the thread starts: one group
        writer.start()
        return await asyncio.gather(*writes), wake_ups

    results, wake_ups = asyncio.run(scenario())
    writer.close()
    assert [len(r) for r in results] == [5] * 40
    assert wake_ups == 1
    with engine.connect() as conn:
        assert count_events(conn) == 200


def test_a_cancelled_coroutine_may_still_store_its_rows_once(
    transactor: Transactor, engine: Engine, site: Site
) -> None:
    writer = EventWriter(transactor, max_batch=10_000, queue_limit=100_000)
    first = row(site.id)

    async def scenario() -> tuple[set[EventKey], set[EventKey]]:
        abandoned = asyncio.ensure_future(writer.write([first]))
        await asyncio.sleep(0)
        abandoned.cancel()
        writer.start()
        later = await writer.write([row(site.id)])
        retried = await writer.write([first])  # the client saw no answer and sends the event again
        return later, retried

    later, retried = asyncio.run(scenario())
    writer.close()
    assert len(later) == 1
    assert retried == set()  # stored by the cancelled request: the retry is a duplicate
    with engine.connect() as conn:
        assert count_events(conn) == 2


def test_a_coroutine_hears_why_its_rows_were_refused(transactor: Transactor, site: Site) -> None:
    writer = EventWriter(transactor, max_batch=10_000, queue_limit=100_000)
    writer.start()
    writer.close()
    with pytest.raises(WriterClosed):
        asyncio.run(writer.write([row(site.id)]))


def test_max_batch_splits_groups(transactor: Transactor, engine: Engine, site: Site) -> None:
    commits = count_commits(transactor)
    writer = EventWriter(transactor, max_batch=10, queue_limit=100_000)
    futures = [writer.submit([row(site.id) for _ in range(5)]) for _ in range(6)]
    writer.start()
    for f in futures:
        f.result(timeout=30)
    writer.close()
    assert commits[0] == 3


def test_same_event_in_two_grouped_requests_is_claimed_once(
    transactor: Transactor, engine: Engine, site: Site
) -> None:
    shared = [row(site.id, str(uuid.uuid4()), seq=i) for i in range(3)]
    writer = EventWriter(transactor, max_batch=10_000, queue_limit=100_000)
    first, second = writer.submit(shared), writer.submit(shared)
    writer.start()
    stored_first, stored_second = first.result(timeout=30), second.result(timeout=30)
    writer.close()
    assert len(stored_first) == 3
    assert stored_second == set()
    with engine.connect() as conn:
        assert count_events(conn) == 3


def test_writers_in_parallel_store_each_event_once(settings: Settings, engine: Engine, site: Site) -> None:
    """Two writers (as two worker processes would have) racing on the same events."""
    rows = [row(site.id, seq=i) for i in range(300)]
    writers = [EventWriter(make_transactor(settings), max_batch=50, queue_limit=100_000) for _ in range(2)]
    for w in writers:
        w.start()
    outcomes: list[set[tuple[int, str]]] = []
    lock = threading.Lock()

    def send(writer: EventWriter) -> None:
        for start in range(0, 300, 25):
            stored = writer.submit(rows[start : start + 25]).result(timeout=60)
            with lock:
                outcomes.append(stored)

    threads = [threading.Thread(target=send, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()

    claimed = [key for stored in outcomes for key in stored]
    assert len(claimed) == 300
    assert len(set(claimed)) == 300
    with engine.connect() as conn:
        assert count_events(conn) == 300


def test_new_events_are_queued_for_the_projection_in_their_transaction(
    transactor: Transactor, engine: Engine, site: Site
) -> None:
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    writer.start()
    first = [row(site.id) for _ in range(3)]
    assert len(writer.submit(first).result(timeout=30)) == 3
    # A repeat stores nothing and queues nothing; only the new event of the second request is queued.
    assert len(writer.submit([first[0], row(site.id)]).result(timeout=30)) == 1
    writer.close()
    with engine.connect() as conn:
        stored = sorted(conn.execute(select(events.c.id)).scalars())
        queued = sorted(conn.execute(select(projection_queue.c.id)).scalars())
    assert len(stored) == 4
    assert queued == stored


def test_repeats_among_many_statements_leave_exactly_the_new_events_stored_and_queued(
    transactor: Transactor, engine: Engine, site: Site
) -> None:
    # More rows than one SQLite statement takes (so several statements in one transaction, the last one
    # padded), with stored events at both ends and in between: the new ones are found from the ids the
    # inserts allotted, which must cover exactly what they added.
    assert SQLITE_ROWS_PER_STATEMENT < 3_400
    stored_before = [row(site.id) for _ in range(400)]
    writer = EventWriter(transactor, max_batch=10_000, queue_limit=10_000)
    writer.start()
    assert len(writer.submit(stored_before).result(timeout=30)) == 400
    new = [row(site.id) for _ in range(3_000)]
    mixed = [stored_before[0], *new[:1_600], *stored_before[1:399], *new[1_600:], stored_before[399]]
    newly_stored = writer.submit(mixed).result(timeout=30)
    again = writer.submit(stored_before[:1]).result(timeout=30)
    writer.close()
    assert newly_stored == {(site.id, r["event_id"]) for r in new}
    assert again == set()
    with engine.connect() as conn:
        assert count_events(conn) == 3_400
        assert sorted(conn.execute(select(projection_queue.c.id)).scalars()) == sorted(
            conn.execute(select(events.c.id)).scalars()
        )


def test_rows_come_back_exactly_as_written(transactor: Transactor, engine: Engine, site: Site) -> None:
    tricky = row(site.id)
    tricky["raw"] = (
        '{"q":"\\"quoted\\" \\\\ back\\u0000slash","u":"号码 ☎ 😀","big":123456789012345678901234567890}'
    )
    tricky["page_url"] = "https://crm.example.com/客户?q=a&b=%20"
    tricky["ts_flag"] = "too_old"
    tricky["seq"] = 2**53 - 1
    tricky["client_ts"] = -1
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    writer.start()
    assert len(writer.submit([tricky, row(site.id)]).result(timeout=30)) == 2
    writer.close()
    with engine.connect() as conn:
        stored = conn.execute(select(events).where(events.c.event_id == tricky["event_id"])).mappings().one()
    assert {name: stored[name] for name in COLUMNS} == tricky


def test_the_insert_statements_name_every_column_in_order() -> None:
    for statement in (SQLITE_INSERT.format(values="(?)"), *POSTGRES_INSERT.values()):
        listed = statement.split("INSERT INTO events (", 1)[1].split(")", 1)[0]
        assert tuple(name.strip() for name in listed.split(",")) == COLUMNS


def test_a_failing_request_does_not_fail_its_group(
    transactor: Transactor, engine: Engine, site: Site
) -> None:
    bad = row(site.id)
    bad["type"] = None  # type: ignore[typeddict-item]  # violates NOT NULL
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    good_future = writer.submit([row(site.id), row(site.id)])
    bad_future = writer.submit([bad])
    writer.start()
    assert len(good_future.result(timeout=30)) == 2
    with pytest.raises(Exception, match=r"(?i)null"):
        bad_future.result(timeout=30)
    writer.close()
    with engine.connect() as conn:
        assert count_events(conn) == 2


def test_queue_limit_refuses_at_once(transactor: Transactor, site: Site) -> None:
    writer = EventWriter(transactor, max_batch=100, queue_limit=10)
    writer.submit([row(site.id) for _ in range(8)])
    with pytest.raises(Overloaded):
        writer.submit([row(site.id) for _ in range(3)])
    writer.start()
    writer.close()
    assert writer.pending == 0


def test_closed_writer_refuses_and_drains(transactor: Transactor, engine: Engine, site: Site) -> None:
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    queued = writer.submit([row(site.id) for _ in range(4)])
    writer.start()
    writer.close()
    assert len(queued.result(timeout=1)) == 4
    with pytest.raises(WriterClosed):
        writer.submit([row(site.id)])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death is the point
def test_a_writer_whose_thread_died_refuses_at_once(transactor: Transactor, site: Site) -> None:
    def fatal(_transactor: Transactor, _most: int | None) -> int:
        raise SystemExit("simulated: the thread ends")  # idle work survives Exceptions, not this

    writer = EventWriter(transactor, max_batch=100, queue_limit=1000, idle_work=fatal)
    writer.start()
    writer._threads[0].join(timeout=10)
    assert not writer._threads[0].is_alive()
    with pytest.raises(StorageUnavailable, match="stopped"):
        writer.submit([row(site.id)])
    writer.close()


def test_unreachable_database_is_storage_unavailable(tmp_path: Path) -> None:
    missing_dir = tmp_path / "does-not-exist" / "x.db"
    transactor = make_transactor(Settings(database_url=f"sqlite:///{missing_dir}"))
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    writer.start()
    with pytest.raises(StorageUnavailable):
        writer.submit([row(1)]).result(timeout=30)
    with pytest.raises(StorageUnavailable):
        asyncio.run(asyncio.wait_for(writer.write([row(1)]), 30))
    writer.close()


def test_unreachable_postgres_is_storage_unavailable(pg_admin: Engine) -> None:
    # Nothing listens on port 9 (discard) of the loopback interface.
    transactor = make_transactor(Settings(database_url="postgresql://root@127.0.0.1:9/none"))
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    writer.start()
    with pytest.raises(StorageUnavailable):
        writer.submit([row(1)]).result(timeout=30)
    writer.close()


def test_a_cancelled_request_does_not_stop_the_writer(
    transactor: Transactor, engine: Engine, site: Site
) -> None:
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    cancelled = writer.submit([row(site.id)])
    kept = writer.submit([row(site.id), row(site.id)])
    assert cancelled.cancel()  # cancelled while still queued: dropped, never written
    writer.start()
    assert len(kept.result(timeout=30)) == 2
    later = writer.submit([row(site.id)])
    assert len(later.result(timeout=30)) == 1
    writer.close()
    assert writer.pending == 0
    with engine.connect() as conn:
        assert count_events(conn) == 3


def test_a_running_request_cannot_be_cancelled(
    settings: Settings, transactor: Transactor, engine: Engine, site: Site
) -> None:
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    writer.start()
    with databases.table_locked(settings.database_url, engine, "events"):
        future = writer.submit([row(site.id)])
        deadline = time.monotonic() + 10
        while not future.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.running()
        assert not future.cancel()  # what an asyncio cancellation of the request would try
    assert len(future.result(timeout=30)) == 1
    assert len(writer.submit([row(site.id)]).result(timeout=30)) == 1
    writer.close()


def test_writers_in_opposite_orders_do_not_deadlock(
    settings: Settings, engine: Engine, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """Two writers racing on the same new keys in opposite orders: without the writer's key order this
    deadlocks on PostgreSQL (and is then retried, which the log would show)."""
    rounds = [[row(site.id, seq=i) for i in range(400)] for _ in range(8)]
    writers = [EventWriter(make_transactor(settings), max_batch=1000, queue_limit=100_000) for _ in range(2)]
    for w in writers:
        w.start()
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def send(writer: EventWriter, reverse: bool) -> None:
        for rows in rounds:
            barrier.wait(timeout=30)
            try:
                writer.submit(rows[::-1] if reverse else rows).result(timeout=60)
            except Exception as exc:
                failures.append(exc)

    threads = [
        threading.Thread(target=send, args=(writers[0], False)),
        threading.Thread(target=send, args=(writers[1], True)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert failures == []
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
    with engine.connect() as conn:
        assert count_events(conn) == 8 * 400


def test_missing_postgres_database_is_unavailable(pg_admin: Engine) -> None:
    transactor = make_transactor(Settings(database_url=databases.pg_url("calltrail_no_such_database")))
    writer = EventWriter(transactor, max_batch=100, queue_limit=1000)
    writer.start()
    with pytest.raises(StorageUnavailable) as info:
        writer.submit([row(1)]).result(timeout=30)
    writer.close()
    assert "parameters" not in str(info.value)


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OperationalError("INSERT", {}, _Orig("40P01")), "retry"),
        (DBAPIError("INSERT", {}, _Orig("40001")), "retry"),
        (DBAPIError("INSERT", {}, _Orig("57P01")), "unavailable"),
        (DBAPIError("INSERT", {}, _Orig("53100")), "unavailable"),
        (DBAPIError("INSERT", {}, _Orig("3D000")), "unavailable"),
        (OperationalError("INSERT", {}, _Orig("")), "unavailable"),
        (ConnectionRefusedError(), "unavailable"),
        (DBAPIError("INSERT", {}, _Orig("23502")), "error"),
        (ValueError("bug"), "error"),
    ],
)
def test_failures_are_classified_by_sqlstate(error: BaseException, kind: str) -> None:
    assert classify_failure(error) == kind


def endless_idle_work(calls: list[int | None], seconds: float) -> IdleWork:
    """Idle work that notes how much it was asked to take, takes ``seconds``, and always has more."""

    def idle_work(_transactor: Transactor, most: int | None) -> int:
        calls.append(most)
        time.sleep(seconds)
        return 1

    return idle_work


def test_idle_work_gets_its_share_under_heavy_load(transactor: Transactor, site: Site) -> None:
    calls: list[int | None] = []
    idle_work = endless_idle_work(calls, 0.02)

    writer = EventWriter(
        transactor, max_batch=1000, queue_limit=100_000, idle_work=idle_work, idle_share=0.25
    )
    writer.start()
    time.sleep(0.1)
    calls.clear()  # the start counts as idle
    requests = 0
    end = time.monotonic() + 1.0

    def client() -> None:
        nonlocal requests
        while time.monotonic() < end:  # never 50 ms without a request: the writer is never idle
            writer.submit([row(site.id)]).result(timeout=30)
            requests += 1

    # Enough clients that groups hold more requests than light load does (LIGHT_LOAD_GROUP_REQUESTS).
    threads = [threading.Thread(target=client) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    full_batches = [most for most in calls if most is None]
    # At a quarter of the time, 20 ms of idle work comes back every 80 ms or so: about 12 times in the second.
    # Starved, it would not run at all; unbounded, after every group.
    assert 2 <= len(full_batches) <= 25 < requests


def test_small_groups_at_a_high_rate_are_no_light_load(transactor: Transactor, site: Site) -> None:
    calls: list[int | None] = []
    idle_work = endless_idle_work(calls, 0.001)

    writer = EventWriter(transactor, max_batch=1000, queue_limit=1000, idle_work=idle_work, idle_share=0.01)
    writer.start()
    time.sleep(0.1)
    requests = 0

    def client() -> None:
        nonlocal requests
        while time.monotonic() < end:
            writer.submit([row(site.id)]).result(timeout=30)
            requests += 1

    # Three clients back to back: groups of one to three requests, often nothing queued behind them, but
    # hundreds of requests a second: the projection must not run after each of those groups.
    threads = [threading.Thread(target=client) for _ in range(3)]
    calls.clear()
    end = time.monotonic() + 0.6
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert requests > 6 * LIGHT_LOAD_REQUESTS  # a rate well above light load's, or this proves nothing
    # Only while the rate is first counted (the first LIGHT_LOAD_REQUESTS requests) may it look light;
    # counted by the rate alone, the projection would run after most of the groups.
    assert calls.count(LIGHT_LOAD_IDLE_BATCH) <= LIGHT_LOAD_REQUESTS


def test_idle_work_runs_in_small_batches_between_groups_under_light_load(
    transactor: Transactor, site: Site
) -> None:
    calls: list[int | None] = []
    idle_work = endless_idle_work(calls, 0.005)

    # A share this small would give 5 ms of idle work once every half second or so.
    writer = EventWriter(transactor, max_batch=1000, queue_limit=1000, idle_work=idle_work, idle_share=0.01)
    writer.start()
    time.sleep(0.1)
    calls.clear()
    for _ in range(20):  # one request at a time, never 50 ms apart: light load, never idle
        writer.submit([row(site.id)]).result(timeout=30)
        time.sleep(0.01)
    writer.close()
    assert calls.count(LIGHT_LOAD_IDLE_BATCH) >= 10
