"""The DescribeTelCdr / DescribeIMCdrs pull, through the official SDK, against a fake CCC API on loopback."""

from __future__ import annotations

import http.client
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tencentcloud.ccc.v20200210 import ccc_client
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.retry import StandardRetryer

from service.ccc.pacing import PullStats, RequestPacer, RetryPolicy
from service.ccc.pull import (
    CLIP_MARGIN_S,
    DAY_S,
    RETENTION_S,
    WINDOW_S,
    CccRangeError,
    Page,
    PullCursor,
    PullOptions,
    iter_pages,
    plan_windows,
    pull_im_cdrs,
    pull_tel_cdrs,
)
from service.ccc.sdk import CccAuthError, CccError, CccNetworkError, CccSdk, CccThrottledError
from service.domain.call_merge import merge
from service.domain.call_parsing import parse_im_cdr, parse_tel_cdr
from tests.fakes.ccc_api import FakeCccApi, signature

SECRET_ID = "AKIDfakeccc0000000000000000000000000"
SECRET_KEY = "fake-secret-key-0123456789abcdef"
APP = 1400000000
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK sends loopback requests through HTTP(S)_PROXY unless NO_PROXY holds the literal host:port.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeCccApi]:
    with FakeCccApi(secrets={SECRET_ID: SECRET_KEY}) as running:
        yield running


@pytest.fixture
def sdk(fake: FakeCccApi) -> CccSdk:
    return CccSdk(SECRET_ID, SECRET_KEY, endpoint=fake.endpoint, protocol="http")


