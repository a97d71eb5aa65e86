"""What the shape of event ids costs SQLite: random (UUIDv4) against time-ordered (UUIDv7) ids.

    .venv/bin/python bench/event_ids.py [--groups 300] [--group-size 400] [--repeat 2]

Stores the same kind of rows through the writer's own path (``store_new``, one transaction per group, as in
a group commit under load) into a fresh SQLite file with CallTrail's schema and the server's pragmas
(WAL, synchronous=FULL), once with random event ids and once with time-ordered ones, alternating, and
prints rows/s and microseconds per row for each. Page ids are random in both, 50 events to a page.

Why it matters: the unique index on (site, event id) is a B-tree; a random id lands on any of its leaf
pages, so a group of n rows rewrites about n index pages, while ids that begin with the time land together
at the index's end.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.admin.registry import add_site
from service.config import Settings
from service.storage import migrations
from service.storage.engine import SyncTransactor, make_engine
from service.storage.events import EventRow, store_new

START_MS = 1_790_000_000_000
URL = "https://crm.example.com/popup"
HASH = "#?mobile=13800000000&status=100&type=phone&agentEmail=agent@example.com"


def uuid7(ms: int) -> str:
    bits = random.getrandbits(74)
    return str(
        uuid.UUID(int=(ms << 80) | (0x7 << 76) | ((bits >> 62) << 64) | (0b10 << 62) | (bits & (2**62 - 1)))
    )


def make_rows(site_id: int, ids: str, count: int, first: int) -> list[EventRow]:
    rows: list[EventRow] = []
    page_id = ""
    for n in range(first, first + count):
        at = START_MS + n // 40  # 40 events a millisecond: 40,000 events/s
        if n % 50 == 0 or not page_id:
            page_id = str(uuid.uuid4())
        event_id = uuid7(at) if ids == "v7" else str(uuid.uuid4())
        raw = f'{{"id":"{event_id}","seq":{n % 50 + 1},"ts":{at},"type":"hash","hash":"{HASH}"}}'
        rows.append(
            EventRow(
                site_id=site_id,
                event_id=event_id,
                page_id=page_id,
                page_url=URL,
                seq=n % 50 + 1,
                type="hash",
                client_ts=at,
                sent_at=at,
                received_at=at,
                event_at=at,
                skew_ms=0,
                ts_flag=None,
                raw=raw,
            )
        )
    return rows


def run(ids: str, groups: int, group_size: int, directory: Path) -> float:
    path = directory / f"{ids}-{time.monotonic_ns()}.db"
    settings = Settings.from_env({"CALLTRAIL_DATABASE_URL": f"sqlite:///{path}"})
    migrations.upgrade(settings.database_url)
    setup = make_engine(settings, "write")
    site_id = add_site(setup, "bench", ["https://crm.example.com"]).id
    setup.dispose()
    transactor = SyncTransactor(make_engine(settings, "write"))
    batches = [make_rows(site_id, ids, group_size, g * group_size) for g in range(groups)]
    started = time.perf_counter()
    for batch in batches:
        assert len(store_new(transactor, batch)) == len(batch)
    seconds = time.perf_counter() - started
    transactor.dispose()
    return groups * group_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--group-size", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(
        f"$ .venv/bin/python bench/event_ids.py --groups {args.groups} --group-size {args.group_size}"
        f" --repeat {args.repeat}"
    )
    results: dict[str, list[float]] = {"v4": [], "v7": []}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeat):
            for ids in results:
                results[ids].append(run(ids, args.groups, args.group_size, Path(scratch)))
    total = args.groups * args.group_size
    for ids, rates in results.items():
        median = statistics.median(rates)
        shown = ", ".join(f"{r:,.0f}" for r in rates)
        print(
            f"{ids} event ids: {median:>9,.0f} rows/s median ({1e6 / median:.1f} us a row; runs: {shown};"
            f" {total:,} rows in groups of {args.group_size})"
        )
    print(f"v4/v7 time a row: {statistics.median(results['v7']) / statistics.median(results['v4']):.2f}")


if __name__ == "__main__":
    main()
