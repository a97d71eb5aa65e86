"""The ASGI application: routes, middleware, error handlers, and the lifespan that owns the writer."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from service import metrics
from service.config import Settings
from service.http import events, health, observability
from service.http.errors import EXCEPTION_HANDLERS
from service.http.ingest_cors import IngestCorsMiddleware
from service.http.observability import RequestMetricsMiddleware
from service.http.ratelimit import RateLimits
from service.http.state import AppState
from service.storage.engine import make_engine, make_transactor
from service.storage.migrations import check_current
from service.storage.registry import SiteDirectory
from service.storage.writer import EventWriter

log = logging.getLogger("calltrail")

WRITER_DRAIN_TIMEOUT_S = 60.0


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        read_engine = make_engine(settings, "read")
        try:
            check_current(read_engine)
            writer = EventWriter(
                make_transactor(settings),
                max_batch=settings.writer_max_batch,
                queue_limit=settings.writer_queue_limit,
            )
            writer.start()
            try:
                app.state.calltrail = AppState(
                    settings=settings,
                    read_engine=read_engine,
                    writer=writer,
                    sites=SiteDirectory(read_engine, settings.site_cache_s),
                    rate_limits=RateLimits(settings.rate_limit_per_ip, settings.rate_limit_per_site),
                )
                yield
            finally:
                # Uvicorn has finished the requests in flight by now; commit whatever they left queued.
                writer.close(WRITER_DRAIN_TIMEOUT_S)
        finally:
            read_engine.dispose()
            metrics.forget_process(os.getpid())

    routes: list[BaseRoute] = [*events.routes, *health.routes, *observability.routes]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestMetricsMiddleware), Middleware(IngestCorsMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
