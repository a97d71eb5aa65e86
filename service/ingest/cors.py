"""CORS for the ingestion endpoint, where the allowed origins are those registered for sites.

An origin is allowed when some site lists it. Every answer to an allowed origin carries the CORS headers,
errors and crashes included, so that a browser shows the page's developer our error rather than an opaque
CORS failure. Whether the origin may write to the site it names is the endpoint's check, not this one's:
CORS never stops a simple (non-preflighted) request, so it cannot be the security boundary.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool

from service.admin.registry import SiteDirectory

log = logging.getLogger("calltrail.http")

PREFLIGHT_MAX_AGE_S = 86400

RawHeaders = list[tuple[bytes, bytes]]

# Without Access-Control-Expose-Headers a cross-origin page cannot read Retry-After (not a CORS-safelisted
# header), and the shim could not honour it on 429 and 503.
_ANSWER_HEADERS: RawHeaders = [(b"access-control-expose-headers", b"Retry-After"), (b"vary", b"Origin")]
# What a preflight answer adds to the headers of every answer (``cors_headers``).
PREFLIGHT_HEADERS: RawHeaders = [
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"content-type"),
    (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
]


def cors_headers(origin: str) -> RawHeaders:
    """The headers every answer to an allowed origin carries."""
    return [(b"access-control-allow-origin", origin.encode("latin-1")), *_ANSWER_HEADERS]


def origin_allowed_by_cache(sites: SiteDirectory, origin: str | None) -> bool:
    """Whether the cached sites, while fresh, allow the origin; False says only "ask ``origin_allowed``"."""
    return origin is not None and sites.is_fresh() and sites.cached_origin_known(origin)


async def origin_allowed(sites: SiteDirectory, origin: str | None) -> bool:
    if origin is None:
        return False
    if origin_allowed_by_cache(sites, origin):
        return True
    try:
        return await run_in_threadpool(sites.origin_known, origin)
    except Exception:
        # The database is down: fall back on what we knew, so the error that follows still reaches the page.
        log.warning("could not reload sites; using the cached origins")
        return sites.cached_origin_known(origin)
