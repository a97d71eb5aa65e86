"""A real `calltrail serve` process on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from service.storage.engine import normalize_url
from service.storage.events import count_events
from tests.batches import batch, body, hash_event
from tests.conftest import ORIGIN

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def calltrail(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@contextmanager
def running_server(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[str]:
    """Start `calltrail serve ARGS`, wait until ready, yield its base URL, then SIGTERM it.

    The server logs to a file, never a pipe: a pipe nobody reads would fill up and stall the server.
    """
    port = free_port()
    log_path = cwd / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port), *args],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited early:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not become ready:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("server did not stop within 30 s of SIGTERM") from None
    # A single uvicorn process re-raises SIGTERM once it has shut down cleanly; a supervisor exits 0.
    assert exit_code in (0, -signal.SIGTERM), log_path.read_text()
    assert "Application shutdown complete" in log_path.read_text()


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base URL, site key, database URL) of a running 2-worker server."""
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": db_url}
    site_key = calltrail(
        "sites", "add", "crm", "--origin", ORIGIN, env=env, cwd=tmp_path
    ).stdout.splitlines()[-1]
    with running_server(["--workers", "2"], env, tmp_path) as base:
        yield base, site_key, db_url


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
    with running_server([], env, tmp_path):
        assert (tmp_path / "calltrail.db").exists()
