"""`calltrail demo`: the service on a throwaway SQLite database, with a workstation simulator and a sample CRM
pop-up page on a second origin, so a newcomer sees events and sessions appear without writing a line.

One uvicorn process listens on two loopback ports: the service (``/shim.js``, ``POST /v1/events``, the query
API) on the first; the demo pages on the second. The workstation is opened as ``http://127.0.0.1:<pages>``
and embeds the CRM page as ``http://localhost:<pages>``: another origin and another site, as the Contact
Center's workstation and a customer's CRM are.

The workstation also plays CCC's Data Push: when a simulated phone call ends it asks the demo pages for a CDR
(``POST /ccc-cdr``: same SdkAppId, agent, customer number, ring time to the second), which they push to the
service's own ``/v1/ccc/push`` as the demo CCC app (registered with basic auth), so the call record joins the
page session and the dashboard's Coverage view has something to show.
"""

from __future__ import annotations

import base64
import html
import secrets
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.admin import registry
from service.app import create_app
from service.ccc.apps import add_app
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
# The demo's CCC app: the workstation page's sdkAppId.
DEMO_SDK_APP_ID = 1400000001
DEMO_CALLEE = "02566666666"  # the contact center's line


@dataclass(frozen=True)
class Demo:
    directory: Path
    kept: bool
    database_url: str
    api_port: int
    pages_port: int
    site_key: str
    read_key: str
    ccc_user: str
    ccc_password: str = field(repr=False)

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
            f"  CCC app                {DEMO_SDK_APP_ID}   (simulated Data Push: a CDR per phone call)",
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
        app = add_app(engine, DEMO_SDK_APP_ID, "basic", ["demo"])
    finally:
        engine.dispose()
    assert app.app.client_id is not None and app.secret is not None
    return Demo(
        directory,
        kept,
        url,
        api_port,
        pages_port,
        site.site_key,
        key.plaintext,
        app.app.client_id,
        app.secret,
    )


def demo_cdr(call: dict[str, Any], agent_email: str) -> dict[str, Any]:
    """The phone CDR CCC would push for a call the workstation simulated (times in the browser's ms): an
    inbound call, queued 10 s before it rang at the agent, one agent leg."""
    ring_s = int(call["ring_ms"]) // 1000
    accept_s = int(call["accept_ms"]) // 1000 if call.get("accept_ms") else 0
    end_s = max(int(call["end_ms"]) // 1000, ring_s)
    start_s = ring_s - 15
    mobile = str(call["mobile"])
    status = "ok" if accept_s else "userGiveUp"
    return {
        "SdkAppId": DEMO_SDK_APP_ID,
        "SessionId": secrets.token_hex(16),
        "Caller": "0086" + mobile,
        "Callee": DEMO_CALLEE,
        "Direction": 0,
        "StartTimestamp": start_s,
        "QueuedTimestamp": start_s + 10,
        "RingTimestamp": ring_s,
        "AcceptTimestamp": accept_s,
        "EndedTimestamp": end_s,
        "Duration": end_s - accept_s if accept_s else 0,
        "EndStatusString": status,
        "HungUpSide": "user",
        "QueuedSkillGroupId": 1,
        "QueuedSkillGroupName": "Demo",
        "SeatUser": {"Mail": agent_email, "UserId": agent_email},
        "ServeParticipants": [
            {
                "Sequence": 0,
                "Mail": agent_email,
                "Type": "staffSeat",
                "StartTimestamp": ring_s,
                "RingTimestamp": ring_s,
                "AcceptTimestamp": accept_s,
                "EndedTimestamp": end_s,
                "EndStatusString": status if accept_s else "seatGiveUp",
                "SkillGroupId": 1,
                "SkillGroupName": "Demo",
            }
        ],
    }


def push_cdr(demo: Demo, document: dict[str, Any]) -> dict[str, Any]:
    """Push one CDR to the service as CCC does (basic auth, a push UUID); CCC's answer."""
    login = base64.b64encode(f"{demo.ccc_user}:{demo.ccc_password}".encode()).decode()
    # The demo's own http:// loopback URL, never one from outside.
    request = urllib.request.Request(  # noqa: S310
        f"{demo.api_base}/v1/ccc/push?action=cdr&version=1",
        data=orjson.dumps(document),
        headers={
            "content-type": "application/json;charset=utf8",
            "authorization": f"Basic {login}",
            "x-tccc-push-uuid": secrets.token_hex(16),
        },
        method="POST",
    )
    # Straight to the loopback service: never through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as answer:
            return dict(orjson.loads(answer.read()))
    except urllib.error.HTTPError as exc:
        return dict(orjson.loads(exc.read() or b"{}"))


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

    async def ccc_cdr(request: Request) -> Response:
        """The workstation's phone call has ended: push the CDR CCC would send for it."""
        try:
            call = orjson.loads(await request.body())
            document = demo_cdr(call, str(call["agent_email"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return JSONResponse(
                {"ErrCode": 400, "ErrMsg": "expected mobile, agent_email, ring_ms, end_ms"}, 400
            )
        answer = await run_in_threadpool(push_cdr, demo, document)
        return JSONResponse({**answer, "SessionId": document["SessionId"]})

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
            Route("/ccc-cdr", ccc_cdr, methods=["POST"]),
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
