"""The ASGI application: routes, middleware, error handlers, and a lifespan that holds the worker's runtime
(service/runtime.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from service.ccc.sync import Project
from service.config import Settings
from service.contract import openapi
from service.http import admin, ccc, dashboard, health, observability, shim
from service.http.errors import EXCEPTION_HANDLERS
from service.http.headers import AllowedHosts, redirect_slashes, with_default_headers
from service.http.observability import RequestMetricsMiddleware
from service.ingest.endpoint import INGEST_PATH, IngestEndpoint
from service.reports.routes import routes as report_routes
from service.runtime import running


class CallTrailApp(Starlette):
    """Starlette, except that ingestion goes to its endpoint before Starlette's middleware and routing, which
    cost more per request than the ingestion's own work (service/ingest/endpoint.py says how it does without).

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


def create_app(settings: Settings | None = None, *, ccc_project: Project | None = None) -> CallTrailApp:
    """The app; ``ccc_project`` replaces the projection the scheduled reconciliation with CCC runs on each
    page of pulled records (service/runtime.py), for tests."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(settings, ccc_project=ccc_project) as state:
            app.state.calltrail = state
            yield

    routes: list[BaseRoute] = [*report_routes, *health.routes, *observability.routes]
    routes += openapi.routes
    routes += ccc.routes
    routes += admin.routes
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
