"""Reconciliation (service/ccc/sync.py, `calltrail ccc sync`, the scheduled run): the real SDK against the
fake CCC API on loopback, into real SQLite and PostgreSQL databases."""

from __future__ import annotations

import json
import logging
import logging.config
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Connection, Engine, func, select

from service.ccc.apps import add_app
from service.ccc.pacing import RequestPacer, RetryPolicy
from service.ccc.pull import IM_CDRS, TEL_CDR, Page, PullCursor, PullOptions
from service.ccc.raw_log import raw_records
from service.ccc.sdk import CccError, CccSdk
from service.ccc.sync import (
    ActionReport,
    ScheduledSync,
    SyncScheduler,
    acquire_lease,
    extend_lease,
    pulled_push_uuid,
    release_lease,
    save_cursor,
    sync_range,
    sync_state,
)
from service.cli import cli
from service.config import ConfigError, Settings
from service.domain.pii import PiiPolicy
from service.logs import logging_config
from service.storage.engine import make_engine
from service.storage.schema import call_records, ccc_raw_records, ccc_sync_state, metadata
from tests.fakes.ccc_api import FakeCccApi

SECRET_ID = "AKIDsyncfake000000000000000000000000"
SECRET_KEY = "sync-secret-key-do-not-show-0123456789"
APP = 1400000007
RAW = PiiPolicy("raw", b"")
HMAC_KEY = "a-pii-key-of-sixteen-or-more"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
HOUR_MS = 3_600_000


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeCccApi]:
    with FakeCccApi(secrets={SECRET_ID: SECRET_KEY}) as running:
        yield running


