"""The shim's queue in localStorage, in a real Chromium: what survives a page, its limits, two tabs, and the
browsers that refuse storage."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from playwright.sync_api import BrowserContext, Frame, Page

from tests.browser.harness import (
    SITE_KEY,
    PageServer,
    accept_all,
    child_page,
    parent_page,
    refuse,
    shim_tag,
    wait_until,
)

PREFIX = f"calltrail:{SITE_KEY}:"
BLANK = '<!doctype html><html><head><link rel="icon" href="data:,"></head><body></body></html>'
BROWSER_NOISE = "Failed to load resource"  # the browser's own line for an answer >= 400; not the shim's

STORED_QUEUES = """() => Object.fromEntries(Object.keys(localStorage)
    .filter((k) => k.startsWith(%s))
    .map((k) => { const [lease, url, ...events] = localStorage.getItem(k).split('\\n');
                  return [k.slice(%d), {lease: +lease, url, events: events.map((e) => JSON.parse(e))}]; }))"""


def stored_queues(target: Page | Frame) -> dict[str, dict[str, Any]]:
    return dict(target.evaluate(STORED_QUEUES % (json.dumps(PREFIX), len(PREFIX))))


def serve_child(pages: PageServer) -> None:
    pages.pages["/child.html"] = child_page(shim_tag(pages.url("127.0.0.1", "/shim.js")))
    pages.pages["/blank.html"] = BLANK


def child_frame(page: Page) -> Frame:
    return next(f for f in page.frames if f.url.split("#")[0].endswith("/child.html"))


def test_unsent_events_wait_in_storage_and_go_on_the_next_load(page: Page, pages: PageServer) -> None:
    # A same-site, cross-origin frame (127.0.0.1:a embeds 127.0.0.1:b): the browser allows its storage.
    serve_child(pages)
    child_url = pages.url("127.0.0.1", "/child.html", pages.port_b)
    pages.pages["/parent.html"] = parent_page(child_url)
    pages.responder = refuse(503, retry_after=60)
    page.goto(pages.url("127.0.0.1", "/parent.html"))
    page.evaluate("announce('#?mobile=18888888888&status=100&type=phone')")
    wait_until(lambda: len(pages.events()) >= 2, what="the first attempt with both events")
    first_page = pages.page_ids()[0]
    page.goto("about:blank")

    page.goto(pages.url("127.0.0.1", "/blank.html", pages.port_b))
    queues = stored_queues(page)
    assert list(queues) == [first_page]
    assert queues[first_page]["lease"] == 0  # released at pagehide: the next load may take it at once
    assert queues[first_page]["url"] == child_url
    assert [e["seq"] for e in queues[first_page]["events"]] == [1, 2]

    pages.responder = accept_all
    pages.requests.clear()
    page.goto(pages.url("127.0.0.1", "/parent.html"))
    wait_until(lambda: len(pages.events(first_page)) >= 2, what="the stored events")
    pages.wait_for_events(3)

    old = pages.fetches()[0]
    assert old.page_id == first_page  # the oldest go first
    assert [e["seq"] for e in old.events] == [1, 2]
    assert old.events[1]["hash"] == "#?mobile=18888888888&status=100&type=phone"
    assert old.document["page"]["url"] == child_url
    assert len(pages.page_ids()) == 2
    wait_until(lambda: stored_queues(child_frame(page)) == {}, what="the stored queues emptied")


def test_the_queue_keeps_the_newest_500_events(page: Page, pages: PageServer) -> None:
    serve_child(pages)
    pages.responder = refuse(503, retry_after=60)
    page.goto(pages.url("localhost", "/child.html"))
    page.evaluate("for (let i = 1; i <= 600; i++) location.hash = '#n=' + i")
    wait_until(lambda: len(pages.fetches()) >= 1, what="the first attempt")

    (queue,) = stored_queues(page).values()
    assert [e["seq"] for e in queue["events"]] == list(range(102, 602))
    assert queue["lease"] > 0


def test_stored_events_older_than_seven_days_are_dropped(page: Page, pages: PageServer) -> None:
    serve_child(pages)
    page.goto(pages.url("localhost", "/blank.html"))
    old_page = str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    events = [
        {"id": str(uuid.uuid4()), "seq": seq, "ts": ts, "type": "hash", "hash": f"#{seq}"}
        for seq, ts in [
            (1, now_ms - 8 * 86_400_000),
            (2, now_ms - 7 * 86_400_000 - 60_000),
            (3, now_ms - 3_600_000),
        ]
    ]
    value = "\n".join(
        ["0", "https://crm.example.com/old", *(json.dumps(e, separators=(",", ":")) for e in events)]
    )
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [PREFIX + old_page, value])

    page.goto(pages.url("localhost", "/child.html"))
    pages.wait_for_events(2)
    page.wait_for_timeout(700)

    assert [e["seq"] for e in pages.events(old_page)] == [3]
    wait_until(lambda: stored_queues(page) == {}, what="the stored queues emptied")


def test_two_tabs_never_send_the_same_stored_page_at_once(context: BrowserContext, pages: PageServer) -> None:
    serve_child(pages)
    pages.responder = refuse(503, retry_after=60)
    child_url = pages.url("localhost", "/child.html")

    def fetches_for(page_id: str) -> int:
        return sum(1 for r in pages.fetches() if r.page_id == page_id)

    def open_tab() -> tuple[Page, str]:
        before = len(pages.fetches())
        tab = context.new_page()
        tab.goto(child_url)
        wait_until(lambda: len(pages.fetches()) > before, what="the new tab's first attempt")
        tab.wait_for_timeout(300)
        return tab, pages.fetches()[before].page_id

    tab_a, page_a = open_tab()
    tab_b, page_b = open_tab()
    # A is alive and keeps its lease: B leaves A's page alone.
    assert page_b != page_a
    assert fetches_for(page_a) == 1

    tab_a.goto("about:blank")  # releases A's page
    tab_c, first_of_c = open_tab()
    assert first_of_c == page_a  # C took the released page over, and sends it before its own
    tab_d, first_of_d = open_tab()
    assert first_of_d not in (page_a, page_b, first_of_c)  # C holds the lease now: D sends only its own
    assert fetches_for(page_a) == 2

    pages.responder = accept_all
    for tab in (tab_b, tab_c, tab_d):
        tab.evaluate("dispatchEvent(new Event('online'))")
    wait_until(lambda: fetches_for(page_a) >= 3, what="page A delivered")
    tab_b.wait_for_timeout(1000)

    assert fetches_for(page_a) == 3
    assert {e["seq"] for e in pages.events(page_a)} == {1}
    assert page_a not in stored_queues(tab_b)


def test_blocked_storage_keeps_events_in_memory(page: Page, pages: PageServer, console: list[str]) -> None:
    # The Contact Center's case: a cross-site frame, whose storage this Chromium refuses.
    serve_child(pages)
    pages.pages["/parent.html"] = parent_page(pages.url("localhost", "/child.html"))
    script = iter([refuse(503, retry_after=1), refuse(503, retry_after=1)])
    pages.responder = lambda request: next(script, accept_all)(request)
    page.goto(pages.url("127.0.0.1", "/parent.html"))
    child = child_frame(page)
    assert child.evaluate(
        "(() => { try { localStorage; return 'usable' } catch (e) { return e.name } })()"
    ) == ("SecurityError")
    page.evaluate("announce('#?mobile=18888888888&status=100&type=phone')")
    page.evaluate("announce('#?mobile=18888888888&status=200&type=phone')")
    child.evaluate("CallTrail.sendCard({header: 'h', desc: 'd', pic: 'p', url: 'u'})")
    wait_until(lambda: len(pages.fetches()) >= 3, what="two refusals and a retry")
    page.wait_for_timeout(1200)

    accepted = [e["seq"] for r in pages.fetches()[2:] for e in r.events]
    assert sorted(accepted) == [1, 2, 3, 4]
    assert child.evaluate("__test.errors") == []
    assert [line for line in console if BROWSER_NOISE not in line] == []


def test_full_storage_leaves_the_host_page_data_alone(
    page: Page, pages: PageServer, console: list[str]
) -> None:
    serve_child(pages)
    page.goto(pages.url("localhost", "/blank.html"))
    filled = page.evaluate(
        """() => { let n = 0, size = 1 << 20;
                   while (size >= 16) { try { localStorage.setItem('host-' + n, 'x'.repeat(size)); n++; }
                                         catch (e) { size >>= 1; } }
                   return n; }"""
    )
    host_keys = page.evaluate("Object.keys(localStorage).sort()")
    pages.responder = refuse(503, retry_after=1)
    page.goto(pages.url("localhost", "/child.html"))
    page.evaluate("location.hash = '#?mobile=1&status=100&type=phone'")
    wait_until(lambda: len(pages.fetches()) >= 1, what="the first attempt")
    pages.responder = accept_all
    wait_until(lambda: {e["seq"] for e in pages.events()} >= {1, 2}, what="both events")

    assert filled > 0
    assert page.evaluate("Object.keys(localStorage).sort()") == host_keys
    assert page.evaluate("__test.errors") == []
    assert [line for line in console if BROWSER_NOISE not in line] == []
