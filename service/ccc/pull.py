"""CCC's call records by pull: DescribeTelCdr (phone) and DescribeIMCdrs (chat), through the official SDK.

``CccSdk`` is a small typed adapter over the SDK's ``CccClient`` (the SDK has no type hints). It sends the
request with the SDK's ``call_json``, which signs it (TC3-HMAC-SHA256) and returns the answer's JSON as
CCC wrote it, so a record's fields reach the caller verbatim, including any the installed SDK's models do
not know yet. It also reads an ``Error`` the SDK let through (the SDK looks for one only when the
Content-Type is exactly ``application/json``).

``pull_tel_cdrs`` and ``pull_im_cdrs`` walk a time range the way the API allows (docs/call-records.md):

- windows shorter than 90 days (``WINDOW_S``, a day under the limit);
- a start no older than 180 days: an older one is refused (``CccRangeError``), or moved up with ``clip=True``;
- pages of 100 from page 0, until the answer's TotalCount has been seen (or a page comes back empty);
- at most 20 requests in any second (``RequestPacer``);
- ``RequestLimitExceeded*`` answered by exponential backoff with jitter, network errors retried a few
  times; the SDK's own ``StandardRetryer`` is not used: it keeps the first error and raises it even after a
  retry succeeded (tencentcloud-sdk-python-common 3.1.195, ``retry.py``);
- ``AuthFailure*`` raised at once as ``CccAuthError``, with the API's code and message and no secret.

Each page goes to the caller (``on_page``, or the ``iter_*`` generators) with the cursor to resume from
after it; the caller stores the page's records and that cursor together, and passes the cursor back to
carry on where it stopped. Nothing here stores anything.

The settings the integration will read: CALLTRAIL_CCC_SECRET_ID, CALLTRAIL_CCC_SECRET_KEY,
CALLTRAIL_CCC_API_ENDPOINT (``ccc.tencentcloudapi.com``), CALLTRAIL_CCC_API_PROTOCOL (``https``; ``http``
only for a loopback test server).
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict, Unpack

from tencentcloud.ccc.v20200210 import ccc_client
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from service.domain.instants import iso, s_ceil, s_floor

log = logging.getLogger("calltrail.ccc")

DEFAULT_ENDPOINT = "ccc.tencentcloudapi.com"
Action = Literal["DescribeTelCdr", "DescribeIMCdrs"]
TEL_CDR: Action = "DescribeTelCdr"
IM_CDRS: Action = "DescribeIMCdrs"
DAY_S = 86_400
MAX_RANGE_S = 90 * DAY_S  # EndTimeStamp - StartTimeStamp must be less than this
WINDOW_S = 89 * DAY_S  # a day under the limit, in case CCC counts a range's ends inclusively
RETENTION_S = 180 * DAY_S  # StartTimeStamp at most this long ago
CLIP_MARGIN_S = 300  # a clipped start sits this far inside the 180 days: the API's clock runs on meanwhile
PAGE_SIZE = 100  # the API's maximum
REQUESTS_PER_S = 20  # DescribeTelCdr's documented limit
THROTTLED_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
        "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
    }
)
NETWORK_CODES = frozenset({"ClientNetworkError", "ServerNetworkError"})
_ENDPOINT = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


# --- errors ---------------------------------------------------------------------------------------------


class CccError(Exception):
    """An API call that failed: the API's (or the SDK's) code and message, and the request's id."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (RequestId {request_id})" if request_id else ""))
        self.code = code
        self.message = message
        self.request_id = request_id


class CccAuthError(CccError):
    """``AuthFailure*`` (wrong or unknown SecretId, bad signature, expired token, no permission) or
    credentials the SDK refuses outright. Retrying does not help; the message never holds the secret."""


class CccThrottledError(CccError):
    """``RequestLimitExceeded*`` still answered after every backoff."""


class CccNetworkError(CccError):
    """No usable answer (connection failed, or an HTTP status other than 200) after every retry."""


