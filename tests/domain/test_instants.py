"""Instants: epoch milliseconds in storage and code, text at the edges, converted in domain/instants.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.domain.instants import epoch_ms, iso, iso_offset, parse_iso, utc_datetime

MS = 1_793_520_000_250  # 2026-11-01T08:00:00.250Z


def test_iso_is_the_answers_form() -> None:
    assert iso(MS) == "2026-11-01T08:00:00.250000Z"
    assert iso(1_793_520_000_000) == "2026-11-01T08:00:00Z"  # no fraction when there is none
    assert iso(1_793_520_000_001) == "2026-11-01T08:00:00.001000Z"
    assert iso(None) is None


def test_iso_offset_is_the_clis_form() -> None:
    assert iso_offset(MS) == "2026-11-01T08:00:00.250000+00:00"
    assert iso_offset(MS, timespec="seconds") == "2026-11-01T08:00:00+00:00"


def test_epoch_ms_floors_in_integer_arithmetic() -> None:
    assert epoch_ms(datetime(2026, 11, 1, 8, 0, 0, 250999, tzinfo=UTC)) == MS
    assert epoch_ms(datetime(2026, 11, 1, 16, 0, 0, 250000, tzinfo=timezone(timedelta(hours=8)))) == MS
    assert epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)) == -1
    assert epoch_ms(None) is None
    with pytest.raises(ValueError, match="aware"):
        epoch_ms(datetime(2026, 11, 1))


def test_utc_datetime_and_epoch_ms_round_trip_every_millisecond_nearby() -> None:
    for ms in range(MS - 1500, MS + 1500):
        moment = utc_datetime(ms)
        assert moment.tzinfo is UTC
        assert moment.microsecond % 1000 == 0
        assert epoch_ms(moment) == ms
        assert parse_iso(iso(ms) or "") == ms
    assert utc_datetime(None) is None


def test_parse_iso_reads_offsets_and_takes_utc_without_one() -> None:
    assert parse_iso("2026-11-01T08:00:00.250Z") == MS
    assert parse_iso("2026-11-01T16:00:00.250+08:00") == MS
    assert parse_iso("2026-11-01T08:00:00.250") == MS
    assert parse_iso("2026-11-01") == 1_793_491_200_000
    # Exact where a float timestamp times 1000 would land a millisecond short.
    assert all(parse_iso(f"2025-11-24T00:00:00.{n:03d}Z") % 1000 == n for n in range(1000))
    with pytest.raises(ValueError, match="yesterday"):
        parse_iso("yesterday")
