"""A real `calltrail serve` process on loopback."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from service.storage.engine import normalize_url
from service.storage.events import count_events
from tests.batches import batch, body, hash_event
from tests.conftest import ORIGIN
from tests.servers import Server, calltrail

pytestmark = pytest.mark.slow


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base URL, site key, database URL) of a running 2-worker server."""
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": db_url}
    site_key = calltrail("sites", "add", "crm", "--origin", ORIGIN, env=env, cwd=tmp_path).splitlines()[-1]
    server = Server(["--workers", "2"], env, tmp_path)
    yield server.base, site_key, db_url
    assert server.terminate() == 0, server.log()


def test_real_server_stores_events_exactly_once(served: tuple[str, str, str]) -> None:
    base, site_key, db_url = served
    headers = {"origin": ORIGIN, "content-type": "text/plain;charset=UTF-8"}
    documents = [
        batch(site_key, [hash_event(i, f"#?status=100&n={i}") for i in range(1, 11)]) for _ in range(10)
    ]
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for document in documents:
            response = client.post("/v1/events", content=body(document))
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == ORIGIN
            assert {r["status"] for r in response.json()["results"]} == {"accepted"}
        for document in documents:  # a client retrying everything
            statuses = {
                r["status"] for r in client.post("/v1/events", content=body(document)).json()["results"]
            }
            assert statuses == {"duplicate"}
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        assert count_events(conn) == 100
    engine.dispose()


def test_fresh_directory_serves_on_sqlite_by_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRAIL_")}
    server = Server([], env, tmp_path)
    assert (tmp_path / "calltrail.db").exists()
    # A single uvicorn process re-raises SIGTERM once it has shut down cleanly.
    assert server.terminate() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log()
