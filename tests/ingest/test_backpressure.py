"""Rate limits (429) and a full database (503): a clear answer with Retry-After, and nothing half-written."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import Engine

from service.admin.registry import Site
from service.config import Settings
from service.ingest.loop_writer import LoopEventWriter
from service.ingest.writer import EventWriter
from service.storage.events import count_events
from service.storage.failures import StorageUnavailable, WriterClosed
from tests.batches import batch, body, hash_event, message_event
from tests.conftest import ORIGIN, running_app
from tests.ingest.test_endpoint import assert_error

pytestmark = pytest.mark.anyio
HEADERS = {"origin": ORIGIN, "content-type": "text/plain"}


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return count_events(conn)


async def test_per_ip_limit_answers_429(settings: Settings, site: Site, engine: Engine) -> None:
    limited = settings.replace(rate_limit_per_ip="3/minute", rate_limit_per_site="off")
    async with running_app(limited) as api:
        for seq in range(1, 4):
            ok = await api.post(
                "/v1/events", content=body(batch(site.site_key, [hash_event(seq, "#")])), headers=HEADERS
            )
            assert ok.status_code == 200
        refused = await api.post(
            "/v1/events", content=body(batch(site.site_key, [hash_event(9, "#")])), headers=HEADERS
        )
    error = assert_error(refused, 429, "rate_limited")
    assert "ip" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    assert stored(engine) == 3


async def test_per_site_limit_answers_429(settings: Settings, site: Site, engine: Engine) -> None:
    limited = settings.replace(rate_limit_per_ip="off", rate_limit_per_site="2/minute")
    async with running_app(limited) as api:
        statuses = [
            (
                await api.post(
                    "/v1/events", content=body(batch(site.site_key, [hash_event(1, "#")])), headers=HEADERS
                )
            )
            for _ in range(3)
        ]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert_error(statuses[2], 429, "rate_limited")
    assert stored(engine) == 2


async def test_rate_limits_can_be_off(settings: Settings, site: Site, engine: Engine) -> None:
    unlimited = settings.replace(rate_limit_per_ip="off", rate_limit_per_site="off")
    async with running_app(unlimited) as api:
        for seq in range(1, 151):
            response = await api.post(
                "/v1/events", content=body(batch(site.site_key, [hash_event(seq, "#")])), headers=HEADERS
            )
            assert response.status_code == 200
    assert stored(engine) == 150


# A size cap is SQLite's alone; PostgreSQL running out of disk is outside what a test here can cause.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_full_sqlite_answers_503_and_keeps_what_it_had(
    settings: Settings, site: Site, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    capped = settings.replace(sqlite_max_size_mb=2, rate_limit_per_ip="off", rate_limit_per_site="off")
    filler = "x" * 8000
    acknowledged = 0
    refused: httpx.Response | None = None
    async with running_app(capped) as api:
        for seq in range(1, 400):
            document = batch(site.site_key, [message_event(seq, "sendCard", {"desc": filler})])
            response = await api.post("/v1/events", content=body(document), headers=HEADERS)
            if response.status_code != 200:
                refused = response
                break
            acknowledged += 1
    assert refused is not None, "the 2 MiB cap was never reached"
    assert_error(refused, 503, "unavailable")
    assert refused.headers["retry-after"] == "5"
    assert acknowledged > 50
    assert stored(engine) == acknowledged
    assert any(
        r.levelno == logging.ERROR and "SQLite database is full" in r.getMessage() for r in caplog.records
    )


def refuse_writes(monkeypatch: pytest.MonkeyPatch, refusal: StorageUnavailable) -> None:
    """Have the writer refuse every write, whichever writer the backend uses."""

    async def refuse(_self: object, _rows: object) -> None:
        raise refusal

    monkeypatch.setattr(EventWriter, "write", refuse)
    monkeypatch.setattr(LoopEventWriter, "write", refuse)


async def test_unavailable_database_is_503_without_its_details(
    api: httpx.AsyncClient, site: Site, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cause = "INSERT INTO events ... [parameters: ('#?mobile=18888888888',)]"
    refuse_writes(monkeypatch, StorageUnavailable(cause))
    response = await api.post(
        "/v1/events", content=body(batch(site.site_key, [hash_event(1, "#")])), headers=HEADERS
    )
    error = assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "5"
    assert "18888888888" not in response.text
    assert "INSERT" not in error["message"]
    assert stored(engine) == 0


async def test_shutting_down_is_503(
    api: httpx.AsyncClient, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_writes(monkeypatch, WriterClosed("the server is shutting down"))
    response = await api.post(
        "/v1/events", content=body(batch(site.site_key, [hash_event(1, "#")])), headers=HEADERS
    )
    assert assert_error(response, 503, "unavailable")["message"] == "the server is shutting down"
