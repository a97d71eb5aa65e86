"""CCC's call records by pull: DescribeTelCdr (phone) and DescribeIMCdrs (chat), by windows and pages.

``pull_tel_cdrs`` and ``pull_im_cdrs`` walk a time range the way the API allows (docs/call-records.md):

- windows shorter than 90 days (``WINDOW_S``, a day under the limit);
- a start no older than 180 days: an older one is refused (``CccRangeError``), or moved up with ``clip=True``;
- pages of 100 from page 0, until the answer's TotalCount has been seen (or a page comes back empty);
- every request paced and retried by ccc/pacing.py (20 in any second, backoff when throttled), through the
  SDK adapter of ccc/sdk.py.

Each page goes to the caller (``on_page``, or the ``iter_*`` generators) with the cursor to resume from
after it; the caller stores the page's records and that cursor together, and passes the cursor back to
carry on where it stopped. Nothing here stores anything.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypedDict, Unpack

from service.ccc.pacing import PullStats, RequestPacer, RetryPolicy, call_with_backoff
from service.ccc.sdk import CccApi, CccError
from service.domain.call_records import PULL_IM_CDRS, PULL_TEL_CDR
from service.domain.instants import iso, ms_from_s, s_ceil, s_floor

log = logging.getLogger("calltrail.ccc")

Action = Literal["DescribeTelCdr", "DescribeIMCdrs"]
TEL_CDR: Action = PULL_TEL_CDR
IM_CDRS: Action = PULL_IM_CDRS
DAY_S = 86_400
MAX_RANGE_S = 90 * DAY_S  # EndTimeStamp - StartTimeStamp must be less than this
WINDOW_S = 89 * DAY_S  # a day under the limit, in case CCC counts a range's ends inclusively
RETENTION_S = 180 * DAY_S  # StartTimeStamp at most this long ago
CLIP_MARGIN_S = 300  # a clipped start sits this far inside the 180 days: the API's clock runs on meanwhile
PAGE_SIZE = 100  # the API's maximum


class CccRangeError(ValueError):
    """A time range the API would refuse: older than 180 days, or ending before it starts."""


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
                f"the range starts at {iso(ms_from_s(start_s))}, more than 180 days before now "
                f"({iso(now_ms)}): CCC answers for the last 180 days only, "
                f"from {iso(ms_from_s(earliest_s))}; "
                "pass clip=True to start there"
            )
        clipped_s = earliest_s + CLIP_MARGIN_S
        log.warning(
            "CCC pull: start %s clipped to %s (180 days)", iso(ms_from_s(start_s)), iso(ms_from_s(clipped_s))
        )
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
    paging: Literal["page number", "offset"]
    extra: Mapping[str, object] = field(default_factory=dict)

    def params(self, sdk_app_id: int, window: tuple[int, int], page: int) -> dict[str, object]:
        params: dict[str, object] = {"SdkAppId": sdk_app_id, self.start: window[0], self.end: window[1]}
        if self.paging == "page number":
            params |= {"PageSize": PAGE_SIZE, "PageNumber": page}
        else:
            params |= {"Limit": PAGE_SIZE, "Offset": page * PAGE_SIZE}
        return params | dict(self.extra)


_SHAPES = {
    TEL_CDR: _Shape("StartTimeStamp", "EndTimeStamp", ("TelCdrList", "TelCdrs"), "page number"),
    IM_CDRS: _Shape("StartTimestamp", "EndTimestamp", ("IMCdrList", "IMCdrs"), "offset", {"Type": 1}),
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
            response = call_with_backoff(
                api, action, params, pacer=pacer, retry=retry, rng=rng, stats=stats, sleep=sleep
            )
            total, records = _read_page(action, response, shape)
            done = not records or (page + 1) * PAGE_SIZE >= total
            if not done:
                next_cursor: PullCursor | None = PullCursor(ms_from_s(window[0]), page + 1)
            else:
                next_cursor = None if following is None else PullCursor(ms_from_s(following[0]), 0)
            stats.pages += 1
            stats.records += len(records)
            yield Page(
                action,
                sdk_app_id,
                ms_from_s(window[0]),
                ms_from_s(window[1]),
                page,
                total,
                records,
                next_cursor,
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
