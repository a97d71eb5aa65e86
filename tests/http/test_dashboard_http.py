"""GET /dashboard and its files: each listed file served with its type, revalidated by ETag (304), gzipped
when asked; the page's security headers; nothing outside the list; every module and every import of one is
listed; and the vendored uPlot is the pinned version with its licence."""

from __future__ import annotations

import posixpath
import re

import httpx
import pytest

from service.http.dashboard import ASSETS, DASHBOARD_DIR, MODULES

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


# Static imports (`import x from "…"`, `import "…"`, `export … from "…"`) and dynamic `import("…")`.
IMPORTS = re.compile(
    r"""^\s*import\s*(?:[\w$*{}\s,]+?\s*from\s*)?["']([^"']+)["']"""
    r"""|^\s*export\s*(?:\*(?:\s*as\s+[\w$]+)?|\{[^}]*\})\s*from\s*["']([^"']+)["']"""
    r"""|\bimport\s*\(\s*["']([^"']+)["']""",
    re.MULTILINE,
)


def module_imports(url_path: str) -> list[str]:
    """The URL paths a dashboard module imports, resolved against its own URL as the browser does."""
    name, _media_type = ASSETS[url_path]
    resolved = []
    for match in IMPORTS.finditer((DASHBOARD_DIR / name).read_text()):
        specifier = next(group for group in match.groups() if group)
        # No import map and no other origin: only relative or absolute paths can resolve, offline.
        assert specifier.startswith(("./", "../", "/")), (url_path, specifier)
        base = posixpath.dirname(url_path)
        resolved.append(posixpath.normpath(posixpath.join(base, specifier)))
    return resolved


def test_every_module_import_is_a_listed_file() -> None:
    """A module the browser cannot fetch fails the whole page; here it fails the suite. Every module file is
    listed and reached from the entry, so none is forgotten (and the import pattern does find imports)."""
    on_disk = {
        path.relative_to(DASHBOARD_DIR).as_posix()
        for path in DASHBOARD_DIR.rglob("*.js")
        if "vendor" not in path.relative_to(DASHBOARD_DIR).parts
    }
    assert on_disk == set(MODULES)
    entry = "/dashboard/app.js"
    reached, pending = {entry}, [entry]
    while pending:
        module = pending.pop()
        for target in module_imports(module):
            assert target in ASSETS, f"{module} imports {target}, which is not in ASSETS"
            assert ASSETS[target][1].startswith("application/javascript"), target
            if target not in reached:
                reached.add(target)
                pending.append(target)
    assert reached == {f"/dashboard/{name}" for name in MODULES}


def test_module_imports_resolve_as_the_browser_resolves_them() -> None:
    assert module_imports("/dashboard/js/views/agents.js")[0] == "/dashboard/js/api.js"
    assert "/dashboard/js/render.js" in module_imports("/dashboard/app.js")


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
