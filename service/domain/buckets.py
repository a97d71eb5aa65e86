"""Report buckets aligned to local time in an IANA zone: a day in Asia/Shanghai starts at 00:00 there.

Every zone in use today is offset from UTC by a multiple of 15 minutes, so every local boundary of every
interval falls on a UTC quarter hour, and the boundaries are found by walking the quarters of the range. A
bucket starts where the local "key" of the interval (its quarter, half hour, hour, day or ISO week, and the
UTC offset) changes: so a DST day has 23 or 25 hours, a repeated local hour on a fall-back night is two
buckets (told apart by their offsets), and a day that starts at 01:00 because midnight was skipped starts
there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from service.domain.instants import utc_datetime

Interval = Literal["15m", "30m", "hour", "day", "week"]
INTERVALS: tuple[Interval, ...] = ("15m", "30m", "hour", "day", "week")
QUARTER_MS = 15 * 60 * 1000
HOUR_MS = 4 * QUARTER_MS
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Bucket:
    start_ms: int  # the aligned local start, as an instant
    label: str  # that start in local ISO 8601 with its offset
    lo_ms: int  # what it covers of the requested range: [lo, hi)
    hi_ms: int


def _key(local: datetime, interval: Interval) -> tuple[object, ...]:
    offset = local.utcoffset()
    if interval == "15m":
        return (local.date(), local.hour, local.minute // 15, offset)
    if interval == "30m":
        return (local.date(), local.hour, local.minute // 30, offset)
    if interval == "hour":
        return (local.date(), local.hour, offset)
    if interval == "day":
        return (local.date(),)
    year, week, _ = local.isocalendar()
    return (year, week)


def buckets(start_ms: int, end_ms: int, interval: Interval, zone: ZoneInfo) -> list[Bucket]:
    """The buckets that cover [start, end), each clipped to it, first one starting at or before start."""
    if end_ms <= start_ms:
        return []
    quarter = start_ms - start_ms % QUARTER_MS
    key = _key(_local(quarter, zone), interval)
    # Walk back to where the first bucket begins: at most a week of quarters.
    first = quarter
    while True:
        before = first - QUARTER_MS
        if _key(_local(before, zone), interval) != key:
            break
        first = before
    starts = [first]
    t = quarter + QUARTER_MS
    while t < end_ms:
        next_key = _key(_local(t, zone), interval)
        if next_key != key:
            starts.append(t)
            key = next_key
        t += QUARTER_MS
    result = []
    for i, bucket_start in enumerate(starts):
        bucket_end = starts[i + 1] if i + 1 < len(starts) else end_ms
        result.append(
            Bucket(
                start_ms=bucket_start,
                label=_local(bucket_start, zone).isoformat(),
                lo_ms=max(bucket_start, start_ms),
                hi_ms=min(bucket_end, end_ms),
            )
        )
    return result


def bucket_count_bound(start_ms: int, end_ms: int, interval: Interval) -> int:
    """An upper bound of how many buckets a range makes, to refuse huge reports before building them."""
    width = {
        "15m": QUARTER_MS,
        "30m": 2 * QUARTER_MS,
        "hour": 4 * QUARTER_MS,
        "day": DAY_MS,
        "week": 7 * DAY_MS,
    }
    # +2: partial buckets at both ends; DST can add one bucket per transition, a handful a year.
    return (end_ms - start_ms) // width[interval] + 2


def _local(ms: int, zone: ZoneInfo) -> datetime:
    return utc_datetime(ms).astimezone(zone)


def quarters(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The whole UTC quarter hours inside [start, end), as [first, last): empty when first >= last."""
    first = -(-start_ms // QUARTER_MS) * QUARTER_MS
    last = end_ms - end_ms % QUARTER_MS
    return first, last


def hours(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The whole UTC hours inside [start, end), as [first, last)."""
    first = -(-start_ms // HOUR_MS) * HOUR_MS
    last = end_ms - end_ms % HOUR_MS
    return first, last


def days(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The whole UTC days inside [start, end), as [first, last)."""
    first = -(-start_ms // DAY_MS) * DAY_MS
    last = end_ms - end_ms % DAY_MS
    return first, last
