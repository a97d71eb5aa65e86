"""GET /dashboard: the supervisors' dashboard, static files from service/static/dashboard/ that read the
public query API with a read key the user enters in the browser (docs/dashboard.md).

Every asset is a fixed route, not a path parameter: nothing outside the list can be asked for (no traversal to
guard against), and the OpenAPI document lists each one. The files change with the service, not with the
data, so they are revalidated on every load (`no-cache` with an ETag: a 304 costs little) and an upgrade shows
at once. uPlot is vendored (vendor/uplot/, MIT): the dashboard loads nothing from elsewhere and works offline.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.http.errors import ApiError
from service.http.shim import Asset, accepts_gzip, etag_matches

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "static" / "dashboard"

JAVASCRIPT = "application/javascript; charset=utf-8"

# The dashboard's ES modules: app.js, the entry the page loads, and every file it imports, directly or not
# (docs/dashboard.md). The browser fetches each import by URL, so each must be listed here.
MODULES = (
    "app.js",
    "js/api.js",
    "js/chart.js",
    "js/dates.js",
    "js/dom.js",
    "js/filters.js",
    "js/format.js",
    "js/key.js",
    "js/live.js",
    "js/messages.js",
    "js/pager.js",
    "js/render.js",
    "js/state.js",
    "js/views/agents.js",
    "js/views/audit.js",
    "js/views/calls.js",
    "js/views/cards.js",
    "js/views/coverage.js",
    "js/views/overview.js",
    "js/views/quality.js",
    "js/views/session.js",
    "js/views/sessions.js",
)

# URL path -> (file under DASHBOARD_DIR, media type).
ASSETS: dict[str, tuple[str, str]] = {
    "/dashboard": ("index.html", "text/html; charset=utf-8"),
    **{f"/dashboard/{name}": (name, JAVASCRIPT) for name in MODULES},
    "/dashboard/style.css": ("style.css", "text/css; charset=utf-8"),
    "/dashboard/vendor/uplot/uPlot.iife.min.js": ("vendor/uplot/uPlot.iife.min.js", JAVASCRIPT),
    "/dashboard/vendor/uplot/uPlot.min.css": ("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
    "/dashboard/vendor/uplot/LICENSE": ("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
}

# The page talks only to this origin (script-src 'self' covers the module imports too); uPlot sets element
# styles from script, which style-src must allow.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@cache
def load_asset(name: str) -> Asset:
    body = (DASHBOARD_DIR / name).read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:32]
    # mtime=0: the same file always compresses to the same bytes, so every worker agrees on the ETag.
    return Asset(body, f'"{digest}"', gzip.compress(body, 9, mtime=0), f'"{digest}-gzip"')


async def dashboard_asset(request: Request) -> Response:
    name, media_type = ASSETS[request.url.path]
    try:
        asset = load_asset(name)
    except OSError:
        raise ApiError(404, "not_found", f"dashboard file {name} is missing from this installation") from None
    use_gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = asset.gzip_etag if use_gzip else asset.etag
    headers = {
        "cache-control": "no-cache",
        "etag": etag,
        "vary": "Accept-Encoding",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "content-security-policy": CONTENT_SECURITY_POLICY,
    }
    if use_gzip:
        headers["content-encoding"] = "gzip"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.gzipped if use_gzip else asset.body, media_type=media_type, headers=headers)


routes = [Route(path, dashboard_asset, methods=["GET"]) for path in ASSETS]
