"""Faults under load. After each: every acknowledged event is stored exactly once, and replaying what was
not acknowledged stores the rest, exactly once too."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from service.projection.queue import wait_until_projected
from service.storage.engine import normalize_url
from service.storage.schema import events
from tests.conftest import IN_CI, ORIGIN
from tests.private_postgres import PrivateCluster
from tests.projection_helpers import derived
from tests.servers import LoadClient, Server, calltrail

pytestmark = pytest.mark.slow

# The load must not trip the per-IP limit: every client here is 127.0.0.1.
UNLIMITED = {"CALLTRAIL_RATE_LIMIT_PER_IP": "off", "CALLTRAIL_RATE_LIMIT_PER_SITE": "off"}


def stored_ids(db_url: str) -> tuple[set[str], int]:
    """The distinct event ids stored, and the number of rows."""
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        ids = set(conn.execute(select(events.c.event_id)).scalars())
        rows = conn.execute(select(func.count()).select_from(events)).scalar_one()
    engine.dispose()
    return ids, rows


def assert_exactly_once(db_url: str, load: LoadClient, *, complete: bool) -> None:
    ids, rows = stored_ids(db_url)
    assert rows == len(ids), "an event was stored twice"
    assert load.acknowledged <= ids, f"{len(load.acknowledged - ids)} acknowledged events were lost"
    assert ids <= load.all_event_ids()
    if complete:
        assert ids == load.all_event_ids()


def wait_for_empty_queue(db_url: str, timeout_s: float) -> None:
    engine = create_engine(normalize_url(db_url))
    try:
        left = wait_until_projected(engine, timeout_s)
        assert left == 0, f"{left} events still unprojected after {timeout_s} s"
    finally:
        engine.dispose()


def assert_projection_equals_rebuild(db_url: str, env: dict[str, str], tmp_path: Path) -> None:
    engine = create_engine(normalize_url(db_url))
    try:
        projected = derived(engine)
        assert projected["hash_events"], "the load sent no hash events: nothing was compared"
        calltrail("rebuild", env=env, cwd=tmp_path)
        assert derived(engine) == projected
    finally:
        engine.dispose()


def run_load(load: LoadClient, seconds: float) -> None:
    load.start()
    time.sleep(seconds)


def setup_site(db_url: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": db_url, **UNLIMITED}
    site_key = calltrail("sites", "add", "crm", "--origin", ORIGIN, env=env, cwd=tmp_path).splitlines()[-1]
    return env, site_key


def test_sigkill_under_load_loses_nothing_acknowledged(db_url: str, tmp_path: Path) -> None:
    env, site_key = setup_site(db_url, tmp_path)
    server = Server(["--workers", "2"], env, tmp_path)
    load = LoadClient(server.base, site_key)
    run_load(load, 1.5)
    server.kill()
    load.stop()
    assert load.acknowledged, f"no batch was acknowledged before the kill: {load.statuses}"
    assert load.unanswered, "no request was in flight at the kill: nothing tested the replay"
    assert_exactly_once(db_url, load, complete=False)

    restarted = Server(["--workers", "2"], env, tmp_path, port=server.port)
    load.replay_unanswered(restarted.base)
    # The projection queue survived the kill with the events: the restarted workers project what the killed
    # ones had not, and the result is what a rebuild from the raw log gives.
    wait_for_empty_queue(db_url, timeout_s=120)
    assert restarted.terminate() == 0, restarted.log()
    assert_exactly_once(db_url, load, complete=True)
    assert_projection_equals_rebuild(db_url, env, tmp_path)


def test_sigterm_under_load_commits_everything_answered(db_url: str, tmp_path: Path) -> None:
    env, site_key = setup_site(db_url, tmp_path)
    server = Server(["--workers", "2"], env, tmp_path)
    load = LoadClient(server.base, site_key)
    run_load(load, 1.0)
    assert server.terminate() == 0, server.log()
    load.stop()
    # What was in flight at SIGTERM was answered (200 or 503) or its connection closed; nothing else.
    assert set(load.statuses) <= {200, 503, "ConnectError", "RemoteProtocolError", "ReadError"}, load.statuses
    assert_exactly_once(db_url, load, complete=False)

    restarted = Server([], env, tmp_path)
    load.replay_unanswered(restarted.base)
    restarted.terminate()
    assert_exactly_once(db_url, load, complete=True)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    try:
        cluster = PrivateCluster()
    except (PermissionError, FileNotFoundError) as exc:
        if IN_CI:
            pytest.fail(f"cannot run a private PostgreSQL cluster: {exc}")
        pytest.skip(f"cannot run a private PostgreSQL cluster: {exc}")
    yield cluster
    cluster.destroy()


def test_postgres_stopped_and_started_during_load(private_cluster: PrivateCluster, tmp_path: Path) -> None:
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": private_cluster.url, **UNLIMITED}
    calltrail("migrate", env=env, cwd=tmp_path)
    site_key = calltrail("sites", "add", "crm", "--origin", ORIGIN, env=env, cwd=tmp_path).splitlines()[-1]
    server = Server(["--workers", "2"], env, tmp_path)
    load = LoadClient(server.base, site_key, threads=3)
    run_load(load, 1.0)
    acknowledged_before = len(load.acknowledged)

    private_cluster.stop()
    time.sleep(1.5)
    unavailable_answers = load.statuses.get(503, 0)
    private_cluster.start()
    time.sleep(2.0)
    load.stop()

    assert acknowledged_before > 0
    assert unavailable_answers > 0, f"no 503 while the database was down: {load.statuses}"
    assert len(load.acknowledged) > acknowledged_before, f"no recovery after the restart: {load.statuses}"
    assert "the database cannot take writes" in server.log()
    assert_exactly_once(private_cluster.url, load, complete=False)

    load.replay_unanswered(server.base)
    assert server.terminate() == 0, server.log()
    assert_exactly_once(private_cluster.url, load, complete=True)
