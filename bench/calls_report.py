"""The calls report (GET /v1/analytics/calls) over a million CCC call records, in-process: the median of N runs
of a 30-day hourly report and a 7-day daily one (Asia/Shanghai), goal < 100 ms each. Records are seeded with
bulk inserts straight into call_records (no push, no merge), their hours marked, then the rollups built once
(timed apart: what the first report after a bulk load, or `calltrail rollups`, pays).

    .venv/bin/python bench/calls_report.py                 # SQLite, /tmp/calltrail_bench_calls.db
    .venv/bin/python bench/calls_report.py --pg            # PostgreSQL, database calltrail_bench_calls
    .venv/bin/python bench/calls_report.py --reuse --runs 31  # the database of an earlier run as it is
    .venv/bin/python bench/calls_report.py --reuse --rebuild-rollups  # ... with its rollups built again
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import create_engine, text

from service.config import Settings
from service.domain.buckets import DAY_MS, Interval, buckets
from service.domain.instants import parse_iso
from service.projection import call_rollups
from service.reports.calls_report import CallsFilter, calls
from service.storage.engine import make_engine
from service.storage.migrations import upgrade

SQLITE_PATH = "/tmp/calltrail_bench_calls.db"
PG_ADMIN = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
PG_DATABASE = "calltrail_bench_calls"
END_MS = parse_iso("2026-11-01T00:00:00+08:00")
DAYS = 30
COLUMNS = (
    "sdk_app_id", "session_id", "channel", "direction", "agent_email", "start_at", "queued_at", "ring_at",
    "accept_at", "end_at", "queue_s", "end_status", "hung_up_by", "skill_group_id", "skill_group_name",
    "transfers", "ivr_keys", "satisfaction", "record_ids", "record_urls", "recordings", "sources", "raw_count",
    "updated_at", "sort_at",
)  # fmt: skip
STATUSES = [("ok", 78), ("ivrGiveUp", 5), ("waitingGiveUp", 7), ("ringingGiveUp", 3), ("noSeatOnline", 2),
            ("notWorkTime", 3), ("error", 2)]  # fmt: skip
GROUPS = [(1000 + i, f"group {i}") for i in range(10)]
AGENTS = [f"agent{i:03}@center.example" for i in range(200)]
APPS = (1400000001, 1400000002)


def records(count: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """Call records over the 30 days before END_MS: 90 % inbound, 80 % phone, 10 skill groups, 200 agents."""
    rng = random.Random(seed)
    start_s = (END_MS - DAYS * DAY_MS) // 1000
    span_s = DAYS * 86_400
    names, weights = zip(*STATUSES, strict=True)
    satisfied = [orjson.dumps([{"key": k, "label": None}]).decode() for k in ("1", "2", "3")]
    for i in range(count):
        start = start_s + rng.randrange(span_s)
        status = rng.choices(names, weights)[0]
        queued = start + rng.randrange(5, 40) if status not in ("ivrGiveUp", "notWorkTime") else None
        answered = status == "ok"
        accept = (queued or start) + int(rng.expovariate(1 / 25)) if answered else None
        end = (accept or queued or start) + rng.randrange(1, 600)
        queue_s = None if queued is None else (accept or end) - queued
        group = rng.choice(GROUPS) if queued else (None, None)
        agent = rng.choice(AGENTS) if answered else None
        channel = rng.choices(("phone", "video", "chat"), (8, 1, 1))[0]
        sat = rng.choice(satisfied) if answered and rng.random() < 0.3 else "[]"
        yield (
            APPS[i % 2], f"s{seed}-{i}", channel, "inbound" if rng.random() < 0.9 else "outbound", agent,
            start * 1000, None if queued is None else queued * 1000, None, None if accept is None else accept * 1000,
            end * 1000, queue_s, status, rng.choice(("user", "seat", "system")), group[0], group[1],
            1 if rng.random() < 0.05 else 0, "[]", sat, "[]", "[]", "[]", '["cdr"]', 1, END_MS, start * 1000,
        )  # fmt: skip


def seed_sqlite(path: str, count: int) -> None:
    conn = sqlite3.connect(path)
    placeholders = ", ".join("?" * len(COLUMNS))
    with conn:
        conn.executemany(
            f"INSERT INTO call_records ({', '.join(COLUMNS)}) VALUES ({placeholders})", records(count, 1)
        )
    conn.close()


def seed_pg(url: str, count: int) -> None:
    engine = create_engine(url)
    raw: Any = engine.raw_connection()
    try:
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY call_records ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in records(count, 1):
                copy.write_row(row)
        raw.commit()
        with raw.cursor() as cursor:
            cursor.execute("ANALYZE call_records")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


def timed(function: Callable[[], object], runs: int) -> list[float]:
    found = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        found.append((time.perf_counter() - began) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (127.0.0.1:5432) instead of SQLite")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database of an earlier run")
    parser.add_argument(
        "--rebuild-rollups", action="store_true", help="with --reuse: build every rollup again"
    )
    args = parser.parse_args()
    if args.pg:
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DATABASE
        if not args.reuse:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE}"))
                conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
            admin.dispose()
    else:
        url = f"sqlite:///{SQLITE_PATH}"
        if not args.reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(SQLITE_PATH + suffix).unlink(missing_ok=True)
    engine = make_engine(Settings(database_url=url), "write")
    if not args.reuse:
        upgrade(url)
        began = time.monotonic()
        (seed_pg if args.pg else seed_sqlite)(url if args.pg else SQLITE_PATH, args.records)
        seeded_s = time.monotonic() - began
        began = time.monotonic()
        with engine.begin() as conn:
            marks = call_rollups.mark_history(conn)
        built = call_rollups.refresh(engine, "day", 0, call_rollups.FAR_FUTURE_MS)
        built += call_rollups.refresh(engine, "hour", 0, call_rollups.FAR_FUTURE_MS)
        print(f"seeded {args.records:,} call records in {seeded_s:.1f} s; rollups of {built:,} days and other "
              f"hours, of each app and of all apps ({marks:,} marks), built in {time.monotonic() - began:.1f} s")  # fmt: skip
    if args.reuse and args.rebuild_rollups:
        began = time.monotonic()
        with engine.begin() as conn:
            call_rollups.invalidate(conn)
        built = call_rollups.refresh(engine, "day", 0, call_rollups.FAR_FUTURE_MS)
        built += call_rollups.refresh(engine, "hour", 0, call_rollups.FAR_FUTURE_MS)
        print(f"rollups of {built:,} days and other hours built in {time.monotonic() - began:.1f} s")
    zone = ZoneInfo("Asia/Shanghai")
    cases: dict[str, tuple[int, Interval]] = {
        "30 days by hour": (END_MS - 30 * DAY_MS, "hour"),
        "7 days by day": (END_MS - 7 * DAY_MS, "day"),
    }
    print(f"$ .venv/bin/python bench/calls_report.py{' --pg' if args.pg else ''} --runs {args.runs}")
    for name, (start, interval) in cases.items():
        report_buckets = buckets(start, END_MS, interval, zone)
        window = CallsFilter(start, END_MS)
        _, totals, _ = calls(engine, window, report_buckets, 20)
        runs = timed(lambda: calls(engine, window, report_buckets, 20), args.runs)  # noqa: B023
        print(
            f"{name:16} median {statistics.median(runs):7.1f} ms  min {min(runs):7.1f} ms  "
            f"max {max(runs):7.1f} ms  ({totals['offered']:,} calls offered)"
        )
    # An agent's month reads the agent's records on their index; a ragged range adds raw edges.
    agent_window = CallsFilter(END_MS - 30 * DAY_MS, END_MS, agent=AGENTS[7])
    agent_buckets = buckets(agent_window.start_ms, END_MS, "day", zone)
    runs = timed(lambda: calls(engine, agent_window, agent_buckets, 20), args.runs)
    print(f"{'one agent, 30 d':16} median {statistics.median(runs):7.1f} ms  min {min(runs):7.1f} ms")
    ragged = CallsFilter(END_MS - 30 * DAY_MS + 1_234_567, END_MS - 987_654)
    ragged_buckets = buckets(ragged.start_ms, ragged.end_ms, "hour", zone)
    runs = timed(lambda: calls(engine, ragged, ragged_buckets, 20), args.runs)
    print(f"{'30 d ragged, hour':16} median {statistics.median(runs):7.1f} ms  min {min(runs):7.1f} ms")
    # Live traffic: a push marks its hour and day dirty; the next report rebuilds both (the hour from its
    # records, the day from its hours) before it reads.
    month = CallsFilter(END_MS - 30 * DAY_MS, END_MS)
    month_buckets = buckets(month.start_ms, END_MS, "hour", zone)
    last_hour = END_MS - 3_600_000
    dirty_runs = []
    for _ in range(args.runs):
        with engine.begin() as conn:
            call_rollups.mark(conn, call_rollups.marks_for([(APPS[0], last_hour)]))
        began = time.perf_counter()
        calls(engine, month, month_buckets, 20)
        dirty_runs.append((time.perf_counter() - began) * 1000)
    print(
        f"{'30 d, 1 h dirty':16} median {statistics.median(dirty_runs):7.1f} ms  min {min(dirty_runs):7.1f} ms"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