class CccRangeError(ValueError):
    """A time range the API would refuse: older than 180 days, or ending before it starts."""


# --- the SDK adapter ------------------------------------------------------------------------------------


class CccApi(Protocol):
    """One API call: the action's parameters in, the answer's ``Response`` object out, or a ``CccError``."""

    def call(self, action: str, params: Mapping[str, object]) -> dict[str, object]: ...


class CccSdk:
    """The SDK's ``CccClient`` behind a typed ``call``. ``endpoint`` is host[:port] only (no scheme: the SDK
    also sends and signs it as the Host header); ``protocol`` is ``https``, or ``http`` for a loopback test
    server. The secret key stays inside the SDK's credential object; this class never logs or shows it.

    The SDK's HTTP session follows HTTP(S)_PROXY from the environment unless the literal ``host:port``
    appears in NO_PROXY (reference §3.7)."""

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        protocol: Literal["https", "http"] = "https",
        timeout_s: int = 60,
    ) -> None:
        if protocol not in ("https", "http"):
            raise ValueError(f"protocol must be https or http, not {protocol!r:.20}")
        if not _ENDPOINT.fullmatch(endpoint):
            raise ValueError(f"endpoint must be host[:port], without a scheme or path: {endpoint!r:.80}")
        self.endpoint = endpoint
        self.protocol = protocol
        try:
            cred = credential.Credential(secret_id, secret_key)
        except TencentCloudSDKException as error:  # empty, or with spaces around it; the message says which
            raise CccAuthError(str(error.get_code()), str(error.get_message())) from None
        profile = ClientProfile(
            httpProfile=HttpProfile(endpoint=endpoint, protocol=protocol, reqTimeout=timeout_s),
        )
        # No retryer (the SDK's default NoopRetryer): the pull retries itself. Region "" (CCC needs none).
        self._client = ccc_client.CccClient(cred, "", profile)

    def __repr__(self) -> str:
        return f"CccSdk(endpoint={self.endpoint!r}, protocol={self.protocol!r})"

    def call(self, action: str, params: Mapping[str, object]) -> dict[str, object]:
        try:
            answer = self._client.call_json(action, dict(params))
        except TencentCloudSDKException as error:
            raise _error(error.get_code(), error.get_message(), error.get_request_id()) from None
        except ValueError as error:  # an HTTP 200 whose body is not JSON (a proxy's page, say)
            raise CccError("InvalidResponse", f"the answer is not JSON: {error}") from None
        response = answer.get("Response") if isinstance(answer, dict) else None
        if not isinstance(response, dict):
            raise CccError("InvalidResponse", "the answer has no Response object")
        problem = response.get("Error")
        if problem is not None:  # an error the SDK did not raise (its Content-Type check is exact)
            details = problem if isinstance(problem, dict) else {}
            request_id = response.get("RequestId")
            raise _error(details.get("Code"), details.get("Message"), request_id)
        return response


def _error(code: object, message: object, request_id: object) -> CccError:
    code_text = str(code or "UnknownError")
    if isinstance(message, bytes):  # ServerNetworkError carries the raw body of a non-200 answer
        message = message.decode("utf-8", "replace")
    message_text = str(message or "")[:500]
    request_text = str(request_id) if request_id else None
    if code_text.startswith("AuthFailure") or code_text == "InvalidCredential":
        return CccAuthError(code_text, message_text, request_text)
    return CccError(code_text, message_text, request_text)


# --- pacing and backoff ---------------------------------------------------------------------------------


