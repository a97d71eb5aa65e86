"""Query API benchmark: each endpoint against a center made by bench/center.py, through a real server.

Starts `calltrail serve` (1 worker, access log off) on the database, creates a read key, and for each
endpoint makes one cold call (the first, which builds the rollups it needs) and then ``--runs`` timed calls,
printing the median and p95 wall time per request as the client sees it (loopback HTTP included).

    .venv/bin/python bench/center.py --url sqlite:////tmp/center.db
    .venv/bin/python bench/query.py --url sqlite:////tmp/center.db
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from served import served  # bench/served.py: scripts here run as `python bench/<name>.py`

END = "2026-11-01T00:00:00+08:00"
MONTH = {"from": "2026-10-02T00:00:00+08:00", "to": END}
DAY = {"from": "2026-10-31T00:00:00+08:00", "to": END}
CASES: list[tuple[str, str, dict[str, str]]] = [
    ("inbound, 30 days by hour, Asia/Shanghai", "/v1/analytics/inbound", {**MONTH, "interval": "hour", "tz": "Asia/Shanghai"}),
    ("inbound, 30 days by day", "/v1/analytics/inbound", {**MONTH, "interval": "day", "tz": "Asia/Shanghai"}),
    ("inbound, 1 day by 15 min", "/v1/analytics/inbound", {**DAY, "interval": "15m", "tz": "Asia/Shanghai"}),
    ("inbound, 30 days, one agent", "/v1/analytics/inbound", {**MONTH, "interval": "day", "agent": "agent007@center.example"}),
    ("agents, 30 days", "/v1/analytics/agents", MONTH),
    ("agents, 30 days, channel im", "/v1/analytics/agents", {**MONTH, "channel": "im"}),
    ("sessions, first page of 50", "/v1/sessions", {"limit": "50"}),
    ("sessions, one agent, page of 50", "/v1/sessions", {"agent": "agent042@center.example", "limit": "50"}),
    ("sessions, a day's not answered, 50", "/v1/sessions", {**DAY, "outcome": "not_answered", "limit": "50"}),
    ("audit, page of 50", "/v1/audit", {**DAY, "limit": "50"}),
    ("cards, 1 day", "/v1/analytics/cards", DAY),
    ("cards, 30 days", "/v1/analytics/cards", MONTH),
    ("outbound, 30 days", "/v1/analytics/outbound", MONTH),
    ("live", "/v1/live", {}),
    ("quality, 1 day", "/v1/quality", DAY),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with served(args.url, "bench") as (base, key):
        print(f"$ .venv/bin/python bench/query.py --url {args.url} --runs {args.runs}")
        print(f"{'case':40} {'cold ms':>9} {'median ms':>10} {'p95 ms':>8}  size")
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=600) as client:
            for name, path, params in CASES:
                started = time.perf_counter()
                response = client.get(path, params=params)
                cold = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, (path, response.status_code, response.text[:500])
                times = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    response = client.get(path, params=params)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
                p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
                print(
                    f"{name:40} {cold:9.1f} {statistics.median(times):10.1f} {p95:8.1f}  {len(response.content):,} B"
                )


if __name__ == "__main__":
    main()
