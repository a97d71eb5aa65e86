"""GET /shim.js: the browser shim, built from web_shim/ into service/static/shim.js (committed, so Python
users need no Node).

The URL is the same for every version (it is what customers paste into their pages), so caching trades
freshness for load: browsers reuse it for an hour without asking, then for a day more while they revalidate
in the background; a revalidation costs a 304. A new shim therefore reaches every page within about an
hour and one more load. The ETag is the content's hash, one per encoding.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.http.errors import ApiError

SHIM_FILE = Path(__file__).resolve().parent.parent / "static" / "shim.js"
MEDIA_TYPE = "application/javascript; charset=utf-8"
CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"


@dataclass(frozen=True)
class Asset:
    body: bytes
    etag: str
    gzipped: bytes
    gzip_etag: str


@cache
def shim_asset() -> Asset:
    body = SHIM_FILE.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:32]
    # mtime=0: the same file always compresses to the same bytes, so every worker agrees on the ETag.
    return Asset(body, f'"{digest}"', gzip.compress(body, 9, mtime=0), f'"{digest}-gzip"')


async def shim_js(request: Request) -> Response:
    try:
        asset = shim_asset()
    except OSError:
        raise ApiError(404, "not_found", "shim.js is not built; run web_shim/build") from None
    use_gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = asset.gzip_etag if use_gzip else asset.etag
    headers = {
        "cache-control": CACHE_CONTROL,
        "etag": etag,
        "vary": "Accept-Encoding",
        # Loadable by pages that isolate themselves (COEP) or check it with integrity= and crossorigin.
        "cross-origin-resource-policy": "cross-origin",
        "access-control-allow-origin": "*",
        "x-content-type-options": "nosniff",
    }
    if use_gzip:
        headers["content-encoding"] = "gzip"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.gzipped if use_gzip else asset.body, media_type=MEDIA_TYPE, headers=headers)


def accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match compares weakly: W/"x" matches "x"."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


routes = [Route("/shim.js", shim_js, methods=["GET"])]
