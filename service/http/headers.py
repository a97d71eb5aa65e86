"""What every answer carries and every request must show: the Host check, default headers, relative redirects.

- **Host**: with ``CALLTRAIL_ALLOWED_HOSTS`` set, a request naming another host gets 400 before anything else
  runs (DNS rebinding; links and caches keyed on a forged Host). Nothing the service answers is built from
  the Host header anyway: redirects are relative.
- **Default headers**: ``X-Content-Type-Options: nosniff`` on every answer (a JSON or CSV body is never run
  as a script or a page), and ``Cache-Control: no-store`` where a route sets no caching of its own (the API's
  answers hold customer data that no shared or browser cache should keep; the dashboard and the shim set
  their own revalidation).
- **Redirects**: a path that differs from a route only by a trailing slash is redirected to it with a
  relative ``Location`` (Starlette's router builds an absolute one from the Host header).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Message, Receive, Scope, Send

from service.formats import dumps
from service.http.errors import error_body

NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
DEFAULT_HEADERS = (NOSNIFF, NO_STORE)


def with_default_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            headers.extend(header for header in DEFAULT_HEADERS if header[0] not in names)
            message = {**message, "headers": headers}
        await send(message)

    return sending


class AllowedHosts:
    """Host names a request may name (``*`` alone: any; ``*.example.com``: its subdomains)."""

    def __init__(self, spec: str) -> None:
        names = [name.strip().lower() for name in spec.split(",") if name.strip()]
        self.any = not names or "*" in names
        self.exact = frozenset(name for name in names if not name.startswith("*."))
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))

    def admits(self, scope: Scope) -> bool:
        if self.any:
            return True
        host = ""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower()
                break
        return self.admits_host(host)

    def admits_host(self, host: str) -> bool:
        if self.any:
            return True
        name = _without_port(host)
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))

    async def refuse(self, send: Send) -> None:
        body = dumps(
            error_body("invalid_host", "this host name is not served here (see CALLTRAIL_ALLOWED_HOSTS)")
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *DEFAULT_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _without_port(host: str) -> str:
    if host.startswith("["):  # an IPv6 literal: [::1]:8000
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def redirect_slashes(router: Router) -> None:
    """Replace the router's trailing-slash redirects by relative ones."""
    router.redirect_slashes = False
    not_found = router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        target = _slash_variant(router, scope)
        if target is None:
            await not_found(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        location = quote(target) + (f"?{query}" if query else "")
        await RedirectResponse(location)(scope, receive, send)

    router.default = default


def _slash_variant(router: Router, scope: Scope) -> str | None:
    if scope["type"] != "http":
        return None
    path: str = scope["path"]
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    # Never a protocol-relative target ("//host"): that would send the browser to another site.
    if not other or other.startswith("//") or other == path:
        return None
    candidate: dict[str, Any] = {**scope, "path": other}
    for route in router.routes:
        match, _ = route.matches(candidate)
        if match is not Match.NONE:
            return other
    return None
