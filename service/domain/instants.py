"""Instants at the edges: storage holds some as timezone-aware datetimes and some as epoch milliseconds, and
the API writes ISO 8601 in UTC with a ``Z``. These are the conversions, in one place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def epoch_ms(value: datetime) -> int: ...
@overload
def epoch_ms(value: None) -> None: ...
def epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else round(value.timestamp() * 1000)


def utc_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def iso(value: datetime | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, UTC)
    return value.isoformat().replace("+00:00", "Z")


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
