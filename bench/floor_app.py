"""The durable floor for bench/ingest.py (case f): the no-op endpoint plus the least a durable answer needs.

Each request's body is handed to one writer thread, which stores the bodies of all waiting requests in one
SQLite transaction (WAL, ``synchronous=FULL``, like ``calltrail serve``'s default) and wakes the event loop
once per group; the request is answered after the commit. No parsing, no validation, no indexes, no rate
limits, no metrics: what (b) could reach at most with group commit on this stack, so that b/f shows what
CallTrail's own work costs and f/a what durability costs.

    CALLTRAIL_FLOOR_DB=/tmp/floor.db .venv/bin/python -m uvicorn bench.floor_app:app --port 8001
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Waiting = tuple[bytes, "asyncio.Future[None]"]
_waiting: queue.SimpleQueue[Waiting] = queue.SimpleQueue()


def _answer(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def _write_groups(path: str, loop: asyncio.AbstractEventLoop) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    while True:
        group = [_waiting.get()]
        while True:
            try:
                group.append(_waiting.get_nowait())
            except queue.Empty:
                break
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO bodies (body) VALUES (?)", [(body,) for body, _ in group])
        db.execute("COMMIT")
        loop.call_soon_threadsafe(_answer, [future for _, future in group])


async def ingest(request: Request) -> Response:
    body = await request.body()
    future = asyncio.get_running_loop().create_future()
    _waiting.put((body, future))
    await future
    return JSONResponse({"status": "ok", "bytes": len(body)})


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    path = os.environ.get("CALLTRAIL_FLOOR_DB", "floor.db")
    loop = asyncio.get_running_loop()
    threading.Thread(target=_write_groups, args=(path, loop), name="floor-writer", daemon=True).start()
    yield


app = Starlette(routes=[Route("/v1/events", ingest, methods=["POST"])], lifespan=lifespan)
