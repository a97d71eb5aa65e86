"""PostgreSQL's group commit on the serving event loop, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select

from service import telemetry
from service.admin.registry import Site
from service.config import Settings
from service.ingest.idle import LIGHT_LOAD_IDLE_BATCH
from service.ingest.loop_writer import LoopEventWriter, ProjectionThread
from service.projection.queue import QueuedProjection
from service.runtime import session_timeouts
from service.storage.engine import asyncpg_dsn, make_transactor
from service.storage.events import EventKey, count_events, insert_new
from service.storage.failures import Overloaded, StorageUnavailable, WriterClosed
from service.storage.schema import projection_queue
from tests.ingest.test_writer import endless_idle_work, row

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

T = TypeVar("T")


def loop_writer(
    settings: Settings,
    *,
    connections: int = 1,
    max_batch: int = 1000,
    queue_limit: int = 100_000,
    projection: ProjectionThread | None = None,
) -> LoopEventWriter:
    return LoopEventWriter(
        asyncpg_dsn(settings.database_url),
        connections=connections,
        max_batch=max_batch,
        queue_limit=queue_limit,
        projection=projection,
    )


def with_writer(writer: LoopEventWriter, scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` on a fresh loop with the writer started on it and closed after."""

    async def run() -> T:
        writer.start()
        try:
            return await scenario()
        finally:
            await writer.close(30)

    return asyncio.run(run())


def commits_so_far() -> float:
    """Group commits this process has made (the commit-latency histogram's count)."""
    (family,) = telemetry.WRITER_COMMIT_SECONDS.collect()
    return sum(sample.value for sample in family.samples if sample.name.endswith("_count"))


def test_concurrent_requests_share_transactions(settings: Settings, engine: Engine, site: Site) -> None:
    writer = loop_writer(settings)
    before = commits_so_far()

    async def scenario() -> list[set[EventKey]]:
        return await asyncio.gather(
            *(writer.write([row(site.id, seq=i) for i in range(5)]) for _ in range(40))
        )

    stored = with_writer(writer, scenario)
    assert [len(keys) for keys in stored] == [5] * 40
    assert commits_so_far() - before < 40 / 4  # groups of many requests, not a commit each
    with engine.connect() as conn:
        assert count_events(conn) == 200
        # Queued for the projection in the same transaction.
        assert conn.execute(select(func.count()).select_from(projection_queue)).scalar_one() == 200


def test_same_event_in_two_grouped_requests_is_claimed_once(
    settings: Settings, engine: Engine, site: Site
) -> None:
    shared = [row(site.id, seq=i) for i in range(3)]
    writer = loop_writer(settings)

    async def scenario() -> tuple[set[EventKey], set[EventKey]]:
        return await asyncio.gather(writer.write(shared), writer.write(shared))

    first, second = with_writer(writer, scenario)
    assert len(first) == 3
    assert second == set()
    with engine.connect() as conn:
        assert count_events(conn) == 3


def test_a_failing_request_does_not_fail_its_group(settings: Settings, engine: Engine, site: Site) -> None:
    bad = row(site.id)
    bad["type"] = None  # type: ignore[typeddict-item]  # violates NOT NULL
    writer = loop_writer(settings)

    async def scenario() -> tuple[set[EventKey] | BaseException, set[EventKey] | BaseException]:
        return await asyncio.gather(
            writer.write([row(site.id), row(site.id)]), writer.write([bad]), return_exceptions=True
        )

    good, failed = with_writer(writer, scenario)
    assert isinstance(good, set) and len(good) == 2
    assert isinstance(failed, Exception) and not isinstance(failed, StorageUnavailable)
    assert "null" in str(failed).lower()
    with engine.connect() as conn:
        assert count_events(conn) == 2


def test_queue_limit_refuses_at_once(settings: Settings, site: Site) -> None:
    writer = loop_writer(settings, queue_limit=10)

    async def scenario() -> tuple[set[EventKey], set[EventKey] | BaseException]:
        queued = asyncio.ensure_future(writer.write([row(site.id) for _ in range(8)]))  # noqa: RUF006 (awaited)
        await asyncio.sleep(0)  # queued; its commit needs round trips to the database
        late = [row(site.id) for _ in range(3)]
        (second,) = await asyncio.gather(writer.write(late), return_exceptions=True)
        return await queued, second

    first, second = with_writer(writer, scenario)
    assert len(first) == 8
    assert isinstance(second, Overloaded)
    assert writer.pending == 0


def test_close_commits_what_was_queued_then_refuses(settings: Settings, engine: Engine, site: Site) -> None:
    writer = loop_writer(settings, connections=2)

    async def scenario() -> tuple[list[set[EventKey]], BaseException | None]:
        writer.start()
        queued = [asyncio.ensure_future(writer.write([row(site.id) for _ in range(4)])) for _ in range(10)]
        await asyncio.sleep(0)
        await writer.close(30)
        refused: BaseException | None = None
        try:
            await writer.write([row(site.id)])
        except WriterClosed as exc:
            refused = exc
        return [await f for f in queued], refused

    stored, refused = asyncio.run(scenario())
    assert [len(keys) for keys in stored] == [4] * 10
    assert isinstance(refused, WriterClosed)
    with engine.connect() as conn:
        assert count_events(conn) == 40


