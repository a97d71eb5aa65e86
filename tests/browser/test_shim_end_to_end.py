"""The shim against a real `calltrail serve`, in a real Chromium, checked in the database: the service down
for a while, a page closed right after a hash change, and a page whose unsent events wait for the next load.

The workstation (parent) is on http://127.0.0.1:<a>; the pop-up is on http://localhost:<a> (another site:
its storage is blocked, as in the Contact Center) or on http://127.0.0.1:<b> (same site: storage works).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Frame, Page
from sqlalchemy import Engine, select

from service.admin.registry import add_site
from service.config import Settings
from service.storage.engine import make_engine
from service.storage.schema import events
from tests import databases
from tests.browser.harness import PageServer, child_page, parent_page, shim_tag, wait_until
from tests.servers import Server

pytestmark = pytest.mark.slow

BROWSER_NOISE = ("Failed to load resource", "net::ERR_CONNECTION_REFUSED")


@dataclass
class Service:
    server: Server
    engine: Engine
    site_key: str
    env: dict[str, str]
    cwd: Path

    def restart(self) -> None:
        self.server = Server([], self.env, self.cwd, port=self.server.port)

    def stored(self, page_id: str | None = None) -> list[dict[str, Any]]:
        query = select(events.c.page_id, events.c.page_url, events.c.seq, events.c.raw).order_by(
            events.c.page_id, events.c.seq
        )
        if page_id is not None:
            query = query.where(events.c.page_id == page_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [{"page_id": r.page_id, "page_url": r.page_url, **orjson.loads(r.raw)} for r in rows]


@pytest.fixture
def service(pages: PageServer, sqlite_template: Path, tmp_path: Path) -> Iterator[Service]:
    db_url = databases.sqlite_create_database(sqlite_template, tmp_path)
    engine = make_engine(Settings(database_url=db_url))
    site = add_site(engine, "browser", [pages.url("localhost", ""), pages.url("127.0.0.1", "", pages.port_b)])
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": db_url, "CALLTRAIL_LOG_LEVEL": "warning"}
    running = Service(Server([], env, tmp_path), engine, site.site_key, env, tmp_path)
    yield running
    running.server.kill()
    engine.dispose()


def open_pair(
    page: Page,
    pages: PageServer,
    service: Service,
    child_host: str,
    child_port: int,
    *,
    shim_from_pages: bool = False,
) -> Frame:
    """With ``shim_from_pages`` the script comes from the page server (``data-endpoint`` names the service),
    so the page loads while the service is down."""
    if shim_from_pages:
        tag = shim_tag(
            pages.url("127.0.0.1", "/shim.js"), site=service.site_key, endpoint=service.server.base
        )
    else:
        tag = shim_tag(f"{service.server.base}/shim.js", site=service.site_key)
    pages.pages["/child.html"] = child_page(tag)
    pages.pages["/parent.html"] = parent_page(pages.url(child_host, "/child.html", child_port))
    page.goto(pages.url("127.0.0.1", "/parent.html"))
    return next(f for f in page.frames if f.url.split("#")[0].endswith("/child.html"))


def hashes(stored: list[dict[str, Any]]) -> list[str]:
    return [e["hash"] for e in stored if e["type"] == "hash"]


def test_service_down_for_a_while_then_back_loses_nothing_and_doubles_nothing(
    page: Page, pages: PageServer, service: Service, console: list[str]
) -> None:
    child = open_pair(page, pages, service, "localhost", pages.port_a)
    # The Contact Center's case: no storage in a cross-site frame, so everything waits in memory.
    assert child.evaluate(
        "(() => { try { localStorage; return 'usable' } catch (e) { return e.name } })()"
    ) == ("SecurityError")
    wait_until(lambda: len(service.stored()) == 1, what="the load event stored")

    service.server.kill()
    calls = [f"#?mobile=1390000000{i}&status={s}&type=phone" for i in range(2) for s in (100, 200, 400)]
    for call in calls[:3]:
        page.evaluate("(hash) => announce(hash)", call)
        page.wait_for_timeout(150)
    child.evaluate("CallTrail.callOut('13900000000', 'while down')")
    for call in calls[3:]:
        page.evaluate("(hash) => announce(hash)", call)
    page.wait_for_timeout(3000)  # a few failed attempts
    service.restart()

    wait_until(lambda: len(service.stored()) == 8, timeout_s=30, what="every event stored")
    page.wait_for_timeout(1500)  # anything doubled would arrive now
    stored = service.stored()
    assert [e["seq"] for e in stored] == list(range(1, 9))
    assert len({e["page_id"] for e in stored}) == 1
    assert hashes(stored) == ["", *calls[:3], *calls[3:]]
    assert [e["data"]["payload"]["message"] for e in stored if e["type"] == "message"] == [
        {"phoneNumber": "13900000000", "desc": "while down"}
    ]
    assert stored[0]["page_url"] == pages.url("localhost", "/child.html")
    assert child.evaluate("__test.errors") == []
    assert [line for line in console if not any(noise in line for noise in BROWSER_NOISE)] == []


@pytest.mark.parametrize("how", ["navigate", "close"])
def test_an_event_arrives_when_the_page_goes_right_after_a_hash_change(
    page: Page, pages: PageServer, service: Service, how: str
) -> None:
    child = open_pair(page, pages, service, "localhost", pages.port_a)
    wait_until(lambda: len(service.stored()) == 1, what="the load event stored")
    child.evaluate(
        "void (window.__heard = new Promise((r) => addEventListener('hashchange', () => r(true))))"
    )
    page.evaluate("announce('#?mobile=18888888888&status=400&type=phone')")
    child.evaluate("__heard")  # the shim has queued it; its batching delay has not passed
    if how == "navigate":
        page.goto("about:blank")
    else:
        page.close()

    wait_until(lambda: len(service.stored()) == 2, what="the last hash stored")
    assert hashes(service.stored())[-1] == "#?mobile=18888888888&status=400&type=phone"


def test_events_unsent_when_the_page_closed_go_with_the_next_load(
    page: Page, pages: PageServer, service: Service
) -> None:
    service.server.kill()
    # Same site: storage works.
    child = open_pair(page, pages, service, "127.0.0.1", pages.port_b, shim_from_pages=True)
    page.evaluate("announce('#?mobile=18888888888&status=100&type=phone')")
    child.evaluate("CallTrail.sendCard({header: 'Ticket', desc: 'd', pic: 'p', url: 'u'})")
    page.wait_for_timeout(1200)
    page.goto("about:blank")  # the beacons fail too: the service is down
    service.restart()
    assert service.stored() == []

    open_pair(page, pages, service, "127.0.0.1", pages.port_b, shim_from_pages=True)
    wait_until(lambda: len(service.stored()) == 4, timeout_s=20, what="both pages' events")
    page.wait_for_timeout(1000)

    stored = service.stored()
    by_page: dict[str, list[int]] = {}
    for event in stored:
        by_page.setdefault(event["page_id"], []).append(event["seq"])
    assert sorted(by_page.values()) == [[1], [1, 2, 3]]
    assert "#?mobile=18888888888&status=100&type=phone" in hashes(stored)
    assert any(e["type"] == "message" and e["data"]["payload"]["event"] == "sendCard" for e in stored)
