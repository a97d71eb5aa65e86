"""The projection after the commit: the queue, its batches, failures, rebuilds, and what readers wait for."""

from __future__ import annotations

import uuid

import anyio
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select

from service.admin.registry import Site, create_key
from service.config import Settings
from service.projection.queue import drain, wait_until_projected
from service.storage.engine import SyncTransactor, make_engine
from service.storage.events import EventRow
from service.storage.schema import events, projection_queue, sessions
from tests import databases
from tests.batches import batch, body, hash_event
from tests.conftest import ORIGIN, running_app
from tests.projection_helpers import (
    T0,
    TIMEOUTS,
    derived,
    hash_row,
    ingest,
    message_row,
    queued_count,
    rebuild_all,
    reset,
    store_unprojected,
)

AGENT = "agentEmail=ann%40x.com&sdkAppId=1400"


def call(site_id: int, page: str, customer: str, at: int, first_seq: int = 1) -> list[EventRow]:
    def status(seq: int, offset: int, value: int) -> EventRow:
        hash_value = f"#?mobile={customer}&status={value}&type=phone&{AGENT}"
        return hash_row(site_id, page, first_seq + seq, at + offset, hash_value)

    card = message_row(site_id, page, first_seq + 2, at + 6_000, "sendCard", {"header": "h"})
    return [status(0, 0, 100), status(1, 5_000, 200), card, status(3, 60_000, 400)]


def failed_projections() -> float:
    return REGISTRY.get_sample_value("calltrail_projection_events_total", {"result": "failed"}) or 0.0


def test_an_event_that_cannot_be_projected_is_set_aside(
    settings: Settings, engine: Engine, site: Site
) -> None:
    good = call(site.id, "page-1", "1", T0)
    broken = hash_row(site.id, "page-2", 1, T0, f"#?mobile=2&status=100&type=phone&{AGENT}")
    broken["raw"] = "this is not JSON"  # a stored event the projection cannot read
    store_unprojected(settings, [*good, broken])
    failed_before = failed_projections()

    transactor = SyncTransactor(make_engine(settings, "write"))
    try:
        assert drain(transactor, TIMEOUTS) == len(good) + 1
    finally:
        transactor.dispose()

    assert failed_projections() == failed_before + 1
    with engine.connect() as conn:
        assert queued_count(conn) == 0
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == len(good) + 1
        (session,) = conn.execute(select(sessions)).mappings()
    assert session["outcome"] == "answered"
    assert session["cards_sent"] == 1


def test_rebuild_takes_the_queue_along(settings: Settings, engine: Engine, site: Site) -> None:
    rows = call(site.id, "page-1", "1", T0) + call(site.id, "page-1", "2", T0 + 120_000, first_seq=5)
    store_unprojected(settings, rows)
    with engine.connect() as conn:
        assert queued_count(conn) == len(rows)
    rebuild_all(settings)
    rebuilt = derived(engine)
    with engine.connect() as conn:
        assert queued_count(conn) == 0
    assert len(rebuilt["sessions"]) == 2

    reset(engine)
    ingest(settings, [rows[:3], rows[3:]])
    assert derived(engine) == rebuilt


@pytest.mark.anyio
async def test_every_query_sees_what_was_acknowledged_before_it(
    settings: Settings, engine: Engine, site: Site
) -> None:
    # The writer projects only after it has answered the commit's requests (at once under light load), so a
    # query sent right after each answer would read stale records if it did not wait for the projection.
    key = create_key(engine, "read", "tests").plaintext
    headers = {"origin": ORIGIN, "content-type": "text/plain"}
    async with running_app(settings) as api:
        for n in range(1, 6):
            customer = f"1380000000{n}"
            event = hash_event(1, f"#?mobile={customer}&status=100&type=phone&{AGENT}", ts=T0 + n * 1000)
            page = str(uuid.uuid4())
            document = batch(site.site_key, [event], sent_at=T0 + n * 1000, page_id=page)
            answer = await api.post("/v1/events", content=body(document), headers=headers)
            assert answer.json()["results"][0]["status"] == "accepted"
            # Event times are corrected by the batch's clock skew: these calls happen now.
            listed = await api.get("/v1/sessions", headers={"authorization": f"Bearer {key}"})
            assert listed.status_code == 200
            assert "calltrail-unprojected-events" not in listed.headers
            assert len(listed.json()["sessions"]) == n


