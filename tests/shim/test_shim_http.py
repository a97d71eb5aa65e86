"""GET /shim.js: the committed build, with caching headers, conditional requests and gzip; and the CORS
header that lets the shim read Retry-After on POST /v1/events."""

from __future__ import annotations

import gzip

import httpx
import pytest

from service.admin.registry import Site
from service.http.shim import SHIM_FILE, accepts_gzip, etag_matches
from tests.batches import batch, body, hash_event
from tests.conftest import ORIGIN

# Nothing here depends on the database: SQLite alone.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])

PLAIN = {"accept-encoding": "identity"}


@pytest.mark.anyio
@SQLITE_ONLY
async def test_serves_the_built_shim_with_caching_headers(api: httpx.AsyncClient) -> None:
    response = await api.get("/shim.js", headers=PLAIN)
    assert response.status_code == 200
    assert response.content == SHIM_FILE.read_bytes()
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=3600, stale-while-revalidate=86400"
    assert response.headers["etag"].startswith('"') and response.headers["etag"].endswith('"')
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-encoding" not in response.headers


@pytest.mark.anyio
@SQLITE_ONLY
async def test_a_matching_etag_gets_304_and_another_gets_the_file(api: httpx.AsyncClient) -> None:
    etag = (await api.get("/shim.js", headers=PLAIN)).headers["etag"]
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await api.get("/shim.js", headers={**PLAIN, "if-none-match": if_none_match})
        assert cached.status_code == 304, if_none_match
        assert cached.content == b""
        assert cached.headers["etag"] == etag
        assert cached.headers["cache-control"].startswith("public")
    stale = await api.get("/shim.js", headers={**PLAIN, "if-none-match": '"an-older-shim"'})
    assert stale.status_code == 200
    assert stale.content == SHIM_FILE.read_bytes()


@pytest.mark.anyio
@SQLITE_ONLY
async def test_gzip_when_accepted_with_its_own_etag(api: httpx.AsyncClient) -> None:
    plain = await api.get("/shim.js", headers=PLAIN)
    zipped = await api.get("/shim.js", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == SHIM_FILE.read_bytes()  # httpx decoded it
    assert int(zipped.headers["content-length"]) == len(gzip.compress(SHIM_FILE.read_bytes(), 9, mtime=0))
    assert zipped.headers["etag"] != plain.headers["etag"]
    cached = await api.get(
        "/shim.js", headers={"accept-encoding": "gzip", "if-none-match": zipped.headers["etag"]}
    )
    assert cached.status_code == 304
    # The plain ETag does not validate the gzipped representation.
    assert (await api.get("/shim.js", headers={"if-none-match": plain.headers["etag"]})).status_code == 200


@pytest.mark.anyio
@SQLITE_ONLY
async def test_head_and_wrong_methods(api: httpx.AsyncClient) -> None:
    head = await api.head("/shim.js", headers=PLAIN)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"]
    post = await api.post("/shim.js")
    assert post.status_code == 405
    assert post.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.anyio
@SQLITE_ONLY
async def test_ingestion_answers_let_the_page_read_retry_after(api: httpx.AsyncClient, site: Site) -> None:
    document = batch(site.site_key, [hash_event(1, "#?status=100")])
    response = await api.post(
        "/v1/events", content=body(document), headers={"origin": ORIGIN, "content-type": "text/plain"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-expose-headers"] == "Retry-After"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("GZIP", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
        ("deflate, gzip;q=nonsense", False),
    ],
)
def test_accept_encoding(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_etag_comparison_is_weak() -> None:
    assert etag_matches('W/"a"', '"a"')
    assert etag_matches(' "b" , "a"', '"a"')
    assert not etag_matches('"b"', '"a"')
    assert not etag_matches(None, '"a"')
