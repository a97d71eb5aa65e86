"""CORS for the ingestion endpoint, where the allowed origins are those registered for sites.

An origin is allowed when some site lists it. Every answer to an allowed origin carries the CORS headers,
errors and crashes included, so that a browser shows the page's developer our error rather than an opaque
CORS failure. Whether the origin may write to the site it names is the endpoint's check, not this one's:
CORS never stops a simple (non-preflighted) request, so it cannot be the security boundary.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.errors import error_response, internal_error_response
from service.http.state import state_from_scope

log = logging.getLogger("calltrail.http")

INGEST_PATH = "/v1/events"
PREFLIGHT_MAX_AGE_S = 86400


class IngestCorsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != INGEST_PATH:
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        allowed = origin is not None and await _origin_known(scope, origin)

        if scope["method"] == "OPTIONS":
            if not allowed:
                response = error_response(
                    403, "origin_not_allowed", f"origin {origin!r} is not registered for any site"
                )
            else:
                response = Response(
                    status_code=204,
                    headers={
                        "access-control-allow-methods": "POST, OPTIONS",
                        "access-control-allow-headers": "content-type",
                        "access-control-max-age": str(PREFLIGHT_MAX_AGE_S),
                    },
                )
                _add_cors(response.headers, origin)
            await response(scope, receive, send)
            return

        started = False

        async def send_with_cors(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if allowed:
                    _add_cors(MutableHeaders(scope=message), origin)
            await send(message)

        try:
            await self.app(scope, receive, send_with_cors)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], INGEST_PATH)
            if started:
                raise
            response = internal_error_response()
            if allowed:
                _add_cors(response.headers, origin)
            await response(scope, receive, send)


def _add_cors(headers: MutableHeaders, origin: str | None) -> None:
    assert origin is not None
    headers["access-control-allow-origin"] = origin
    # Without it a cross-origin page cannot read Retry-After (not a CORS-safelisted header), and the shim
    # could not honour it on 429 and 503.
    headers["access-control-expose-headers"] = "Retry-After"
    headers.add_vary_header("Origin")


async def _origin_known(scope: Scope, origin: str) -> bool:
    sites = state_from_scope(scope).sites
    if sites.is_fresh() and sites.cached_origin_known(origin):
        return True
    try:
        return await run_in_threadpool(sites.origin_known, origin)
    except Exception:
        # The database is down: fall back on what we knew, so the error that follows still reaches the page.
        log.warning("could not reload sites; using the cached origins")
        return sites.cached_origin_known(origin)
