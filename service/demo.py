"""`calltrail demo`: the service on a throwaway SQLite database, with a workstation simulator and a sample CRM
pop-up page on a second origin, so a newcomer sees events and sessions appear without writing a line.

One uvicorn process listens on two loopback ports: the service (``/shim.js``, ``POST /v1/events``, the query
API) on the first; the demo pages on the second. The workstation is opened as ``http://127.0.0.1:<pages>``
and embeds the CRM page as ``http://localhost:<pages>``: another origin and another site, as the Contact
Center's workstation and a customer's CRM are.
"""

from __future__ import annotations

import html
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.admin import registry
from service.app import create_app
from service.config import Settings
from service.domain import instants
from service.http.responses import JSONResponse
from service.logs import logging_config
from service.reports import records
from service.runtime import session_timeouts
from service.storage.engine import make_engine
from service.storage.migrations import upgrade


class DemoError(RuntimeError):
    """The demo cannot start; the message says why."""


DEMO_PAGES = Path(__file__).resolve().parent / "static" / "demo"
FEED_EVENTS = 12
FEED_SESSIONS = 8


@dataclass(frozen=True)
class Demo:
    directory: Path
    kept: bool
    database_url: str
    api_port: int
    pages_port: int
    site_key: str
    read_key: str

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def workstation_url(self) -> str:
        return f"http://127.0.0.1:{self.pages_port}/"

    @property
    def crm_origin(self) -> str:
        return f"http://localhost:{self.pages_port}"

    @property
    def crm_url(self) -> str:
        return f"{self.crm_origin}/crm/"

    def summary(self) -> list[str]:
        return [
            f"CallTrail demo, database {self.directory / 'demo.db'}"
            + (" (kept)" if self.kept else " (deleted on exit)"),
            f"  workstation simulator  {self.workstation_url}   <- open this in a browser",
            f"  CRM pop-up page        {self.crm_url}   (a second origin, embedded by the workstation)",
            f"  CallTrail service      {self.api_base}   (GET /shim.js, POST /v1/events, the query API)",
            f"  site key               {self.site_key}",
            f"  read key               {self.read_key}",
            f"  try: curl -H 'Authorization: Bearer {self.read_key}' {self.api_base}/v1/sessions",
            "Press Ctrl+C to stop.",
        ]


def bind(port: int) -> socket.socket:
    """A listening loopback socket; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise DemoError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port"
        ) from None
    sock.listen(128)
    return sock


def prepare(directory: Path, api_port: int, pages_port: int, *, kept: bool) -> Demo:
    """A migrated SQLite database in ``directory`` with the demo site and a read key."""
    url = f"sqlite:///{directory / 'demo.db'}"
    upgrade(url)
    engine = make_engine(Settings(database_url=url), "write")
    try:
        site = registry.add_site(engine, "demo", [f"http://localhost:{pages_port}"])
        key = registry.create_key(engine, "read", "demo")
    finally:
        engine.dispose()
    return Demo(directory, kept, url, api_port, pages_port, site.site_key, key.plaintext)


def render(name: str, values: dict[str, str]) -> str:
    page = (DEMO_PAGES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        page = page.replace("{{ " + key + " }}", html.escape(value))
    return page


def pages_app(demo: Demo, engine: Engine, settings: Settings) -> Starlette:
    values = {
        "crm_url": demo.crm_url,
        "shim_url": f"{demo.api_base}/shim.js",
        "site_key": demo.site_key,
        "api_base": demo.api_base,
    }
    workstation = render("workstation.html", values)
    crm = render("crm.html", values)
    timeouts = session_timeouts(settings)

    async def workstation_page(_request: Request) -> Response:
        return HTMLResponse(workstation)

    async def crm_page(_request: Request) -> Response:
        return HTMLResponse(crm)

    def feed(_request: Request) -> Response:
        """What CallTrail stored, newest first: the workstation page polls it."""
        now_ms = instants.now_ms()
        with engine.connect() as conn:
            events = _last(records.event_records(conn), FEED_EVENTS)
            sessions = _last(records.session_records(conn, timeouts=timeouts, now_ms=now_ms), FEED_SESSIONS)
        return JSONResponse({"events": events, "sessions": sessions})

    return Starlette(
        routes=[
            Route("/", workstation_page),
            Route("/crm/", crm_page),
            Route("/feed", feed),
        ]
    )


def _last(found: Iterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for record in found:
        kept.append(record)
        del kept[:-count]
    return kept[::-1]


class ByPort:
    """One ASGI app per listening port; the lifespan (the service's writer) belongs to the service."""

    def __init__(self, api: ASGIApp, pages: ASGIApp, pages_port: int) -> None:
        self.api = api
        self.pages = pages
        self.pages_port = pages_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or (None, None)
        app = self.pages if scope["type"] != "lifespan" and server[1] == self.pages_port else self.api
        await app(scope, receive, send)


@contextmanager
def _data_directory(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    temporary = Path(tempfile.mkdtemp(prefix="calltrail-demo-"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


class _AnnouncingServer(uvicorn.Server):
    """Says "Press Ctrl+C" only once uvicorn handles Ctrl+C: before, the interrupt could land in a garbage
    collector callback, which swallows it, and the demo would not stop."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._announce()


def run(port: int, directory: Path | None, echo: Callable[[str], None]) -> None:
    """Serve the demo until interrupted. ``directory`` keeps the database; without it, it is deleted."""
    api_socket = bind(port)
    try:
        pages_socket = bind(0 if port == 0 else port + 1)
    except DemoError:
        api_socket.close()
        raise
    try:
        with _data_directory(directory) as data:
            ports = api_socket.getsockname()[1], pages_socket.getsockname()[1]
            demo = prepare(data, *ports, kept=directory is not None)
            settings = Settings(database_url=demo.database_url, port=demo.api_port, log_level="warning")
            engine = make_engine(settings)
            try:
                app = ByPort(create_app(settings), pages_app(demo, engine, settings), demo.pages_port)
                config = uvicorn.Config(
                    app,
                    lifespan="on",
                    log_config=logging_config(settings),
                    access_log=False,
                    server_header=False,
                )

                def announce() -> None:
                    for line in demo.summary():
                        echo(line)

                _AnnouncingServer(config, announce).run(sockets=[api_socket, pages_socket])
            finally:
                engine.dispose()
    finally:
        api_socket.close()
        pages_socket.close()
