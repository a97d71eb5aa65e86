"""Instants: storage keeps every one as integer milliseconds since the epoch (UTC), and so does the code in
between. At the edges they become text: the API writes ISO 8601 in UTC with a ``Z``, the CLI with
``+00:00``, and query parameters and CLI options are read as ISO 8601 (without an offset it is UTC). These
are the conversions between milliseconds and datetimes or text, in one place: nothing else does them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import overload

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@overload
def epoch_ms(value: datetime) -> int: ...
@overload
def epoch_ms(value: None) -> None: ...
def epoch_ms(value: datetime | None) -> int | None:
    """The millisecond an aware datetime falls in. Integer arithmetic: a float timestamp times 1000 can land
    a millisecond short."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("epoch_ms needs an aware datetime")
    return (value - _EPOCH) // _MS


@overload
def utc_datetime(ms: int) -> datetime: ...
@overload
def utc_datetime(ms: None) -> None: ...
def utc_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def iso(ms: int | None) -> str | None:
    """The API's form: ``2026-11-01T08:00:00.250000Z`` (microseconds when there is a fraction), or None."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def iso_offset(ms: int, timespec: str = "auto") -> str:
    """The CLI's form: ``2026-11-01T08:00:00.250000+00:00``, to ``timespec`` as ``datetime.isoformat``."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec=timespec)


def parse_iso(text: str) -> int:
    """ISO 8601 text as milliseconds, without an offset in UTC; ValueError when it is not ISO 8601."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return epoch_ms(moment)


@overload
def ms_from_s(seconds: int) -> int: ...
@overload
def ms_from_s(seconds: None) -> None: ...
def ms_from_s(seconds: int | None) -> int | None:
    """Unix seconds (what CCC's records and APIs carry) as epoch milliseconds (what CallTrail stores)."""
    return None if seconds is None else seconds * 1000


def s_floor(ms: int) -> int:
    """Epoch milliseconds as whole Unix seconds, rounded down (a window's start)."""
    return ms // 1000


def s_ceil(ms: int) -> int:
    """Epoch milliseconds as whole Unix seconds, rounded up (a window's end)."""
    return -(-ms // 1000)


def now_ms() -> int:
    """The wall clock as epoch milliseconds, exactly (integer nanoseconds; a float would round)."""
    return time.time_ns() // 1_000_000


_DURATION_UNITS_MS = {"h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
MAX_DURATION_MS = 3650 * 86_400_000  # ten years


def parse_duration_ms(text: str) -> int:
    """``36h``, ``90d`` or ``12w`` as milliseconds (a key's lifetime); ValueError names the form."""
    value = text.strip().lower()
    unit = _DURATION_UNITS_MS.get(value[-1:]) if value else None
    digits = value[:-1]
    if unit is None or not digits.isdigit() or len(digits) > 6 or int(digits) == 0:
        raise ValueError(f"{text!r} is not a duration: expected a count and h, d or w, like 36h, 90d or 12w")
    ms = int(digits) * unit
    if ms > MAX_DURATION_MS:
        raise ValueError(f"{text!r} is longer than ten years")
    return ms
