"""Two reports timed in-process, without HTTP: the 30-day hourly inbound report and a first page of 50
sessions, on a center made by bench/center.py. bench/query.py measures through a real server, where the
loopback and the server's scheduling add noise; this one shows the reports' own cost, for comparing two
checkouts (run it in each, alternately).

    .venv/bin/python bench/center.py --url sqlite:////tmp/center100k.db --sessions 100000 --agents 100
    .venv/bin/python bench/reports_inprocess.py --url sqlite:////tmp/center100k.db --calls 30
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from service.config import Settings
from service.domain.buckets import buckets
from service.domain.formulas import Thresholds
from service.domain.sessions import Timeouts
from service.reports.filters import ReportFilter
from service.reports.inbound import inbound
from service.reports.sessions import SessionFilter, session_page
from service.storage.engine import make_engine

# bench/center.py's history ends here.
END_MS = int(datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=8))).timestamp() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    engine = make_engine(Settings(database_url=args.url))
    start = END_MS - 30 * 86_400_000
    report_buckets = buckets(start, END_MS, "hour", ZoneInfo("Asia/Shanghai"))
    thresholds = Thresholds(20, 5)
    timeouts = Timeouts(600_000, 14_400_000)
    inbound(engine, ReportFilter(start, END_MS), report_buckets, thresholds)  # builds the rollups once

    report_s: list[float] = []
    for _ in range(args.calls):
        began = time.perf_counter()
        inbound(engine, ReportFilter(start, END_MS), report_buckets, thresholds)
        report_s.append(time.perf_counter() - began)
    page_s: list[float] = []
    for _ in range(args.calls):
        began = time.perf_counter()
        with engine.connect() as conn:
            list(session_page(conn, SessionFilter(), now_ms=END_MS, timeouts=timeouts, after=None, limit=51))
        page_s.append(time.perf_counter() - began)
    engine.dispose()
    print(f"$ .venv/bin/python bench/reports_inprocess.py --url {args.url} --calls {args.calls}")
    for name, seconds in (("inbound, 30 days by hour", report_s), ("sessions, first page of 50", page_s)):
        print(
            f"{name:28} min {min(seconds) * 1000:7.2f} ms  median {statistics.median(seconds) * 1000:7.2f} ms"
        )


if __name__ == "__main__":
    main()