class Sleeps:
    """The backoff's sleeps, taken (briefly) and kept."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


def fast(**overrides: Any) -> PullOptions:
    """Options that keep a test quick: a pacer of 20 per 50 ms, backoff of milliseconds, sleeps recorded."""
    options: PullOptions = {
        "pacer": RequestPacer(20, 0.05),
        "retry": RetryPolicy(base_s=0.001, cap_s=0.004),
        "rng": random.Random(7),
        "sleep": Sleeps(),
    }
    options.update(overrides)  # type: ignore[typeddict-item]
    return options


def now_s() -> int:
    return int(time.time())


def tel_cdr(index: int, start_s: int) -> dict[str, Any]:
    return {
        "SessionId": f"session-{index:05d}",
        "Caller": "008613012345678",
        "Callee": "0086075586013388",
        "Direction": 0,
        "StartTimestamp": start_s,
        "AcceptTimestamp": start_s + 5,
        "EndedTimestamp": start_s + 65,
        "Duration": 60,
        "EndStatus": 1,
        "EndStatusString": "ok",
        "SeatUser": {"Mail": "alice@example.com"},
        "ServeParticipants": [{"Mail": "alice@example.com", "Sequence": 0, "RecordId": f"r{index}"}],
        "FieldNewerThanTheSdk": {"kept": True},
    }


# --- paging ---------------------------------------------------------------------------------------------


def test_250_records_come_in_three_pages_verbatim(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    fake.tel_cdrs[APP] = [tel_cdr(i, now - 3000 + i) for i in range(250)]
    pages: list[Page] = []
    stats = pull_tel_cdrs(
        sdk, APP, (now - 3600) * 1000, now * 1000, now_ms=now * 1000, on_page=pages.append, **fast()
    )
    assert [len(page.records) for page in pages] == [100, 100, 50]
    assert [page.page for page in pages] == [0, 1, 2]
    assert {page.total_count for page in pages} == {250}
    assert [r for page in pages for r in page.records] == fake.tel_cdrs[APP]  # verbatim, unknown fields too
    window_ms = (now - 3600) * 1000
    assert [page.next_cursor for page in pages] == [PullCursor(window_ms, 1), PullCursor(window_ms, 2), None]
    assert [r.params for r in fake.requests()] == [
        {"SdkAppId": APP, "StartTimeStamp": now - 3600, "EndTimeStamp": now, "PageSize": 100, "PageNumber": n}
        for n in range(3)
    ]
    assert (stats.requests, stats.pages, stats.records) == (3, 3, 250)
    # Every request was signed and addressed as the real API expects.
    for request in fake.requests():
        assert request.error is None
        assert request.headers["x-tc-action"] == "DescribeTelCdr"
        assert request.headers["x-tc-version"] == "2020-02-10"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["authorization"].startswith(f"TC3-HMAC-SHA256 Credential={SECRET_ID}/")
        assert "x-tc-region" not in request.headers
    # And they parse into call records.
    records = merge(*(parse_tel_cdr(r, APP) for page in pages for r in page.records))
    assert len(records) == 250
    assert {record.customer for record in records} == {"13012345678"}


def test_an_empty_range_and_an_empty_window(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    pages: list[Page] = []
    pull_tel_cdrs(sdk, APP, now * 1000, now * 1000, now_ms=now * 1000, on_page=pages.append, **fast())
    assert pages == []
    assert fake.requests() == []
    pull_tel_cdrs(sdk, APP, (now - 60) * 1000, now * 1000, now_ms=now * 1000, on_page=pages.append, **fast())
    assert [(page.records, page.total_count, page.next_cursor) for page in pages] == [((), 0, None)]


def test_a_range_over_90_days_is_split_into_windows(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    start = now - 170 * DAY_S
    # One record a day, the last one inside the newest window.
    fake.tel_cdrs[APP] = [tel_cdr(i, start + i * DAY_S + 100) for i in range(170)]
    pages: list[Page] = []
    pull_tel_cdrs(sdk, APP, start * 1000, now * 1000, now_ms=now * 1000, on_page=pages.append, **fast())
    windows = [(r.params["StartTimeStamp"], r.params["EndTimeStamp"]) for r in fake.requests()]
    assert windows == [(start, start + WINDOW_S), (start + WINDOW_S, now)]
    assert all(end - begin < 90 * DAY_S for begin, end in windows)
    assert [r for page in pages for r in page.records] == fake.tel_cdrs[APP]  # each once, in order
    assert [page.total_count for page in pages] == [89, 81]
    assert pages[0].next_cursor == PullCursor((start + WINDOW_S) * 1000, 0)
    assert all(r.error is None for r in fake.requests())


def test_window_planning() -> None:
    now_ms = 1_800_000_000_500
    start_ms = now_ms - 100 * DAY_S * 1000 + 250
    windows = plan_windows(start_ms, now_ms + 10_000_000, now_ms=now_ms)
    first = start_ms // 1000  # the start rounded down, the end up and no later than now
    assert windows == ((first, first + WINDOW_S), (first + WINDOW_S, 1_800_000_001))
    resumed = plan_windows(start_ms, now_ms, now_ms=now_ms, cursor=PullCursor((first + WINDOW_S) * 1000, 4))
    assert resumed == windows[1:]
    with pytest.raises(ValueError, match="outside the range"):
        plan_windows(start_ms, now_ms, now_ms=now_ms, cursor=PullCursor(start_ms - 10_000_000))
    with pytest.raises(CccRangeError, match="before it starts"):
        plan_windows(now_ms, now_ms - 1, now_ms=now_ms)
    with pytest.raises(ValueError, match="window"):
        plan_windows(start_ms, now_ms, now_ms=now_ms, window_s=90 * DAY_S)


def test_cursor_text() -> None:
    cursor = PullCursor(1_800_000_000_000, 3)
    assert PullCursor.decode(cursor.encode()) == cursor
    with pytest.raises(ValueError, match="not a pull cursor"):
        PullCursor.decode("3:x")


# --- the 180 days ---------------------------------------------------------------------------------------


def test_a_start_older_than_180_days_is_refused_before_any_request(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    with pytest.raises(CccRangeError, match="more than 180 days before now") as raised:
        pull_tel_cdrs(
            sdk, APP, (now - 200 * DAY_S) * 1000, now * 1000, now_ms=now * 1000, on_page=print, **fast()
        )
    assert "clip=True" in str(raised.value)
    assert fake.requests() == []


def test_clip_starts_inside_the_180_days(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    fake.tel_cdrs[APP] = [tel_cdr(0, now - 200 * DAY_S), tel_cdr(1, now - 100 * DAY_S), tel_cdr(2, now - 60)]
    pages: list[Page] = []
    pull_tel_cdrs(
        sdk,
        APP,
        (now - 200 * DAY_S) * 1000,
        now * 1000,
        now_ms=now * 1000,
        on_page=pages.append,
        **fast(clip=True),
    )
    first = fake.requests()[0].params["StartTimeStamp"]
    assert first == now - RETENTION_S + CLIP_MARGIN_S
    assert all(r.error is None for r in fake.requests())
    assert [r["SessionId"] for page in pages for r in page.records] == ["session-00001", "session-00002"]


def test_the_fake_refuses_what_the_api_refuses(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    base = {
        "SdkAppId": APP,
        "StartTimeStamp": now - DAY_S,
        "EndTimeStamp": now,
        "PageSize": 100,
        "PageNumber": 0,
    }
    for change in (
        {"StartTimeStamp": now - 181 * DAY_S, "EndTimeStamp": now - 100 * DAY_S},
        {"StartTimeStamp": now - 90 * DAY_S},
        {"PageSize": 101},
        {"PageNumber": -1},
        {"EndTimeStamp": now - 2 * DAY_S},
    ):
        with pytest.raises(CccError) as raised:
            sdk.call("DescribeTelCdr", {**base, **change})
        assert raised.value.code == "InvalidParameterValue", change
        assert raised.value.request_id
    assert sdk.call("DescribeTelCdr", {**base, "StartTimeStamp": now - 90 * DAY_S + 1})["TotalCount"] == 0
    with pytest.raises(CccError, match="InvalidAction"):
        sdk.call("DescribeSomethingElse", {})


# --- rate ------------------------------------------------------------------------------------------------


def test_the_pacer_holds_the_rate_the_fake_enforces(fake: FakeCccApi, sdk: CccSdk) -> None:
    # The documented 20 a second, scaled to 5 per 0.2 s so that the test stays short.
    fake.rate_limit, fake.rate_period_s = 5, 0.2
    now = now_s()
    fake.tel_cdrs[APP] = [tel_cdr(i, now - 3000 + i) for i in range(1200)]
    stats = pull_tel_cdrs(
        sdk,
        APP,
        (now - 3600) * 1000,
        now * 1000,
        now_ms=now * 1000,
        on_page=lambda page: None,
        **fast(pacer=RequestPacer(5, 0.2)),
    )
    assert (stats.requests, stats.records, stats.throttled) == (12, 1200, 0)
    assert fake.most_in_any_window(0.2) <= 5
    assert all(r.error is None for r in fake.requests())


def test_without_the_pacer_the_fake_throttles_and_the_pull_backs_off(fake: FakeCccApi, sdk: CccSdk) -> None:
    fake.rate_limit, fake.rate_period_s = 3, 0.1  # counts every arrival, the refused ones too
    now = now_s()
    fake.tel_cdrs[APP] = [tel_cdr(i, now - 3000 + i) for i in range(600)]
    stats = pull_tel_cdrs(
        sdk,
        APP,
        (now - 3600) * 1000,
        now * 1000,
        now_ms=now * 1000,
        on_page=lambda page: None,
        **fast(
            pacer=RequestPacer(1000, 1.0),  # no real limit
            retry=RetryPolicy(throttled_attempts=20, base_s=0.05, cap_s=0.1),
            sleep=time.sleep,
        ),
    )
    assert (stats.records, stats.pages) == (600, 6)
    assert stats.throttled > 0
    assert {r.error for r in fake.requests()} == {None, "RequestLimitExceeded"}


def test_the_default_is_20_requests_in_any_second(fake: FakeCccApi, sdk: CccSdk) -> None:
    fake.rate_limit, fake.rate_period_s = 20, 1.0  # the real API's limit
    now = now_s()
    fake.tel_cdrs[APP] = [tel_cdr(i, now - 3000 + i) for i in range(2500)]
    pacer = RequestPacer()
    assert (pacer.limit, pacer.period_s) == (20, 1.0)
    began = time.monotonic()
    stats = pull_tel_cdrs(
        sdk, APP, (now - 3600) * 1000, now * 1000, now_ms=now * 1000, on_page=lambda page: None, pacer=pacer
    )
    assert (stats.requests, stats.throttled) == (25, 0)
    assert time.monotonic() - began >= 1.0  # the 21st request waited for the first second to pass
    assert fake.most_in_any_window(1.0) <= 20
    assert all(r.error is None for r in fake.requests())


def test_the_pacer_waits_for_the_request_a_limit_before() -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pacer = RequestPacer(3, 1.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        pacer.wait()
        clock[0] += 0.1  # each request takes 0.1 s
        pacer.done()
    assert slept == []
    pacer.wait()  # the first request ended at 100.1: the fourth may start at 101.1
    assert slept == [pytest.approx(0.8)]
    assert clock[0] == pytest.approx(101.1)
    with pytest.raises(ValueError, match="limit"):
        RequestPacer(0)


# --- failures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "RequestLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
        "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
    ],
)
def test_throttling_is_backed_off_then_the_pull_succeeds(fake: FakeCccApi, sdk: CccSdk, code: str) -> None:
    now = now_s()
    fake.tel_cdrs[APP] = [tel_cdr(i, now - 100 + i) for i in range(30)]
    fake.fail_next(3, code)
    sleeps = Sleeps()
    pages: list[Page] = []
    retry = RetryPolicy(base_s=0.1, cap_s=0.3)
    stats = pull_tel_cdrs(
        sdk,
        APP,
        (now - 3600) * 1000,
        now * 1000,
        now_ms=now * 1000,
        on_page=pages.append,
        **fast(retry=retry, sleep=sleeps),
    )
    assert [len(page.records) for page in pages] == [30]
    assert (stats.requests, stats.throttled) == (4, 3)
    assert [r.error for r in fake.requests()] == [code, code, code, None]
    # Exponential with jitter: retry n waits between half and all of min(cap, base * 2**n).
    assert len(sleeps.taken) == 3
    for n, taken in enumerate(sleeps.taken):
        ceiling = min(0.3, 0.1 * 2**n)
        assert ceiling / 2 <= taken <= ceiling


def test_throttling_that_does_not_stop_is_raised(fake: FakeCccApi, sdk: CccSdk) -> None:
    fake.fail_next(10, "RequestLimitExceeded", "too many")
    now = now_s()
    with pytest.raises(CccThrottledError, match="RequestLimitExceeded: too many") as raised:
        pull_tel_cdrs(
            sdk,
            APP,
            (now - 60) * 1000,
            now * 1000,
            now_ms=now * 1000,
            on_page=print,
            **fast(retry=RetryPolicy(throttled_attempts=4, base_s=0.001)),
        )
    assert raised.value.request_id
    assert len(fake.requests()) == 4


def test_an_auth_failure_is_raised_at_once_without_the_secret(fake: FakeCccApi, sdk: CccSdk) -> None:
    fake.fail_next(1, "AuthFailure.UnauthorizedOperation", "no permission for ccc:DescribeTelCdr")
    now = now_s()
    with pytest.raises(CccAuthError) as raised:
        pull_tel_cdrs(sdk, APP, (now - 60) * 1000, now * 1000, now_ms=now * 1000, on_page=print, **fast())
    error = raised.value
    assert (error.code, error.message) == (
        "AuthFailure.UnauthorizedOperation",
        "no permission for ccc:DescribeTelCdr",
    )
    assert error.request_id
    assert len(fake.requests()) == 1  # not retried
    assert SECRET_KEY not in str(error) and SECRET_KEY not in repr(sdk)


def test_a_wrong_secret_key_fails_the_signature(fake: FakeCccApi) -> None:
    wrong = CccSdk(SECRET_ID, "not-the-secret-key", endpoint=fake.endpoint, protocol="http")
    now = now_s()
    with pytest.raises(CccAuthError) as raised:
        pull_tel_cdrs(wrong, APP, (now - 60) * 1000, now * 1000, now_ms=now * 1000, on_page=print, **fast())
    assert raised.value.code == "AuthFailure.SignatureFailure"
    assert "not-the-secret-key" not in str(raised.value)
    unknown = CccSdk("AKIDunknown", SECRET_KEY, endpoint=fake.endpoint, protocol="http")
    with pytest.raises(CccAuthError) as raised:
        unknown.call("DescribeTelCdr", {})
    assert raised.value.code == "AuthFailure.SecretIdNotFound"


def test_the_fake_checks_the_signature_over_the_body(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    sdk.call(
        "DescribeTelCdr",
        {"SdkAppId": APP, "StartTimeStamp": now - 60, "EndTimeStamp": now, "PageSize": 10, "PageNumber": 0},
    )
    signed = fake.requests()[0]
    body = json.dumps(signed.params).encode()
    timestamp = int(signed.headers["x-tc-timestamp"])
    expected = signature(
        SECRET_KEY,
        method="POST",
        path="/",
        query="",
        headers={"content-type": "application/json", "host": fake.endpoint},
        body=body,
        timestamp=timestamp,
    )
    assert signed.headers["authorization"].endswith(f"Signature={expected}")  # the SDK's signature is ours

    def replay(payload: bytes) -> dict[str, Any]:
        connection = http.client.HTTPConnection(fake.endpoint)
        headers = {
            name: value
            for name, value in signed.headers.items()
            if name not in ("content-length", "connection")
        }
        connection.request("POST", "/", payload, headers)
        answer = connection.getresponse()
        assert answer.status == 200
        assert answer.getheader("Content-Type") == "application/json"
        result: dict[str, Any] = json.loads(answer.read())["Response"]
        connection.close()
        return result

    assert "Error" not in replay(body)
    tampered = replay(body.replace(b'"PageSize": 10', b'"PageSize": 11'))
    assert tampered["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert tampered["RequestId"]


def test_network_errors_are_retried_a_few_times(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    fake.tel_cdrs[APP] = [tel_cdr(0, now - 30)]
    fake.fail_next_http(2, 500)
    pages: list[Page] = []
    stats = pull_tel_cdrs(
        sdk, APP, (now - 60) * 1000, now * 1000, now_ms=now * 1000, on_page=pages.append, **fast()
    )
    assert (stats.requests, stats.network_retries, len(pages[0].records)) == (3, 2, 1)
    assert [r.status for r in fake.requests()] == [500, 500, 200]
    fake.fail_next_http(3, 503)
    with pytest.raises(CccNetworkError) as raised:
        pull_tel_cdrs(sdk, APP, (now - 60) * 1000, now * 1000, now_ms=now * 1000, on_page=print, **fast())
    assert raised.value.code == "ServerNetworkError"
    assert "upstream trouble" in raised.value.message


def test_a_server_that_is_not_there(fake: FakeCccApi) -> None:
    with FakeCccApi() as gone:
        endpoint = gone.endpoint
    closed = CccSdk(SECRET_ID, SECRET_KEY, endpoint=endpoint, protocol="http", timeout_s=2)
    now = now_s()
    stats = PullStats()
    with pytest.raises(CccNetworkError) as raised:
        pull_tel_cdrs(
            closed, APP, (now - 60) * 1000, now * 1000, now_ms=now * 1000, on_page=print, **fast(stats=stats)
        )
    assert raised.value.code == "ClientNetworkError"
    assert stats.requests == 3


def test_an_error_behind_a_content_type_the_sdk_ignores_is_still_raised(
    fake: FakeCccApi, sdk: CccSdk
) -> None:
    fake.content_type = "application/json; charset=utf-8"
    fake.fail_next(1, "InvalidParameterValue", "bad")
    with pytest.raises(CccError, match="InvalidParameterValue: bad"):
        sdk.call("DescribeTelCdr", {})


def test_the_adapter_refuses_bad_settings() -> None:
    with pytest.raises(CccAuthError) as raised:
        CccSdk(" AKIDspaces", SECRET_KEY)
    assert raised.value.code == "InvalidCredential"
    with pytest.raises(CccAuthError):
        CccSdk(SECRET_ID, "")
    with pytest.raises(ValueError, match="host\\[:port\\]"):
        CccSdk(SECRET_ID, SECRET_KEY, endpoint="https://ccc.tencentcloudapi.com")
    with pytest.raises(ValueError, match="protocol"):
        CccSdk(SECRET_ID, SECRET_KEY, protocol="ftp")  # type: ignore[arg-type]
    assert (
        repr(CccSdk(SECRET_ID, SECRET_KEY)) == "CccSdk(endpoint='ccc.tencentcloudapi.com', protocol='https')"
    )


# --- resuming -------------------------------------------------------------------------------------------


def test_a_pull_resumes_from_its_cursor_with_the_remaining_pages_only(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    fake.tel_cdrs[APP] = [tel_cdr(i, now - 3000 + i) for i in range(250)]
    stored: list[dict[str, Any]] = []
    saved: list[PullCursor | None] = []

    def store_then_crash(page: Page) -> None:
        if page.page == 1:
            raise RuntimeError("the database went away")
        stored.extend(page.records)  # the records and the cursor in one transaction
        saved.append(page.next_cursor)

    start_ms, end_ms = (now - 3600) * 1000, now * 1000
    with pytest.raises(RuntimeError):
        pull_tel_cdrs(sdk, APP, start_ms, end_ms, now_ms=now * 1000, on_page=store_then_crash, **fast())
    assert saved == [PullCursor(start_ms, 1)]
    before = len(fake.requests())

    def store(page: Page) -> None:
        stored.extend(page.records)
        saved.append(page.next_cursor)

    cursor = PullCursor.decode(saved[-1].encode())  # type: ignore[union-attr]
    pull_tel_cdrs(sdk, APP, start_ms, end_ms, now_ms=now * 1000, on_page=store, **fast(cursor=cursor))
    resumed = fake.requests()[before:]
    assert [r.params["PageNumber"] for r in resumed] == [1, 2]
    assert stored == fake.tel_cdrs[APP]
    assert saved[-1] is None


def test_a_resumed_pull_skips_the_windows_already_done(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    start = now - 170 * DAY_S
    fake.tel_cdrs[APP] = [tel_cdr(i, start + i * DAY_S + 100) for i in range(170)]
    cursor = PullCursor((start + WINDOW_S) * 1000, 0)
    pages = list(
        iter_pages(
            sdk, "DescribeTelCdr", APP, start * 1000, now * 1000, now_ms=now * 1000, **fast(cursor=cursor)
        )
    )
    assert [r.params["StartTimeStamp"] for r in fake.requests()] == [start + WINDOW_S]
    assert [r["SessionId"] for page in pages for r in page.records] == [
        f"session-{i:05d}" for i in range(89, 170)
    ]


def test_a_resumed_pull_whose_range_start_has_aged_past_180_days(fake: FakeCccApi, sdk: CccSdk) -> None:
    # The range began 200 days ago, but the cursor is 10 days ago: only the cursor's start counts.
    now = now_s()
    cursor = PullCursor((now - 10 * DAY_S) * 1000, 0)
    pages = list(
        iter_pages(
            sdk,
            "DescribeTelCdr",
            APP,
            (now - 200 * DAY_S) * 1000,
            now * 1000,
            now_ms=now * 1000,
            **fast(cursor=cursor),
        )
    )
    assert len(pages) == 1
    assert fake.requests()[0].params["StartTimeStamp"] == now - 10 * DAY_S


# --- chats ----------------------------------------------------------------------------------------------


def im_cdr(index: int, at_s: int, media: int = 1) -> dict[str, Any]:
    return {
        "Id": f"im-{index}",
        "Duration": 120,
        "EndStatus": 1,
        "Nickname": "Bob",
        "Type": media,
        "StaffId": "alice@example.com",
        "Timestamp": at_s,
        "SessionId": f"chat-{index:04d}",
        "SkillGroupId": "3",
        "SkillGroupName": "online",
        "Satisfaction": {"Id": 1, "Label": "good"},
        "ClientUserId": f"user-{index}",
    }


def test_chat_records_by_limit_and_offset(fake: FakeCccApi, sdk: CccSdk) -> None:
    now = now_s()
    fake.im_cdrs[APP] = [im_cdr(i, now - 2000 + i) for i in range(150)] + [im_cdr(999, now - 10, media=2)]
    pages: list[Page] = []
    stats = pull_im_cdrs(
        sdk, APP, (now - 3600) * 1000, now * 1000, now_ms=now * 1000, on_page=pages.append, **fast()
    )
    assert [r.params for r in fake.requests("DescribeIMCdrs")] == [
        {
            "SdkAppId": APP,
            "StartTimestamp": now - 3600,
            "EndTimestamp": now,
            "Limit": 100,
            "Offset": o,
            "Type": 1,
        }
        for o in (0, 100)
    ]
    assert [len(page.records) for page in pages] == [100, 50]
    assert [r for page in pages for r in page.records] == fake.im_cdrs[APP][:150]  # Type 1: all-media only
    assert stats.records == 150
    records = merge(*(parse_im_cdr(r, APP) for page in pages for r in page.records))
    assert [record.channel for record in records] == ["chat"] * 150
    assert records[0].customer == "user-0"


def test_why_not_the_sdks_standard_retryer(fake: FakeCccApi) -> None:
    """tencentcloud-sdk-python-common 3.1.195: StandardRetryer never forgets the first error, so after one
    throttled attempt it retries answers that succeeded and finally raises that first error."""
    profile = ClientProfile(
        httpProfile=HttpProfile(endpoint=fake.endpoint, protocol="http"),
        retryer=StandardRetryer(max_attempts=3, backoff_fn=lambda n: 0),
    )
    client = ccc_client.CccClient(credential.Credential(SECRET_ID, SECRET_KEY), "", profile)
    now = now_s()
    fake.fail_next(1, "RequestLimitExceeded")
    params = {
        "SdkAppId": APP,
        "StartTimeStamp": now - 60,
        "EndTimeStamp": now,
        "PageSize": 10,
        "PageNumber": 0,
    }
    with pytest.raises(TencentCloudSDKException) as raised:
        client.call_json("DescribeTelCdr", params)
    assert raised.value.get_code() == "RequestLimitExceeded"
    assert [r.error for r in fake.requests()] == ["RequestLimitExceeded", None, None]  # two good answers lost
