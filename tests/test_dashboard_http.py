"""GET /dashboard and its files: each listed file served with its type, revalidated by ETag (304), gzipped
when asked; the page's security headers; nothing outside the list; and the vendored uPlot is the pinned
version with its licence."""

from __future__ import annotations

import re

import httpx
import pytest

from service.http.dashboard import ASSETS, DASHBOARD_DIR

# Nothing here depends on the database: SQLite alone.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
PLAIN = {"accept-encoding": "identity"}


@pytest.mark.anyio
@SQLITE_ONLY
async def test_every_listed_file_is_served_with_its_type_and_revalidated(api: httpx.AsyncClient) -> None:
    for path, (name, media_type) in ASSETS.items():
        response = await api.get(path, headers=PLAIN)
        assert response.status_code == 200, path
        assert response.content == (DASHBOARD_DIR / name).read_bytes()
        assert response.headers["content-type"] == media_type
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-content-type-options"] == "nosniff"
        etag = response.headers["etag"]
        again = await api.get(path, headers={**PLAIN, "if-none-match": etag})
        assert again.status_code == 304 and again.content == b""
        zipped = await api.get(path, headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] != etag
        assert zipped.content == response.content  # httpx inflates it


@pytest.mark.anyio
@SQLITE_ONLY
async def test_the_page_loads_only_from_its_own_origin(api: httpx.AsyncClient) -> None:
    response = await api.get("/dashboard")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    # No CDN: every script and stylesheet is one of the files served here.
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        if ref.startswith(("?", "#", "data:")):
            continue
        assert ref in ASSETS, ref


@pytest.mark.anyio
@SQLITE_ONLY
async def test_nothing_outside_the_list_is_served(api: httpx.AsyncClient) -> None:
    for path in ("/dashboard/index.html", "/dashboard/../app.py", "/dashboard/vendor/uplot/README.md"):
        assert (await api.get(path)).status_code == 404, path


def test_vendored_uplot_is_the_pinned_version_with_its_licence() -> None:
    vendor = DASHBOARD_DIR / "vendor" / "uplot"
    pinned = re.search(r"Version: \*\*(\d+\.\d+\.\d+)\*\*", (vendor / "README.md").read_text())
    assert pinned is not None
    assert (
        (vendor / "uPlot.iife.min.js")
        .read_text()
        .startswith(f"/*! https://github.com/leeoniya/uPlot (v{pinned[1]})")
    )
    assert "MIT License" in (vendor / "LICENSE").read_text()
