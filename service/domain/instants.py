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
