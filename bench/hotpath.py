"""CPU per request of POST /v1/events, by thread, without sockets: where the ingestion hot path spends.

bench/ingest.py measures the whole stack through uvicorn and wrk, whose figures move by up to 20 % between
runs on a shared machine and mix the server's CPU with the load generator's. This script drives the ASGI
application in-process instead: ``--concurrency`` coroutines each send a 1-event batch (the body of
bench/events.lua's hash events), wait for the answer and send the next, for ``--seconds``. It prints the CPU
time per request of the thread that serves requests (the event loop) and of every other thread (the
writer), from each thread's own CPU clock, so changes of a few microseconds per request can be compared.
uvicorn's own work (sockets, HTTP parsing: about 30 us per request here) is not in these figures; the
load's own (building each body, about 5 us) is, in the event loop's: compare figures with each other, and
take old and new code one after the other, since the machine's speed drifts by about 10 % over minutes.

    .venv/bin/python bench/hotpath.py                      # CallTrail on a fresh SQLite file
    .venv/bin/python bench/hotpath.py --backend postgresql # on a scratch database of --pg-url's server
    .venv/bin/python bench/hotpath.py --app noop           # bench/noop_app.py, the ceiling of the stack
    .venv/bin/python bench/hotpath.py --repeat 5 --events 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ORIGIN = "https://bench.local"
Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


_ids = itertools.count(int(time.time()) << 20)


def fake_uuid() -> str:
    # uuid.uuid4() reads the system's random source: about 4 us, which would be counted as the server's.
    n = next(_ids)
    return f"{n >> 48 & 0xFFFFFFFF:08x}-{n >> 32 & 0xFFFF:04x}-4000-8000-{n & 0xFFFFFFFFFFFF:012x}"


def batch(site_key: str, events: int) -> bytes:
    now = int(time.time() * 1000)
    parts = []
    for seq in range(1, events + 1):
        parts.append(
            f'{{"id":"{fake_uuid()}","seq":{seq},"ts":{now - 50},"type":"hash","trigger":"hashchange",'
            f'"hash":"#?mobile=18880000{seq % 1000:03d}&status=100&type=phone'
            f'&agentEmail=agent-1@bench.local&sdkAppId=1400000001"}}'
        )
    return (
        f'{{"v":1,"site":"{site_key}","page":{{"id":"{fake_uuid()}","url":"https://bench.local/t/"}},'
        f'"sent_at":{now},"events":[{",".join(parts)}]}}'
    ).encode()


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds used so far by the live threads of this process, summed by thread name (AnyIO's worker
    threads share one). A thread that ends during a run takes its CPU time with it: none does in this
    benchmark's runs, whose threads (the loop, the writer, the thread pool) live as long as the app."""
    used: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            seconds = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, ProcessLookupError):  # it ended meanwhile
            continue
        used[thread.name] = used.get(thread.name, 0.0) + seconds
    return used


async def one_request(app: Asgi, body: bytes) -> int:
    """POST body to /v1/events; the answer's status code."""
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # the request stays connected until answered
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-length", str(len(body)).encode()),
            (b"origin", ORIGIN.encode()),
            (b"content-type", b"text/plain"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return status


async def drive(app: Asgi, site_key: str, events: int, concurrency: int, seconds: float) -> tuple[int, int]:
    """Requests answered with 200 and with anything else, sending for ``seconds``."""
    deadline = time.monotonic() + seconds
    counts = [0, 0]

    async def client() -> None:
        while time.monotonic() < deadline:
            status = await one_request(app, batch(site_key, events))
            counts[0 if status == 200 else 1] += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return counts[0], counts[1]


@contextlib.contextmanager
def scratch_database(backend: str, tmp: str, admin_url: str) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in ``tmp``, or a PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp}/hotpath.db"
        return
    from sqlalchemy import create_engine, make_url, text

    name = f"calltrail_hotpath_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


async def run(args: argparse.Namespace) -> list[dict[str, float]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        site_key = "noop"
        if args.app == "noop":
            # Imported by name: mypy checks bench/ as loose files, and would see this module twice.
            app: Any = importlib.import_module("bench.noop_app").app
            lifespan: Any = None
        else:
            from service.admin.registry import add_site
            from service.app import create_app
            from service.config import Settings
            from service.storage.engine import make_engine
            from service.storage.migrations import upgrade

            url = stack.enter_context(scratch_database(args.backend, tmp, args.pg_url))
            os.environ["CALLTRAIL_DATABASE_URL"] = url
            # As in bench/ingest.py: the limiter runs, the load never reaches it; the environment may differ.
            os.environ.setdefault("CALLTRAIL_LOG_LEVEL", "warning")
            os.environ.setdefault("CALLTRAIL_RATE_LIMIT_PER_IP", "1000000/second")
            os.environ.setdefault("CALLTRAIL_RATE_LIMIT_PER_SITE", "1000000/second")
            upgrade(url)
            settings = Settings.from_env()
            engine = make_engine(settings, "read")
            site_key = add_site(engine, "bench", [ORIGIN]).site_key
            engine.dispose()
            app = create_app(settings)
            lifespan = app.router.lifespan_context(app)
        if lifespan is not None:
            await lifespan.__aenter__()
        try:
            await drive(app, site_key, args.events, args.concurrency, 1.0)  # warm-up
            for _ in range(args.repeat):
                before = thread_cpu_s()
                started = time.monotonic()
                ok, other = await drive(app, site_key, args.events, args.concurrency, args.seconds)
                wall = time.monotonic() - started
                after = thread_cpu_s()
                per_request = {
                    name: (after[name] - before.get(name, 0.0)) / max(ok + other, 1) * 1e6 for name in after
                }
                per_request["requests/s"] = (ok + other) / wall
                per_request["non-200"] = other
                results.append(per_request)
                print(
                    f"  {ok + other:>7} requests ({other} not 200), {(ok + other) / wall:>8.0f}/s; "
                    + ", ".join(
                        f"{name} {us:.1f} us/req"
                        for name, us in sorted(per_request.items())
                        if name not in ("requests/s", "non-200") and us >= 0.5
                    ),
                    flush=True,
                )
        finally:
            if lifespan is not None:
                await lifespan.__aexit__(None, None, None)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", choices=["calltrail", "noop"], default="calltrail")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://root@127.0.0.1:5432/postgres",
        help="an administrative connection to the PostgreSQL server that gets the scratch database",
    )
    parser.add_argument("--events", type=int, default=1, help="events per request")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    results = asyncio.run(run(args))
    main_thread = threading.main_thread().name
    loop_us = statistics.median(r[main_thread] for r in results)
    others = statistics.median(
        sum(us for name, us in r.items() if name not in (main_thread, "requests/s", "non-200"))
        for r in results
    )
    print(
        f"median of {len(results)}: event loop thread {loop_us:.1f} us/request, "
        f"other threads {others:.1f} us/request"
    )


if __name__ == "__main__":
    main()