@pytest.mark.anyio
async def test_a_query_that_cannot_wait_says_what_it_misses(
    settings: Settings, engine: Engine, site: Site
) -> None:
    key = create_key(engine, "read", "tests").plaintext
    rows = call(site.id, "page-1", "1", T0)
    store_unprojected(settings, rows)
    impatient = settings.replace(read_wait_ms=0)
    # Readers go on; the projection cannot write sessions (nor anything, on SQLite).
    with databases.table_locked(settings.database_url, engine, "sessions"):
        async with running_app(impatient) as api:
            answer = await api.get(
                "/v1/sessions",
                params={"from": "2025-11-01T00:00:00Z", "to": "2025-12-31T00:00:00Z"},
                headers={"authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 200
            assert answer.headers["calltrail-unprojected-events"] == str(len(rows))
            assert answer.json()["sessions"] == []
    assert wait_until_projected(engine, timeout_s=0) == len(rows)  # the app stopped: still queued
    transactor = SyncTransactor(make_engine(settings, "write"))
    try:
        drain(transactor, TIMEOUTS)
    finally:
        transactor.dispose()
    assert wait_until_projected(engine, timeout_s=0) == 0


def exposed(text: str, sample: str) -> float | None:
    """One sample's value in Prometheus text (``name`` or ``name{labels}``), None when it is missing."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return None


@pytest.mark.anyio
async def test_projection_backlog_and_lag_are_metrics(settings: Settings, site: Site) -> None:
    projected = 'calltrail_projection_events_total{result="projected"}'
    batches = "calltrail_projection_batch_seconds_count"
    async with running_app(settings) as api:
        # Other tests in this process counted before: only an increase is this test's doing.
        before = (await api.get("/metrics")).text
        document = batch(site.site_key, [hash_event(1, f"#?mobile=1&status=100&type=phone&{AGENT}")])
        answer = await api.post(
            "/v1/events", content=body(document), headers={"origin": ORIGIN, "content-type": "text/plain"}
        )
        assert answer.status_code == 200
        after = before
        for _ in range(200):
            after = (await api.get("/metrics")).text
            grown = (exposed(after, projected) or 0) > (exposed(before, projected) or 0)
            if grown and exposed(after, "calltrail_projection_backlog_events") == 0:
                break
            await anyio.sleep(0.05)
    assert (exposed(after, projected) or 0) >= (exposed(before, projected) or 0) + 1
    assert (exposed(after, batches) or 0) >= (exposed(before, batches) or 0) + 1
    assert exposed(after, "calltrail_projection_backlog_events") == 0
    assert exposed(after, "calltrail_projection_lag_seconds") == 0


def test_nothing_is_queued_twice(settings: Settings, engine: Engine, site: Site) -> None:
    rows = call(site.id, "page-1", "1", T0)
    store_unprojected(settings, rows)
    store_unprojected(settings, rows)  # a client retrying everything
    with engine.connect() as conn:
        assert queued_count(conn) == len(rows)
        assert set(conn.execute(select(projection_queue.c.id)).scalars()) == set(
            conn.execute(select(events.c.id)).scalars()
        )


def test_an_event_gone_before_its_projection_is_dropped_from_the_queue(
    settings: Settings, engine: Engine, site: Site
) -> None:
    store_unprojected(settings, call(site.id, "page-1", "1", T0))
    with engine.begin() as conn:
        conn.execute(events.delete())
    transactor = SyncTransactor(make_engine(settings, "write"))
    try:
        assert drain(transactor, TIMEOUTS) == 4
    finally:
        transactor.dispose()
    with engine.connect() as conn:
        assert queued_count(conn) == 0
        assert conn.execute(select(func.count()).select_from(sessions)).scalar_one() == 0