@pytest.fixture
def sdk(fake: FakeCccApi) -> CccSdk:
    return CccSdk(SECRET_ID, SECRET_KEY, endpoint=fake.endpoint, protocol="http")


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The service's own logging at DEBUG (service/logs.py, which keeps the SDK's request lines out), with
    every record also captured."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    logging.config.dictConfig(logging_config(Settings(log_level="debug")))
    caplog.handler.setLevel(logging.DEBUG)
    root.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name in ("tencentcloud_sdk_common", "alembic", "uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.fixture
def writer(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings, "write")
    yield engine
    engine.dispose()


def fast(**overrides: Any) -> PullOptions:
    options: PullOptions = {
        "pacer": RequestPacer(20, 0.05),
        "retry": RetryPolicy(base_s=0.001, cap_s=0.004),
        "rng": random.Random(3),
        "sleep": lambda _s: None,
    }
    options.update(overrides)  # type: ignore[typeddict-item]
    return options


def tel_cdr(index: int, start_s: int, caller: str = "008613012345678") -> dict[str, Any]:
    return {
        "SessionId": f"tel-{index:05d}",
        "Caller": caller,
        "Callee": "0086075586013388",
        "Direction": 0,
        "StartTimestamp": start_s,
        "EndedTimestamp": start_s + 60,
        "EndStatus": 1,
        "EndStatusString": "ok",
        "SeatUser": {"Mail": "alice@example.com"},
    }


def im_cdr(index: int, at_s: int) -> dict[str, Any]:
    return {
        "Id": f"im-id-{index}",
        "SessionId": f"im-{index:05d}",
        "Timestamp": at_s,
        "Type": 1,
        "EndStatus": 1,
        "ClientUserId": f"customer-{index}",
        "StaffId": "bob@example.com",
    }


class Projection:
    """The projection hook: records each call, and checks it comes inside the page's transaction, after the
    page's records are stored (they are visible on the hook's connection)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, tuple[str, ...]]] = []
        self.fail_on_call: int | None = None

    def __call__(self, conn: Connection, sdk_app_id: int, session_ids: Sequence[str]) -> None:
        assert conn.in_transaction()
        assert session_ids
        stored = conn.execute(select(func.count()).select_from(ccc_raw_records)).scalar_one()
        assert stored >= len(session_ids)
        self.calls.append((sdk_app_id, tuple(session_ids)))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("the projection failed")

    @property
    def sessions(self) -> list[str]:
        return [s for _app, ids in self.calls for s in ids]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def pulled(engine: Engine, action: str | None = None) -> list[Any]:
    with engine.connect() as conn:
        return [r for r in raw_records(conn, APP) if action is None or r.action == action]


# --- the range sync -------------------------------------------------------------------------------------


def test_a_sync_stores_every_record_of_several_pages_and_two_windows_once(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine
) -> None:
    now = (now_ms() // 1000) * 1000  # whole seconds: exactly two windows of an hour
    start = now - 2 * HOUR_MS
    first_hour, second_hour = start // 1000 + 10, start // 1000 + 3600 + 10
    fake.tel_cdrs[APP] = [tel_cdr(i, first_hour + i) for i in range(150)]
    fake.tel_cdrs[APP] += [tel_cdr(150 + i, second_hour + i) for i in range(120)]
    fake.im_cdrs[APP] = [im_cdr(i, first_hour + i) for i in range(130)]
    projection = Projection()

    reports = sync_range(
        writer, sdk, APP, start, now, policy=RAW, project=projection, now_ms=now,
        pull_options=fast(window_s=3600),
    )  # fmt: skip

    tel, im = reports
    assert (tel.action, tel.pulled, tel.stored, tel.already, tel.unreadable) == (TEL_CDR, 270, 270, 0, 0)
    assert (im.action, im.pulled, im.stored, im.already) == (IM_CDRS, 130, 130, 0)
    # Two windows of an hour: 2 + 2 pages of DescribeTelCdr, 2 pages of DescribeIMCdrs.
    tel_requests = fake.requests(TEL_CDR)
    assert [(r.params["StartTimeStamp"], r.params["PageNumber"]) for r in tel_requests] == [
        (start // 1000, 0), (start // 1000, 1), (start // 1000 + 3600, 0), (start // 1000 + 3600, 1),
    ]  # fmt: skip
    assert tel.pull.requests == 4 and tel.complete and im.complete
    rows = pulled(writer)
    assert len(rows) == 400
    assert {r.source for r in rows} == {"pull"} and {r.version for r in rows} == {None}
    assert len({r.push_uuid for r in rows}) == 400
    assert all(r.push_uuid is not None and r.push_uuid.startswith("pull:") for r in rows)
    assert len(rows[0].push_uuid or "") == 45
    by_session = {json.loads(r.body)["SessionId"]: r for r in rows}
    assert json.loads(by_session["tel-00151"].body) == tel_cdr(151, second_hour + 1)  # verbatim under raw
    assert by_session["tel-00151"].action == TEL_CDR and by_session["im-00003"].action == IM_CDRS
    # The hook saw every stored record's SessionId once, per page.
    assert sorted(projection.sessions) == sorted(by_session)
    assert {app for app, _ids in projection.calls} == {APP}
    assert len(projection.calls) == 6
    # A completed sync leaves no cursor behind.
    with writer.connect() as conn:
        for action in (TEL_CDR, IM_CDRS):
            state = sync_state(conn, APP, action)
            assert state is not None and state.cursor is None and state.range_start_ms is None


def test_a_second_sync_stores_nothing_new_and_a_changed_record_once_more(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine
) -> None:
    now = now_ms()
    start = now - HOUR_MS
    fake.tel_cdrs[APP] = [tel_cdr(i, start // 1000 + i) for i in range(120)]
    first = Projection()
    sync_range(writer, sdk, APP, start, now, policy=RAW, project=first, now_ms=now, pull_options=fast())

    again = Projection()
    tel, im = sync_range(
        writer, sdk, APP, start, now, policy=RAW, project=again, now_ms=now, pull_options=fast()
    )
    assert (tel.pulled, tel.stored, tel.already) == (120, 0, 120)
    assert (im.pulled, im.stored) == (0, 0)
    assert again.calls == []  # nothing stored, nothing to project
    assert len(pulled(writer)) == 120

    fake.tel_cdrs[APP][7] = {**fake.tel_cdrs[APP][7], "EndStatus": 202, "EndStatusString": "notAnswer"}
    changed = Projection()
    tel, _ = sync_range(
        writer, sdk, APP, start, now, policy=RAW, project=changed, now_ms=now, pull_options=fast()
    )
    assert (tel.stored, tel.already) == (1, 119)
    assert changed.sessions == ["tel-00007"]
    versions = [json.loads(r.body) for r in pulled(writer) if json.loads(r.body)["SessionId"] == "tel-00007"]
    assert sorted(v["EndStatus"] for v in versions) == [1, 202]


def test_an_interrupted_sync_resumes_from_its_cursor_and_stores_every_record_once(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine
) -> None:
    now = now_ms()
    start = now - HOUR_MS
    fake.tel_cdrs[APP] = [tel_cdr(i, start // 1000 + i) for i in range(350)]

    def fail_after_two_pages(report: ActionReport, page: Page) -> None:
        if page.page == 1:
            fake.fail_next(1, "InternalError", "the API fell over")

    with pytest.raises(CccError, match="InternalError"):
        sync_range(
            writer, sdk, APP, start, now, policy=RAW, project=Projection(), now_ms=now,
            on_page=fail_after_two_pages, pull_options=fast(),
        )  # fmt: skip
    assert len(pulled(writer)) == 200
    with writer.connect() as conn:
        state = sync_state(conn, APP, TEL_CDR)
    assert state is not None
    assert state.cursor == PullCursor((start // 1000) * 1000, 2)
    assert (state.range_start_ms, state.range_end_ms) == (start, now)

    before = len(fake.requests(TEL_CDR))
    projection = Projection()
    tel, _ = sync_range(
        writer, sdk, APP, start, now, policy=RAW, project=projection, now_ms=now, pull_options=fast()
    )
    assert tel.resumed_from == state.cursor
    assert [r.params["PageNumber"] for r in fake.requests(TEL_CDR)[before:]] == [2, 3]
    assert (tel.pulled, tel.stored, tel.already) == (150, 150, 0)
    sessions = [json.loads(r.body)["SessionId"] for r in pulled(writer, TEL_CDR)]
    assert sorted(sessions) == [f"tel-{i:05d}" for i in range(350)]
    with writer.connect() as conn:
        assert (done := sync_state(conn, APP, TEL_CDR)) is not None and done.cursor is None


def test_a_failed_page_transaction_is_rolled_back_whole_and_pulled_again(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine
) -> None:
    now = now_ms()
    start = now - HOUR_MS
    fake.tel_cdrs[APP] = [tel_cdr(i, start // 1000 + i) for i in range(250)]
    crashing = Projection()
    crashing.fail_on_call = 2  # the second page's projection fails: its records must not stay
    with pytest.raises(RuntimeError, match="projection failed"):
        sync_range(
            writer, sdk, APP, start, now, policy=RAW, project=crashing, now_ms=now, pull_options=fast()
        )
    assert len(pulled(writer)) == 100
    with writer.connect() as conn:
        assert (state := sync_state(conn, APP, TEL_CDR)) is not None and state.cursor is not None
        assert state.cursor.page == 1

    projection = Projection()
    tel, _ = sync_range(
        writer, sdk, APP, start, now, policy=RAW, project=projection, now_ms=now, pull_options=fast()
    )
    assert (tel.stored, tel.already) == (150, 0)
    assert len(pulled(writer)) == 250 == len({r.push_uuid for r in pulled(writer)})


def test_restart_ignores_the_cursor_and_another_range_replaces_it(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine
) -> None:
    now = now_ms()
    start = now - HOUR_MS
    fake.tel_cdrs[APP] = [tel_cdr(i, start // 1000 + i) for i in range(150)]
    with writer.begin() as conn:
        save_cursor(conn, APP, TEL_CDR, (start, now), PullCursor((start // 1000) * 1000, 1))
    (tel,) = sync_range(
        writer, sdk, APP, start, now, policy=RAW, project=Projection(), now_ms=now, restart=True,
        actions=(TEL_CDR,), pull_options=fast(),
    )  # fmt: skip
    assert tel.resumed_from is None and tel.pulled == 150

    with writer.begin() as conn:
        save_cursor(conn, APP, TEL_CDR, (start - 10, now), PullCursor(((start - 10) // 1000) * 1000, 1))
    (tel,) = sync_range(
        writer, sdk, APP, start, now, policy=RAW, project=Projection(), now_ms=now, actions=(TEL_CDR,),
        pull_options=fast(),
    )  # fmt: skip
    assert tel.resumed_from is None and tel.replaced_range == (start - 10, now)
    assert (tel.pulled, tel.already) == (150, 150)


def test_throttling_is_backed_off_and_retried(fake: FakeCccApi, sdk: CccSdk, writer: Engine) -> None:
    now = now_ms()
    start = now - HOUR_MS
    fake.tel_cdrs[APP] = [tel_cdr(i, start // 1000 + i) for i in range(30)]
    fake.fail_next(3, "RequestLimitExceeded", "too many")
    tel, im = sync_range(
        writer, sdk, APP, start, now, policy=RAW, project=Projection(), now_ms=now, pull_options=fast()
    )
    assert tel.pull.throttled == 3 and tel.pull.requests == 4
    assert tel.stored == 30 and im.pull.throttled == 0
    assert [r.error for r in fake.requests(TEL_CDR)] == ["RequestLimitExceeded"] * 3 + [None]


def test_an_unreadable_record_is_stored_counted_and_not_projected(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    now = now_ms()
    start = now - HOUR_MS
    broken = tel_cdr(1, start // 1000 + 1)
    del broken["SessionId"]
    fake.tel_cdrs[APP] = [tel_cdr(0, start // 1000), broken]
    projection = Projection()
    with caplog.at_level(logging.WARNING, "calltrail.ccc"):
        tel, _ = sync_range(
            writer, sdk, APP, start, now, policy=RAW, project=projection, now_ms=now, pull_options=fast()
        )
    assert (tel.pulled, tel.stored, tel.unreadable) == (2, 2, 1)
    assert projection.sessions == ["tel-00000"]
    assert len(pulled(writer)) == 2
    assert "unreadable at SessionId" in caplog.text


def test_hmac_mode_stores_no_customer_number_and_keys_the_digest_on_the_protected_record(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine
) -> None:
    now = now_ms()
    start = now - HOUR_MS
    fake.tel_cdrs[APP] = [tel_cdr(i, start // 1000 + i, caller=f"00861301234{i:04d}") for i in range(5)]
    fake.im_cdrs[APP] = [im_cdr(i, start // 1000 + i) for i in range(3)]
    policy = PiiPolicy("hmac", HMAC_KEY.encode())
    sync_range(
        writer, sdk, APP, start, now, policy=policy, project=Projection(), now_ms=now, pull_options=fast()
    )

    rows = pulled(writer)
    assert len(rows) == 8
    text = " ".join(r.body + (r.push_uuid or "") for r in rows)
    for i in range(5):
        assert f"1301234{i:04d}" not in text
    assert "customer-1" not in text
    first = json.loads(next(r.body for r in rows if json.loads(r.body)["SessionId"] == "tel-00000"))
    assert first["Caller"] == policy.protect("13012340000")
    assert first["Callee"] == "0086075586013388"  # the company's line is kept
    record = fake.tel_cdrs[APP][0]
    uuids = {r.push_uuid for r in rows}
    assert pulled_push_uuid(TEL_CDR, record, policy) in uuids
    assert pulled_push_uuid(TEL_CDR, record, RAW) not in uuids  # no digest of the unprotected record


# --- the lease ------------------------------------------------------------------------------------------


def race_for_the_lease(engines: list[Engine], app: int, now: int) -> dict[str, bool]:
    """Each engine's thread tries to take the lease at the same moment; who got it."""
    barrier = threading.Barrier(len(engines))
    won: dict[str, bool] = {}

    def take(holder: str, engine: Engine) -> None:
        barrier.wait()
        won[holder] = acquire_lease(engine, app, TEL_CDR, holder, now=now, lease_ms=60_000)

    threads = [threading.Thread(target=take, args=(f"worker-{i}", e)) for i, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return won


def test_of_two_concurrent_acquirers_exactly_one_gets_the_lease(settings: Settings) -> None:
    engines = [make_engine(settings, "write") for _ in range(2)]
    try:
        for app in range(APP, APP + 5):
            now = now_ms()
            won = race_for_the_lease(engines, app, now)
            assert sorted(won.values()) == [False, True], won
            winner = next(holder for holder, ok in won.items() if ok)
            with engines[0].connect() as conn:
                state = sync_state(conn, app, TEL_CDR)
            assert state is not None and state.lease_holder == winner
            assert state.lease_expires_at == now + 60_000
    finally:
        for engine in engines:
            engine.dispose()


def test_an_expired_lease_is_taken_over_and_its_old_holder_stops(writer: Engine) -> None:
    now = now_ms()
    assert acquire_lease(writer, APP, IM_CDRS, "a", now=now, lease_ms=1000)
    assert acquire_lease(writer, APP, IM_CDRS, "a", now=now + 10, lease_ms=1000)  # its own: renewed
    assert not acquire_lease(writer, APP, IM_CDRS, "b", now=now + 999, lease_ms=1000)
    assert acquire_lease(writer, APP, IM_CDRS, "b", now=now + 1010, lease_ms=1000)
    with writer.begin() as conn:
        assert not extend_lease(conn, APP, IM_CDRS, "a", now=now + 1020)
        assert not release_lease(conn, APP, IM_CDRS, "a", completed_end_ms=now)
        assert extend_lease(conn, APP, IM_CDRS, "b", now=now + 1020, lease_ms=1000)
    with writer.connect() as conn:
        state = sync_state(conn, APP, IM_CDRS)
    assert state is not None and state.lease_holder == "b" and state.scheduled_end_ms is None
    assert state.lease_expires_at == now + 2020
    with writer.begin() as conn:
        assert release_lease(conn, APP, IM_CDRS, "b", completed_end_ms=now)
    assert acquire_lease(writer, APP, IM_CDRS, "c", now=now + 1030)


# --- the schedule ---------------------------------------------------------------------------------------


def test_a_scheduled_run_pulls_its_window_and_advances_the_mark(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine
) -> None:
    add_app(writer, APP, "none")
    now = (now_ms() // 1000) * 1000
    mark = now - 3 * HOUR_MS
    assert acquire_lease(writer, APP, TEL_CDR, "earlier", now=now - 4 * HOUR_MS)
    with writer.begin() as conn:
        assert release_lease(conn, APP, TEL_CDR, "earlier", completed_end_ms=mark)
    s = now // 1000
    fake.tel_cdrs[APP] = [
        tel_cdr(0, s - 5 * 3600),  # before the window (mark - lookback = now - 4 h)
        tel_cdr(1, s - int(3.5 * 3600)),  # in it: late, before the mark
        tel_cdr(2, s - 600),
        tel_cdr(3, s - 30),  # within the margin: next time
    ]
    fake.im_cdrs[APP] = [im_cdr(0, s - 1200)]
    projection = Projection()
    scheduled = ScheduledSync(
        writer, sdk, policy=RAW, project=projection, lookback_ms=HOUR_MS, holder="me", clock=lambda: now,
        pull_options=fast(),
    )  # fmt: skip

    results = scheduled.run_once()

    assert [(r.action, r.outcome) for r in results] == [(TEL_CDR, "ok"), (IM_CDRS, "ok")]
    tel_request = fake.requests(TEL_CDR)[0].params
    assert (tel_request["StartTimeStamp"], tel_request["EndTimeStamp"]) == (s - 4 * 3600, s - 60)
    im_request = fake.requests(IM_CDRS)[0].params
    # No mark yet for chats: the window reaches back the lookback from its end.
    assert (im_request["StartTimestamp"], im_request["EndTimestamp"]) == (s - 60 - 3600, s - 60)
    assert sorted(projection.sessions) == ["im-00000", "tel-00001", "tel-00002"]
    with writer.connect() as conn:
        for action in (TEL_CDR, IM_CDRS):
            state = sync_state(conn, APP, action)
            assert state is not None and state.scheduled_end_ms == now - 60_000
            assert state.lease_holder is None and state.lease_expires_at is None

    # The next run starts a lookback before the new mark, and stores what it saw before once.
    later = ScheduledSync(
        writer, sdk, policy=RAW, project=Projection(), lookback_ms=HOUR_MS, clock=lambda: now + 600_000,
        pull_options=fast(),
    )  # fmt: skip
    results = later.run_once()
    assert results[0].window == (now - 60_000 - HOUR_MS, now + 540_000)
    assert results[0].report is not None and (results[0].report.stored, results[0].report.already) == (1, 1)


def test_a_run_skips_an_app_whose_lease_another_worker_holds(
    fake: FakeCccApi, sdk: CccSdk, writer: Engine
) -> None:
    add_app(writer, APP, "none")
    now = now_ms()
    assert acquire_lease(writer, APP, TEL_CDR, "other-worker", now=now, lease_ms=60_000)
    scheduled = ScheduledSync(
        writer,
        sdk,
        policy=RAW,
        project=Projection(),
        lookback_ms=HOUR_MS,
        clock=lambda: now,
        pull_options=fast(),
    )
    results = scheduled.run_once()
    assert [(r.action, r.outcome) for r in results] == [(TEL_CDR, "skipped"), (IM_CDRS, "ok")]
    assert fake.requests(TEL_CDR) == []
    with writer.connect() as conn:
        state = sync_state(conn, APP, TEL_CDR)
    assert state is not None and state.lease_holder == "other-worker" and state.scheduled_end_ms is None


def test_a_failed_scheduled_run_is_logged_without_secrets_and_keeps_the_mark(
    fake: FakeCccApi, writer: Engine, debug_log: pytest.LogCaptureFixture
) -> None:
    add_app(writer, APP, "none")
    wrong = CccSdk(SECRET_ID, "not-the-key-" + SECRET_KEY[::-1], endpoint=fake.endpoint, protocol="http")
    scheduled = ScheduledSync(
        writer, wrong, policy=RAW, project=Projection(), lookback_ms=HOUR_MS, pull_options=fast()
    )
    results = scheduled.run_once()
    assert [r.outcome for r in results] == ["failed", "failed"]
    assert results[0].error is not None and "AuthFailure.SignatureFailure" in results[0].error
    assert "CCC scheduled sync of app 1400000007 DescribeTelCdr failed" in debug_log.text
    assert "DEBUG" in debug_log.text  # the log is at DEBUG indeed
    for secret in (SECRET_ID, SECRET_KEY, SECRET_KEY[::-1]):
        assert secret not in debug_log.text
    with writer.connect() as conn:
        state = sync_state(conn, APP, TEL_CDR)
    assert state is not None and state.scheduled_end_ms is None and state.lease_holder is None


def test_the_service_runs_the_schedule_in_a_thread(
    fake: FakeCccApi, settings: Settings, writer: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.ccc.sync as sync_module

    monkeypatch.setattr(sync_module, "FIRST_RUN_DELAY_S", 0.01)
    add_app(writer, APP, "none")
    fake.tel_cdrs[APP] = [tel_cdr(0, now_ms() // 1000 - 600)]
    configured = settings.replace(
        ccc_secret_id=SECRET_ID, ccc_secret_key=SECRET_KEY, ccc_api_endpoint=fake.endpoint,
        ccc_api_protocol="http", ccc_sync_interval_s=60,
    )  # fmt: skip
    projection = Projection()
    scheduler = SyncScheduler.from_settings(configured, RAW, projection)
    assert scheduler is not None
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while len(projection.sessions) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert projection.sessions == ["tel-00000"]
    assert not scheduler._thread.is_alive()
    assert SyncScheduler.from_settings(configured.replace(ccc_sync_interval_s=0), RAW, projection) is None
    unkeyed = configured.replace(ccc_secret_id="", ccc_secret_key="")
    assert SyncScheduler.from_settings(unkeyed, RAW, projection) is None


# --- the command ----------------------------------------------------------------------------------------


def run_sync(db_url: str, fake: FakeCccApi, *args: str, **env: str) -> Result:
    environment = {
        "CALLTRAIL_DATABASE_URL": db_url,
        "CALLTRAIL_CCC_SECRET_ID": SECRET_ID,
        "CALLTRAIL_CCC_SECRET_KEY": SECRET_KEY,
        "CALLTRAIL_CCC_API_ENDPOINT": fake.endpoint,
        "CALLTRAIL_CCC_API_PROTOCOL": "http",
        **env,
    }
    return CliRunner().invoke(cli, ["ccc", "sync", *args], env=environment, catch_exceptions=False)


def iso_s(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def test_the_command_syncs_and_prints_a_summary(
    db_url: str, fake: FakeCccApi, writer: Engine, debug_log: pytest.LogCaptureFixture
) -> None:
    add_app(writer, APP, "none")
    now = now_ms()
    start = now - HOUR_MS
    fake.tel_cdrs[APP] = [tel_cdr(i, start // 1000 + 5 + i) for i in range(130)]
    fake.im_cdrs[APP] = [im_cdr(i, start // 1000 + 5 + i) for i in range(4)]
    result = run_sync(db_url, fake, str(APP), "--from", iso_s(start), "--to", iso_s(now))
    assert result.exit_code == 0, result.output
    assert f"{TEL_CDR}\t130\t130\t0\t0\t2\t0" in result.stdout
    assert f"{IM_CDRS}\t4\t4\t0\t0\t1\t0" in result.stdout
    assert "134 records pulled, 134 stored new, 0 already stored" in result.stdout
    assert TEL_CDR in result.stderr  # the progress bar's label

    again = run_sync(db_url, fake, str(APP), "--from", iso_s(start), "--to", iso_s(now))
    assert "134 records pulled, 0 stored new, 134 already stored" in again.stdout
    assert len(pulled(writer)) == 134
    # Nowhere a secret: not in the log (the SDK's DEBUG included), the output, or any table.
    assert "DEBUG" in debug_log.text  # the log is at DEBUG indeed
    assert SECRET_KEY not in debug_log.text and SECRET_ID not in debug_log.text
    assert SECRET_KEY not in result.output + again.output
    with writer.connect() as conn:
        everything = repr([conn.execute(select(table)).all() for table in metadata.sorted_tables])
    assert SECRET_KEY not in everything and SECRET_ID not in everything
    assert SECRET_KEY not in repr(Settings(ccc_secret_id=SECRET_ID, ccc_secret_key=SECRET_KEY))
    assert SECRET_ID not in repr(Settings(ccc_secret_id=SECRET_ID, ccc_secret_key=SECRET_KEY))


def test_the_command_says_it_resumes_an_interrupted_range(
    db_url: str, fake: FakeCccApi, writer: Engine
) -> None:
    add_app(writer, APP, "none")
    now = (now_ms() // 1000) * 1000
    start = now - HOUR_MS
    fake.tel_cdrs[APP] = [tel_cdr(i, start // 1000 + i) for i in range(150)]
    with writer.begin() as conn:
        save_cursor(conn, APP, TEL_CDR, (start, now), PullCursor(start, 1))
    result = run_sync(db_url, fake, str(APP), "--from", iso_s(start), "--to", iso_s(now))
    assert result.exit_code == 0, result.output
    assert "DescribeTelCdr: resuming the interrupted sync of this range" in result.stderr
    assert f"{TEL_CDR}\t50\t50\t" in result.stdout  # only page 1 (records 100-149) was asked for
    assert [r.params["PageNumber"] for r in fake.requests(TEL_CDR)] == [1]


def test_an_auth_failure_names_the_settings_and_not_the_secret(
    db_url: str, fake: FakeCccApi, writer: Engine
) -> None:
    add_app(writer, APP, "none")
    now = now_ms()
    wrong_key = "wrong-" + SECRET_KEY
    result = run_sync(
        db_url, fake, str(APP), "--from", iso_s(now - HOUR_MS), "--to", iso_s(now),
        CALLTRAIL_CCC_SECRET_KEY=wrong_key,
    )  # fmt: skip
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a message, no traceback
    assert "AuthFailure.SignatureFailure" in result.stderr
    assert "CALLTRAIL_CCC_SECRET_ID" in result.stderr and "CALLTRAIL_CCC_SECRET_KEY" in result.stderr
    assert wrong_key not in result.output and SECRET_ID not in result.output
    assert "Traceback" not in result.output


def test_the_command_refuses_without_keys_an_unknown_app_and_an_old_range(
    db_url: str, fake: FakeCccApi, writer: Engine
) -> None:
    now = now_ms()
    span = ("--from", iso_s(now - HOUR_MS), "--to", iso_s(now))
    unregistered = run_sync(db_url, fake, str(APP), *span)
    assert unregistered.exit_code == 1 and f"no CCC app {APP} is registered" in unregistered.stderr
    add_app(writer, APP, "none")
    no_keys = run_sync(db_url, fake, str(APP), *span, CALLTRAIL_CCC_SECRET_ID="", CALLTRAIL_CCC_SECRET_KEY="")
    assert no_keys.exit_code == 1
    assert "CALLTRAIL_CCC_SECRET_ID and CALLTRAIL_CCC_SECRET_KEY" in no_keys.stderr
    backwards = run_sync(db_url, fake, str(APP), "--from", iso_s(now), "--to", iso_s(now - HOUR_MS))
    assert backwards.exit_code == 2 and "must be after --from" in backwards.stderr

    day = 86_400_000
    old = ("--from", iso_s(now - 200 * day), "--to", iso_s(now - 199 * day))
    refused = run_sync(db_url, fake, str(APP), *old)
    assert refused.exit_code == 1
    assert "more than 180 days" in refused.stderr and "--clip" in refused.stderr
    assert fake.requests() == []
    fake.tel_cdrs[APP] = [tel_cdr(0, (now - 179 * day) // 1000)]
    clipped = run_sync(db_url, fake, str(APP), "--from", iso_s(now - 200 * day), "--to", iso_s(now), "--clip")
    assert clipped.exit_code == 0, clipped.output
    assert "1 records pulled, 1 stored new" in clipped.stdout


def test_the_settings_refuse_a_bad_protocol_endpoint_interval_and_half_a_key() -> None:
    with pytest.raises(ConfigError, match="CALLTRAIL_CCC_API_PROTOCOL: expected one of https, http"):
        Settings.from_env({"CALLTRAIL_CCC_API_PROTOCOL": "ftp"})
    with pytest.raises(ConfigError, match="CALLTRAIL_CCC_API_ENDPOINT"):
        Settings.from_env({"CALLTRAIL_CCC_API_ENDPOINT": "https://ccc.tencentcloudapi.com/"})
    with pytest.raises(ConfigError, match="CALLTRAIL_CCC_SYNC_INTERVAL_S"):
        Settings.from_env({"CALLTRAIL_CCC_SYNC_INTERVAL_S": "5"})
    with pytest.raises(ConfigError, match="set both or neither") as info:
        Settings.from_env({"CALLTRAIL_CCC_SECRET_KEY": SECRET_KEY})
    assert SECRET_KEY not in str(info.value)
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {"CALLTRAIL_CCC_SECRET_ID": SECRET_ID, "CALLTRAIL_CCC_SECRET_KEY": f" {SECRET_KEY}"}
        )
    assert "CALLTRAIL_CCC_SECRET_KEY" in str(info.value) and SECRET_KEY not in str(info.value)
    settings = Settings.from_env(
        {
            "CALLTRAIL_CCC_SECRET_ID": SECRET_ID,
            "CALLTRAIL_CCC_SECRET_KEY": SECRET_KEY,
            "CALLTRAIL_CCC_API_ENDPOINT": "127.0.0.1:8443",
            "CALLTRAIL_CCC_API_PROTOCOL": "HTTP",
            "CALLTRAIL_CCC_SYNC_INTERVAL_S": "300",
        }
    )
    assert (settings.ccc_api_endpoint, settings.ccc_api_protocol) == ("127.0.0.1:8443", "http")
    assert settings.ccc_sync_interval_s == 300 and settings.ccc_sync_lookback_s == 86400
    assert settings.has_ccc_api_key


@pytest.mark.anyio
async def test_the_app_runs_the_scheduled_sync_and_projects_what_it_pulls(
    fake: FakeCccApi,
    settings: Settings,
    writer: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import anyio

    import service.ccc.sync as sync_module
    from service.app import create_app

    monkeypatch.setattr(sync_module, "FIRST_RUN_DELAY_S", 0.01)
    add_app(writer, APP, "none")
    fake.tel_cdrs[APP] = [tel_cdr(0, now_ms() // 1000 - 600)]
    configured = settings.replace(
        ccc_secret_id=SECRET_ID, ccc_secret_key=SECRET_KEY, ccc_api_endpoint=fake.endpoint,
        ccc_api_protocol="http", ccc_sync_interval_s=60,
    )  # fmt: skip

    def marked() -> bool:
        with writer.connect() as conn:
            state = sync_state(conn, APP, IM_CDRS)  # the last of a run
        return state is not None and state.scheduled_end_ms is not None

    # The service's own projection: the pulled record becomes a call record.
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        with anyio.fail_after(10):
            while not marked():
                await anyio.sleep(0.02)
    with writer.connect() as conn:
        found = conn.execute(select(call_records.c.session_id, call_records.c.sources)).all()
        state = sync_state(conn, APP, TEL_CDR)
    assert [(row.session_id, row.sources) for row in found] == [("tel-00000", '["DescribeTelCdr"]')]
    assert state is not None and state.scheduled_end_ms is not None and state.lease_holder is None

    # A test's projection in its place is called with what each page stored.
    with writer.begin() as conn:
        conn.execute(ccc_sync_state.delete())
        conn.execute(ccc_raw_records.delete())
    projection = Projection()
    app = create_app(configured, ccc_project=projection)
    async with app.router.lifespan_context(app):
        with anyio.fail_after(10):
            while not marked():
                await anyio.sleep(0.02)
    assert projection.sessions == ["tel-00000"]
