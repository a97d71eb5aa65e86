"""Instants as the API writes them: ISO 8601 in UTC with a ``Z``, from epoch milliseconds or an aware
datetime (storage holds both today; this is the one place that turns either into text)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, UTC)
    return value.isoformat().replace("+00:00", "Z")