class RequestPacer:
    """At most ``limit`` requests in any ``period_s``, for one caller making one request at a time.

    A sliding log of the last ``limit`` requests' *ends*: a request may start once the one ``limit`` before
    it ended ``period_s`` ago. Since a request reaches the server before its answer comes back, the server
    then never sees more than ``limit`` arrivals within ``period_s``, whatever the network's delays. Chosen
    over the ``limits`` library, whose limiters answer "may I now?" rather than "how long must I wait?" and
    whose fixed windows allow twice the limit across a window's edge, and over a token bucket, which allows
    a full bucket plus its refill (40) within one second; this is a dozen lines and exact."""

    def __init__(
        self,
        limit: int = REQUESTS_PER_S,
        period_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a pacer needs a limit of at least 1 and a positive period")
        self.limit = limit
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._ends: deque[float] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Before a request: sleep until it may start."""
        with self._lock:
            if len(self._ends) == self.limit:
                delay = self._ends[0] + self.period_s - self._clock()
                if delay > 0:
                    self._sleep(delay)

    def done(self) -> None:
        """After the request, whatever its outcome."""
        with self._lock:
            self._ends.append(self._clock())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: the n-th retry waits between half and all of
    ``min(cap_s, base_s * 2**n)``, so retries spread out without ever coming back at once."""

    throttled_attempts: int = 8
    network_attempts: int = 3
    base_s: float = 0.5
    cap_s: float = 16.0

    def delay_s(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0**retry)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class PullStats:
    """What a pull did; ``requests`` counts every attempt, retries included."""

    requests: int = 0
    pages: int = 0
    records: int = 0
    throttled: int = 0
    network_retries: int = 0


def _call(
    api: CccApi,
    action: str,
    params: Mapping[str, object],
    *,
    pacer: RequestPacer,
    retry: RetryPolicy,
    rng: random.Random,
    stats: PullStats,
    sleep: Callable[[float], None],
) -> dict[str, object]:
    throttled = network = 0
    while True:
        pacer.wait()
        stats.requests += 1
        try:
            return api.call(action, params)
        except CccAuthError:
            raise
        except CccError as error:
            failure = error
        finally:
            pacer.done()
        if failure.code in THROTTLED_CODES:
            throttled += 1
            stats.throttled += 1
            if throttled >= retry.throttled_attempts:
                raise CccThrottledError(failure.code, failure.message, failure.request_id)
            delay = retry.delay_s(throttled - 1, rng)
        elif failure.code in NETWORK_CODES:
            network += 1
            stats.network_retries += 1
            if network >= retry.network_attempts:
                raise CccNetworkError(failure.code, failure.message, failure.request_id)
            delay = retry.delay_s(network - 1, rng)
        else:
            raise failure
        log.warning("CCC %s answered %s; retrying in %.2f s", action, failure.code, delay)
        sleep(delay)


# --- the pull -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullCursor:
    """Where a pull resumes: page ``page`` of the window that starts at ``window_start_ms``."""

    window_start_ms: int
    page: int = 0

    def encode(self) -> str:
        return f"{self.window_start_ms}:{self.page}"

    @classmethod
    def decode(cls, text: str) -> PullCursor:
        match = re.fullmatch(r"([0-9]{1,16}):([0-9]{1,9})", text)
        if match is None:
            raise ValueError(f"not a pull cursor: {text!r:.40}")
        return cls(int(match[1]), int(match[2]))


@dataclass(frozen=True)
class Page:
    """One answer's records, verbatim, and the cursor to resume from once they are stored (None: the pull
    is complete). A window with no records still gives one (empty) page, so its cursor moves on."""

    action: str
    sdk_app_id: int
    window_start_ms: int
    window_end_ms: int
    page: int
    total_count: int
    records: tuple[dict[str, object], ...]
    next_cursor: PullCursor | None


@dataclass(frozen=True)
class _Plan:
    windows: tuple[tuple[int, int], ...]  # [start, end) in Unix seconds
    first_page: int


def plan_windows(
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    cursor: PullCursor | None = None,
    clip: bool = False,
    window_s: int = WINDOW_S,
) -> tuple[tuple[int, int], ...]:
    """The [start, end) windows, in Unix seconds, that a pull of the range asks for (see ``_plan``)."""
    return _plan(start_ms, end_ms, now_ms=now_ms, cursor=cursor, clip=clip, window_s=window_s).windows


def _plan(
    start_ms: int, end_ms: int, *, now_ms: int, cursor: PullCursor | None, clip: bool, window_s: int
) -> _Plan:
    """Whole seconds (the start rounded down, the end up, the end no later than now), windows of
    ``window_s`` laid from the start, so that a cursor's window start is one of them again on resumption."""
    if not 0 < window_s < MAX_RANGE_S:
        raise ValueError(f"a window must be shorter than {MAX_RANGE_S} s")
    if end_ms < start_ms:
        raise CccRangeError(f"the range ends ({iso(end_ms)}) before it starts ({iso(start_ms)})")
    start_s, end_s = s_floor(start_ms), s_ceil(min(end_ms, now_ms))
    first_page = 0
    if cursor is not None:  # before the 180 days are checked: the range's start may be older by now
        cursor_s = s_floor(cursor.window_start_ms)
        if cursor.page < 0 or not start_s <= cursor_s <= max(start_s, end_s):
            raise ValueError(f"the cursor {cursor.encode()} is outside the range being pulled")
        start_s, first_page = cursor_s, cursor.page
    earliest_s = s_ceil(now_ms) - RETENTION_S
    if start_s < earliest_s:
        if not clip:
            raise CccRangeError(
                f"the range starts at {iso(start_s * 1000)}, more than 180 days before now "
                f"({iso(now_ms)}): CCC answers for the last 180 days only, from {iso(earliest_s * 1000)}; "
                "pass clip=True to start there"
            )
        clipped_s = earliest_s + CLIP_MARGIN_S
        log.warning("CCC pull: start %s clipped to %s (180 days)", iso(start_s * 1000), iso(clipped_s * 1000))
        start_s, first_page = clipped_s, 0
    windows = []
    while start_s < end_s:
        windows.append((start_s, min(start_s + window_s, end_s)))
        start_s += window_s
    return _Plan(tuple(windows), first_page)


class PullOptions(TypedDict, total=False):
    """The optional parts of a pull: where to resume, what to do with a start older than 180 days, the
    pacer (share one between pulls that run one after the other), the retries, a ``PullStats`` to count
    into, the window length, and the randomness and sleep of the backoff (tests make them fast)."""

    cursor: PullCursor | None
    clip: bool
    pacer: RequestPacer
    retry: RetryPolicy
    stats: PullStats
    window_s: int
    rng: random.Random
    sleep: Callable[[float], None]


def iter_pages(
    api: CccApi,
    action: Action,
    sdk_app_id: int,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    **options: Unpack[PullOptions],
) -> Iterator[Page]:
    """The action's pages over [start_ms, end_ms), oldest window first. DescribeTelCdr filters on a record's
    StartTimestamp. DescribeIMCdrs is asked for Type 1 (all media) with Limit 100 and Offset; its own range
    and rate limits are not documented, so DescribeTelCdr's are applied to it too."""
    plan = _plan(
        start_ms,
        end_ms,
        now_ms=now_ms,
        cursor=options.get("cursor"),
        clip=options.get("clip", False),
        window_s=options.get("window_s", WINDOW_S),
    )
    return _pages(
        api,
        action,
        sdk_app_id,
        plan,
        pacer=options.get("pacer") or RequestPacer(),
        retry=options.get("retry") or RetryPolicy(),
        stats=options.get("stats") or PullStats(),
        rng=options.get("rng") or random.Random(),
        sleep=options.get("sleep", time.sleep),
    )


def pull_tel_cdrs(
    api: CccApi,
    sdk_app_id: int,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    on_page: Callable[[Page], None],
    **options: Unpack[PullOptions],
) -> PullStats:
    """Every DescribeTelCdr record of the range, page by page to ``on_page``. If ``on_page`` raises, the
    pull stops there and the exception propagates: resume from the last cursor it stored."""
    return _pull(api, TEL_CDR, sdk_app_id, start_ms, end_ms, now_ms=now_ms, on_page=on_page, **options)


def pull_im_cdrs(
    api: CccApi,
    sdk_app_id: int,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    on_page: Callable[[Page], None],
    **options: Unpack[PullOptions],
) -> PullStats:
    """Every DescribeIMCdrs record of the range, page by page to ``on_page``, as ``pull_tel_cdrs``."""
    return _pull(api, IM_CDRS, sdk_app_id, start_ms, end_ms, now_ms=now_ms, on_page=on_page, **options)


def _pull(
    api: CccApi,
    action: Action,
    sdk_app_id: int,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    on_page: Callable[[Page], None],
    **options: Unpack[PullOptions],
) -> PullStats:
    stats = options["stats"] = options.get("stats") or PullStats()
    for page in iter_pages(api, action, sdk_app_id, start_ms, end_ms, now_ms=now_ms, **options):
        on_page(page)
    return stats


@dataclass(frozen=True)
class _Shape:
    """How an action spells its parameters and its answer's list."""

    start: str
    end: str
    lists: tuple[str, ...]
    extra: Mapping[str, object] = field(default_factory=dict)

    def params(self, sdk_app_id: int, window: tuple[int, int], page: int) -> dict[str, object]:
        params: dict[str, object] = {"SdkAppId": sdk_app_id, self.start: window[0], self.end: window[1]}
        if self.start == "StartTimeStamp":
            params |= {"PageSize": PAGE_SIZE, "PageNumber": page}
        else:
            params |= {"Limit": PAGE_SIZE, "Offset": page * PAGE_SIZE}
        return params | dict(self.extra)


_SHAPES = {
    TEL_CDR: _Shape("StartTimeStamp", "EndTimeStamp", ("TelCdrList", "TelCdrs")),
    IM_CDRS: _Shape("StartTimestamp", "EndTimestamp", ("IMCdrList", "IMCdrs"), {"Type": 1}),
}


def _pages(
    api: CccApi,
    action: Action,
    sdk_app_id: int,
    plan: _Plan,
    *,
    pacer: RequestPacer,
    retry: RetryPolicy,
    stats: PullStats,
    rng: random.Random,
    sleep: Callable[[float], None],
) -> Iterator[Page]:
    shape = _SHAPES[action]
    page = plan.first_page
    for index, window in enumerate(plan.windows):
        following = plan.windows[index + 1] if index + 1 < len(plan.windows) else None
        while True:
            params = shape.params(sdk_app_id, window, page)
            response = _call(api, action, params, pacer=pacer, retry=retry, rng=rng, stats=stats, sleep=sleep)
            total, records = _read_page(action, response, shape)
            done = not records or (page + 1) * PAGE_SIZE >= total
            if not done:
                next_cursor: PullCursor | None = PullCursor(window[0] * 1000, page + 1)
            else:
                next_cursor = None if following is None else PullCursor(following[0] * 1000, 0)
            stats.pages += 1
            stats.records += len(records)
            yield Page(
                action, sdk_app_id, window[0] * 1000, window[1] * 1000, page, total, records, next_cursor
            )
            if done:
                break
            page += 1
        page = 0


def _read_page(
    action: str, response: dict[str, object], shape: _Shape
) -> tuple[int, tuple[dict[str, object], ...]]:
    total = response.get("TotalCount")
    if total is None:
        total = 0
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise CccError("InvalidResponse", f"{action}: TotalCount is {json.dumps(total)[:40]}")
    listed = next((response[key] for key in shape.lists if response.get(key) is not None), [])
    if not isinstance(listed, list) or not all(isinstance(record, dict) for record in listed):
        raise CccError("InvalidResponse", f"{action}: {shape.lists[0]} is not a list of objects")
    return total, tuple(listed)
