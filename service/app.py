"""The ASGI application: routes, middleware, error handlers, and the lifespan that owns the writer."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from service import metrics
from service.config import Settings
from service.domain.pii import PiiPolicy
from service.domain.sessions import Timeouts
from service.http import dashboard, health, observability, openapi, query, shim
from service.http.errors import EXCEPTION_HANDLERS
from service.http.events import INGEST_PATH, IngestEndpoint
from service.http.headers import AllowedHosts, redirect_slashes, with_default_headers
from service.http.observability import RequestMetricsMiddleware
from service.http.ratelimit import RateLimits
from service.http.state import AppState
from service.storage.engine import asyncpg_dsn, is_sqlite_url, make_engine, make_transactor
from service.storage.loop_writer import LoopEventWriter, ProjectionThread
from service.storage.migrations import check_current
from service.storage.projector import QueuedProjection
from service.storage.registry import SiteDirectory
from service.storage.writer import EventWriter

log = logging.getLogger("calltrail")

WRITER_DRAIN_TIMEOUT_S = 60.0
# SQLite's writer thread lets go of the GIL for each database call and must take it back from the thread that
# parses requests, which by default keeps it up to 5 ms: 1 ms carried about 10 % more events per second on
# SQLite in bench/ingest.py. PostgreSQL's writer thread gained another 7-10 % in (b) at 0.5 ms; since its
# commits moved onto the event loop only the projection's thread is left to hand the GIL to, and 0.5 ms read
# 10,129 / 9,566 requests/s in (b) against 9,885 / 9,146 at 5 ms (docs/design.md, "The ingestion hot path").
SQLITE_GIL_SWITCH_INTERVAL_S = 0.001
POSTGRES_GIL_SWITCH_INTERVAL_S = 0.0005
# The cyclic garbage collector, at Python's default thresholds, cost the thread serving requests more than
# any part of CallTrail's own work: with dozens of requests waiting for their commit, young objects survive
# into the older generations, and each full collection walks every object the process ever made. After
# startup the process freezes what exists (modules, engines, caches: it stays for the process's life) out of
# the collector's sight, and collects less often. Measured in-process: 243 to 149 us of CPU per 1-event
# request (docs/design.md, "The ingestion hot path").
GC_THRESHOLDS = (10_000, 50, 100)


class CallTrailApp(Starlette):
    """Starlette, except that ingestion goes to its endpoint before Starlette's middleware and routing, which
    cost more per request than the ingestion's own work (service/http/events.py says how it does without).

    Every request's Host is checked first (``CALLTRAIL_ALLOWED_HOSTS``); every answer but ingestion's, which
    sets them itself, gets the headers of ``http/headers.py``."""

    _ingest = IngestEndpoint()

    def __init__(self, *args: Any, allowed_hosts: AllowedHosts, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_hosts = allowed_hosts
        redirect_slashes(self.router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allowed_hosts.admits(scope):
            await self.allowed_hosts.refuse(send)
            return
        # uvicorn puts --root-path in front of the path (Starlette's router takes it off again).
        if scope["type"] == "http" and scope["path"] == scope.get("root_path", "") + INGEST_PATH:
            scope["app"] = self
            await self._ingest(scope, receive, send)
        elif scope["type"] == "http":
            await super().__call__(scope, receive, with_default_headers(send))
        else:
            await super().__call__(scope, receive, send)


def session_timeouts(settings: Settings) -> Timeouts:
    return Timeouts(settings.ringing_timeout_s * 1000, settings.connected_timeout_s * 1000)


def pii_policy(settings: Settings) -> PiiPolicy:
    return PiiPolicy(settings.pii_mode, settings.pii_key.encode())


def make_writer(settings: Settings, sqlite: bool) -> EventWriter | LoopEventWriter:
    """SQLite's writer is a thread; PostgreSQL's commits on the serving event loop (start it there), with
    the projection in a thread of its own."""
    projection = QueuedProjection(session_timeouts(settings), settings.projection_batch)
    if sqlite:
        return EventWriter(
            make_transactor(settings),
            max_batch=settings.writer_max_batch,
            queue_limit=settings.writer_queue_limit,
            idle_work=projection,
            idle_share=settings.projection_share,
        )
    return LoopEventWriter(
        asyncpg_dsn(settings.database_url),
        connections=settings.writer_connections,
        max_batch=settings.writer_max_batch,
        queue_limit=settings.writer_queue_limit,
        projection=ProjectionThread(make_transactor(settings), projection, settings.projection_share),
    )


def create_app(settings: Settings | None = None) -> CallTrailApp:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sqlite = is_sqlite_url(settings.database_url)
        sys.setswitchinterval(SQLITE_GIL_SWITCH_INTERVAL_S if sqlite else POSTGRES_GIL_SWITCH_INTERVAL_S)
        read_engine = make_engine(settings, "read")
        try:
            check_current(read_engine)
            writer = make_writer(settings, sqlite)
            writer.start()
            try:
                app.state.calltrail = AppState(
                    settings=settings,
                    read_engine=read_engine,
                    writer=writer,
                    sites=SiteDirectory(read_engine, settings.site_cache_s),
                    rate_limits=RateLimits(settings.rate_limit_per_ip, settings.rate_limit_per_site),
                    pii=pii_policy(settings),
                    timeouts=session_timeouts(settings),
                )
                gc.freeze()
                gc.set_threshold(*GC_THRESHOLDS)
                yield
            finally:
                # Uvicorn has finished the requests in flight by now; commit whatever they left queued.
                if isinstance(writer, LoopEventWriter):
                    await writer.close(WRITER_DRAIN_TIMEOUT_S)
                else:
                    writer.close(WRITER_DRAIN_TIMEOUT_S)
        finally:
            read_engine.dispose()
            metrics.forget_process(os.getpid())

    routes: list[BaseRoute] = [*query.routes, *health.routes, *observability.routes]
    routes += openapi.routes
    routes += shim.routes
    routes += dashboard.routes
    return CallTrailApp(
        routes=routes,
        middleware=[
            Middleware(RequestMetricsMiddleware),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        allowed_hosts=AllowedHosts(settings.allowed_hosts),
    )