def test_a_cancelled_request_may_still_store_its_rows_once(
    settings: Settings, engine: Engine, site: Site
) -> None:
    first = row(site.id)
    writer = loop_writer(settings)

    async def scenario() -> set[EventKey]:
        abandoned = asyncio.ensure_future(writer.write([first]))
        await asyncio.sleep(0)
        abandoned.cancel()
        await writer.write([row(site.id)])
        return await writer.write([first])  # the client saw no answer and sends the event again

    assert with_writer(writer, scenario) == set()  # stored by the cancelled request: a duplicate
    with engine.connect() as conn:
        assert count_events(conn) == 2


def test_unreachable_postgres_is_storage_unavailable(settings: Settings) -> None:
    # Nothing listens on port 9 (discard) of the loopback interface.
    writer = loop_writer(Settings(database_url="postgresql://root@127.0.0.1:9/none"))

    async def refused() -> None:
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(writer.write([row(1)]), 30)
        assert writer.pending == 0

    with_writer(writer, refused)


def test_a_connection_the_server_closed_is_replaced(settings: Settings, engine: Engine, site: Site) -> None:
    writer = loop_writer(settings)

    async def scenario() -> tuple[BaseException | None, set[EventKey]]:
        await writer.write([row(site.id)])
        with engine.connect() as conn:  # what a restart of PostgreSQL does to the writer's connection
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.commit()
        failure: BaseException | None = None
        try:
            await writer.write([row(site.id)])
        except StorageUnavailable as exc:
            failure = exc
        return failure, await writer.write([row(site.id)])

    failure, after = with_writer(writer, scenario)
    assert isinstance(failure, StorageUnavailable)  # 503: the client sends it again
    assert len(after) == 1  # and the next group connects afresh
    with engine.connect() as conn:
        assert count_events(conn) == 2


def test_idle_work_runs_in_small_batches_between_groups_under_light_load(
    settings: Settings, site: Site
) -> None:
    calls: list[int | None] = []
    projection = ProjectionThread(make_transactor(settings), endless_idle_work(calls, 0.005), share=0.01)
    writer = loop_writer(settings, projection=projection)

    async def scenario() -> None:
        await asyncio.sleep(0.1)
        calls.clear()  # the start counts as idle
        for _ in range(20):  # one request at a time, never 50 ms apart: light load, never idle
            await writer.write([row(site.id)])
            await asyncio.sleep(0.01)

    with_writer(writer, scenario)
    assert calls.count(LIGHT_LOAD_IDLE_BATCH) >= 10


def test_idle_work_gets_its_share_under_heavy_load(settings: Settings, site: Site) -> None:
    calls: list[int | None] = []
    projection = ProjectionThread(make_transactor(settings), endless_idle_work(calls, 0.02), share=0.25)
    writer = loop_writer(settings, projection=projection)
    requests = 0

    async def client(end: float) -> None:
        nonlocal requests
        while time.monotonic() < end:  # never 50 ms without a request: the writer is never idle
            await writer.write([row(site.id)])
            requests += 1

    async def scenario() -> None:
        await asyncio.sleep(0.1)
        calls.clear()
        end = time.monotonic() + 1.0
        # Enough clients that groups hold more requests than light load does (LIGHT_LOAD_GROUP_REQUESTS).
        await asyncio.gather(*(client(end) for _ in range(32)))

    with_writer(writer, scenario)
    full_batches = [most for most in calls if most is None]
    # At a quarter of the time, 20 ms of idle work comes back every 80 ms or so: about 12 times in the second.
    # Starved, it would not run at all; given a turn after every group, hundreds of times.
    assert 2 <= len(full_batches) <= 25 < requests


def queued_for_projection(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(projection_queue)).scalar_one())


def test_the_projection_thread_projects_in_idle_time_and_stops_with_the_writer(
    settings: Settings, engine: Engine, site: Site
) -> None:
    # Stored by another worker (or before this one started): no commit of this writer gives a turn for them.
    with engine.begin() as conn:
        insert_new(conn, [row(site.id, seq=i) for i in range(30)])
    assert queued_for_projection(engine) == 30
    work = QueuedProjection(session_timeouts(settings), 1000)
    writer = loop_writer(settings, projection=ProjectionThread(make_transactor(settings), work, share=0.02))

    async def scenario() -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and queued_for_projection(engine):
            await asyncio.sleep(0.05)
        return queued_for_projection(engine)

    assert with_writer(writer, scenario) == 0
    assert not any(t.name == "calltrail-projection" and t.is_alive() for t in threading.enumerate())


def test_no_idle_turn_while_requests_wait_behind_long_commits(settings: Settings, site: Site) -> None:
    calls: list[int | None] = []
    projection = ProjectionThread(make_transactor(settings), endless_idle_work(calls, 0.001), share=0.01)
    writer = loop_writer(settings, projection=projection)
    projection.busy = lambda: True  # what requests queued behind a commit look like to the thread

    async def scenario() -> None:
        await asyncio.sleep(0.3)  # no request for 300 ms, but the writer is busy all along

    with_writer(writer, scenario)
    assert calls == []
