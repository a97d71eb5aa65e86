"""CCC Data Push receiver throughput: a real `calltrail serve` (one worker, uvicorn, loopback), one basic-auth
CCC app, N concurrent clients each posting CDR pushes (a new session each, with its X-TCCC-PUSH-UUID) and
waiting for each answer; every 200 is durable (stored and projected into call_records in the push's own
commit). Prints pushes/s and the latency p50/p99, on SQLite (default) or PostgreSQL (--pg).

    .venv/bin/python bench/ccc_push.py --clients 16 --seconds 20
    .venv/bin/python bench/ccc_push.py --pg --clients 16 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from served import free_port  # bench/served.py: scripts here run as `python bench/<name>.py`
from sqlalchemy import create_engine, func, select, text

from service.config import Settings
from service.storage.engine import make_engine
from service.storage.schema import call_records

SQLITE_PATH = "/tmp/calltrail_bench_push.db"
PG_ADMIN = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
PG_DATABASE = "calltrail_bench_push"
APP = 1400000001


def cdr(rng: random.Random) -> dict[str, Any]:
    start = 1764000000 + rng.randrange(86_400)
    return {
        "SdkAppId": APP, "SessionId": str(uuid.uuid4()), "Caller": "008613012345678", "Callee": "02566666666",
        "Direction": 0, "StartTimestamp": start, "QueuedTimestamp": start + 10, "RingTimestamp": start + 15,
        "AcceptTimestamp": start + 18, "EndedTimestamp": start + 78, "Duration": 60, "EndStatusString": "ok",
        "HungUpSide": "user", "QueuedSkillGroupId": 7, "QueuedSkillGroupName": "Sales",
        "SeatUser": {"Mail": "ann@x.com", "UserId": "ann@x.com"},
        "ServeParticipants": [{"Mail": "ann@x.com", "Type": "staffSeat", "StartTimestamp": start + 15,
                               "RingTimestamp": start + 15, "AcceptTimestamp": start + 18,
                               "EndedTimestamp": start + 78, "EndStatusString": "ok", "RecordId": "r"}],
    }  # fmt: skip


async def client(
    base: str, auth: str, until: float, latencies: list[float], errors: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while time.perf_counter() < until:
            body = orjson.dumps(cdr(rng))
            began = time.perf_counter()
            response = await http.post(
                "/v1/ccc/push?action=cdr&version=1",
                content=body,
                headers={"authorization": auth, "content-type": "application/json",
                         "x-tccc-push-uuid": str(uuid.uuid4())},
            )  # fmt: skip
            latencies.append(time.perf_counter() - began)
            if response.status_code != 200:
                errors.append(response.status_code)


def run(cmd: list[str], env: dict[str, str]) -> str:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    if args.pg:
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DATABASE
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE}"))
            conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
        admin.dispose()
    else:
        url = f"sqlite:///{SQLITE_PATH}"
        for suffix in ("", "-wal", "-shm"):
            Path(SQLITE_PATH + suffix).unlink(missing_ok=True)
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": url, "CALLTRAIL_LOG_LEVEL": "warning",
           "CALLTRAIL_CCC_PUSH_RATE": "off", "CALLTRAIL_WORKERS": "1"}  # fmt: skip
    calltrail = [sys.executable, "-m", "service"]
    run([*calltrail, "migrate"], env)
    added = orjson.loads(run([*calltrail, "ccc", "add", str(APP), "--auth", "basic", "--json"], env))
    user, password = added["username"], added["password"]
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    port = free_port()
    log = Path(f"/tmp/calltrail-bench-push-{port}.log")
    server = subprocess.Popen(
        [*calltrail, "serve", "--port", str(port)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit(f"the server did not get ready; see {log}")
        latencies: list[float] = []
        errors: list[int] = []

        async def clients() -> float:
            began = time.perf_counter()
            until = began + args.seconds
            await asyncio.gather(
                *(client(base, auth, until, latencies, errors, i) for i in range(args.clients))
            )
            return time.perf_counter() - began

        elapsed = asyncio.run(clients())
    finally:
        server.terminate()
        server.wait(timeout=60)
    engine = make_engine(Settings(database_url=url))
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(call_records)).scalar_one()
    engine.dispose()
    ordered = sorted(latencies)
    print(f"$ .venv/bin/python bench/ccc_push.py{' --pg' if args.pg else ''} --clients {args.clients} "
          f"--seconds {args.seconds:g}")  # fmt: skip
    print(
        f"{'PostgreSQL' if args.pg else 'SQLite'}: {len(latencies) / elapsed:,.0f} pushes/s "
        f"({len(latencies):,} in {elapsed:.1f} s, {args.clients} clients), "
        f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {ordered[int(len(ordered) * 0.99)] * 1000:.1f} ms; "
        f"{len(errors)} not 200; {stored:,} call records stored"
    )


if __name__ == "__main__":
    main()
