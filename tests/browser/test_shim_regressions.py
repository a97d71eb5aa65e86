"""Delivery faults a review of the shim reproduced in Chromium, each fixed: a beacon that failed while the tab
was hidden, a Retry-After cut short by a new event, and one failing page starving every other."""

from __future__ import annotations

import time

from playwright.sync_api import BrowserContext, Page

from tests.browser.harness import (
    Answer,
    PageServer,
    Recorded,
    accept_all,
    child_page,
    refuse,
    shim_tag,
    wait_until,
)

# Storage blocked (the Contact Center's cross-site iframe) and a visibility state the test can flip.
BLOCKED_AND_FLIPPABLE = """<script>
Object.defineProperty(window, 'localStorage',
  {get() { throw new DOMException('blocked', 'SecurityError'); }});
window.__vis = 'visible';
Object.defineProperty(Document.prototype, 'visibilityState',
  {get() { return window.__vis; }, configurable: true});
</script>"""


def test_events_beaconed_into_an_outage_are_beaconed_again_at_close(page: Page, pages: PageServer) -> None:
    pages.responder = refuse(503, retry_after=30)
    pages.pages["/child.html"] = child_page(
        shim_tag(pages.url("127.0.0.1", "/shim.js")), before=BLOCKED_AND_FLIPPABLE
    )
    page.goto(pages.url("localhost", "/child.html") + "#?mobile=1&status=100&type=phone")
    wait_until(lambda: pages.fetches(), what="the first fetch")
    time.sleep(0.5)  # its 503 has come back: nothing is in flight
    # The agent looks at another tab during the outage: the queue goes by beacon, into the 503.
    page.evaluate("__vis = 'hidden'; document.dispatchEvent(new Event('visibilitychange'))")
    wait_until(lambda: pages.beacons(), what="a beacon on hide", timeout_s=5)
    page.evaluate("__vis = 'visible'; document.dispatchEvent(new Event('visibilitychange'))")
    before = len(pages.requests)
    pages.responder = accept_all  # the service is back; the retry is 30 s away
    page.close()  # the agent closes the pop-up before it
    wait_until(lambda: len(pages.requests) > before, what="a beacon at close", timeout_s=5)
    assert pages.requests[before].is_beacon
    assert [e["seq"] for e in pages.requests[before].events] == [1]


def test_retry_after_holds_when_an_event_arrives_during_the_request(page: Page, pages: PageServer) -> None:
    def slow_429(_request: Recorded) -> Answer:
        time.sleep(0.3)
        return 429, {"Retry-After": "30"}, b'{"error":{"code":"rate_limited","message":"","details":[]}}'

    pages.responder = slow_429
    pages.pages["/child.html"] = child_page(shim_tag(pages.url("127.0.0.1", "/shim.js")))
    page.goto(pages.url("localhost", "/child.html") + "#a")
    wait_until(lambda: pages.fetches(), what="the first fetch")
    page.evaluate("location.hash = '#b'")  # recorded while the first request is out
    time.sleep(3)
    assert len(pages.fetches()) == 1  # it used to go again 0.5 s later, Retry-After: 30 notwithstanding


def test_a_batch_that_always_fails_does_not_starve_the_next_page(
    context: BrowserContext, pages: PageServer
) -> None:
    def poisoned(request: Recorded) -> Answer:
        if any(e.get("hash") == "#poison" for e in request.events):
            return 500, {}, b'{"error":{"code":"internal_error","message":"","details":[]}}'
        return accept_all(request)

    pages.responder = poisoned
    pages.pages["/child.html"] = child_page(shim_tag(pages.url("127.0.0.1", "/shim.js")))
    url = pages.url("127.0.0.1", "/child.html", port=pages.port_b)  # same site: storage works
    first = context.new_page()
    first.goto(url + "#poison")
    wait_until(lambda: pages.fetches(), what="the poisoned fetch")
    first.close()  # its queue is stored, and the next load takes it over
    second = context.new_page()
    second.goto(url + "#next-call")
    for n in range(3):
        second.evaluate(f"location.hash = '#call{n}'")
    wait_until(
        lambda: any(e.get("hash") == "#call2" for r in pages.fetches() for e in r.events),
        what="the second page's events, past the failing one",
        timeout_s=15,
    )
