"""How the shim delivers, against a scripted endpoint in a real Chromium: the wire format, batching, what the
answers make it dequeue or retry, backoff, and the beacons of a page going away."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid

import pytest
from playwright.sync_api import Page

from service.ingest.protocol import RejectedEvent, parse_body
from tests.browser.harness import (
    SITE_KEY,
    Answer,
    PageServer,
    Recorded,
    accept_all,
    child_page,
    refuse,
    shim_tag,
    wait_until,
)

BATCH_BYTES = 16384
ENVELOPE_ALLOWANCE = 400  # what the envelope adds around the events of a batch


def open_child(page: Page, pages: PageServer, hash_at_load: str = "", **data: str) -> None:
    """A pop-up page on http://localhost:<a> whose shim posts to the endpoint at http://127.0.0.1:<a>."""
    pages.pages["/child.html"] = child_page(shim_tag(pages.url("127.0.0.1", "/shim.js"), **data))
    page.goto(pages.url("localhost", "/child.html") + hash_at_load)


def test_speaks_wire_format_v1_as_a_simple_text_plain_request(
    page: Page, pages: PageServer, console: list[str]
) -> None:
    loaded_ms = time.time_ns() // 1_000_000
    open_child(page, pages, "#?mobile=18888888888&status=100&type=phone")
    page.evaluate("location.hash = '#?mobile=18888888888&status=200&type=phone'")
    page.evaluate("location.hash = '#/tickets?mobile=18888888888&status=400&type=phone'")
    page.evaluate("CallTrail.callOut('15889000000', 'Mr. Liu')")
    pages.wait_for_events(4)

    events = pages.events()
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [(e["type"], e.get("trigger"), e.get("hash")) for e in events[:3]] == [
        ("hash", "load", "#?mobile=18888888888&status=100&type=phone"),
        ("hash", "hashchange", "#?mobile=18888888888&status=200&type=phone"),
        ("hash", "hashchange", "#/tickets?mobile=18888888888&status=400&type=phone"),
    ]
    assert events[3]["type"] == "message"
    assert events[3]["data"] == {
        "source": "ccc-sdk",
        "payload": {"event": "callOut", "message": {"phoneNumber": "15889000000", "desc": "Mr. Liu"}},
    }
    assert len({e["id"] for e in events}) == 4
    assert all(str(uuid.UUID(e["id"])) == e["id"] for e in events)
    # Time-ordered ids (UUIDv7): their first 48 bits are the time the shim made them, in ms.
    made = [uuid.UUID(pages.fetches()[0].page_id), *(uuid.UUID(e["id"]) for e in events)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)
    made_ms = [int(u.hex[:12], 16) for u in made]
    now_ms = time.time_ns() // 1_000_000
    assert loaded_ms <= made_ms[0] and made_ms == sorted(made_ms) and made_ms[-1] <= now_ms

    for request in pages.fetches():
        envelope = parse_body(request.body, max_events=500)
        assert not any(isinstance(e, RejectedEvent) for e in envelope.events)
        assert envelope.site_key == SITE_KEY
        assert envelope.page_url == pages.url("localhost", "/child.html")
        assert "#" not in request.document["page"]["url"]
        # A string body: text/plain, which needs no CORS preflight, from the page's origin.
        assert request.content_type == "text/plain;charset=UTF-8"
        assert request.origin == pages.url("localhost", "")
        assert request.fetch_mode == "cors"
    assert len(pages.page_ids()) == 1
    assert pages.preflights == []
    assert console == []


def test_batches_stay_small_and_one_request_at_a_time(page: Page, pages: PageServer) -> None:
    open_child(page, pages)
    pages.wait_for_events(1)
    # 250 small events, then 100 of about 1.2 KB, all within one batching delay.
    page.evaluate("for (let i = 1; i <= 250; i++) location.hash = '#n=' + i")
    page.evaluate("for (let i = 1; i <= 100; i++) location.hash = '#big=' + i + '&' + 'x'.repeat(1200)")
    pages.wait_for_events(351)

    events = pages.events()
    assert [e["seq"] for e in events] == list(range(1, 352))
    batches = pages.fetches()[1:]
    assert max(len(b.events) for b in batches) == 100
    assert all(len(b.body) <= BATCH_BYTES + ENVELOPE_ALLOWANCE for b in batches)
    assert any(len(b.events) < 20 for b in batches)  # the big ones were cut by size, not count
    assert pages.most_in_flight == 1


def test_per_event_results_decide_what_is_sent_again(page: Page, pages: PageServer) -> None:
    answered: list[Recorded] = []

    def respond(request: Recorded) -> Answer:
        answered.append(request)
        if len(answered) > 1:
            return accept_all(request)
        ids = [e["id"] for e in request.events]
        # The last event is not named: it was not acknowledged, so it must come again.
        results = [
            {"id": ids[0], "status": "accepted"},
            {"id": ids[1], "status": "duplicate"},
            {"id": ids[2], "status": "rejected", "error": "test"},
        ]
        return 200, {}, json.dumps({"results": results}).encode()

    pages.responder = respond
    pages.pages["/child.html"] = child_page(shim_tag(pages.url("127.0.0.1", "/shim.js")))
    page.goto(pages.url("localhost", "/child.html"))
    page.evaluate("location.hash = '#a'; location.hash = '#b'; location.hash = '#c'")
    wait_until(lambda: len(answered) >= 2, what="the second request")
    page.wait_for_timeout(1500)

    first, second = (r.events for r in answered[:2])
    assert len(first) == 4
    assert [e["id"] for e in second] == [first[3]["id"]]
    assert len(answered) == 2


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(page: Page, pages: PageServer, status: int) -> None:
    answers = iter([refuse(status, retry_after=2)])
    pages.responder = lambda request: next(answers, accept_all)(request)
    open_child(page, pages)
    wait_until(lambda: len(pages.fetches()) >= 2, what="the retry")

    first, second = pages.fetches()[:2]
    assert 1.95 <= second.at - first.at <= 3.5  # never early; the rest is timer and machine slack
    assert second.events == first.events


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_client_errors_other_than_429_are_not_retried(page: Page, pages: PageServer, status: int) -> None:
    answers = iter([refuse(status)])
    pages.responder = lambda request: next(answers, accept_all)(request)
    open_child(page, pages)
    wait_until(lambda: len(pages.fetches()) >= 1, what="the first request")
    page.wait_for_timeout(1500)
    assert len(pages.fetches()) == 1  # no retry of the refused load event

    page.evaluate("location.hash = '#later'")
    wait_until(lambda: len(pages.fetches()) >= 2, what="the next batch")
    assert [e["seq"] for e in pages.fetches()[1].events] == [2]


def test_server_errors_back_off_exponentially_with_jitter_and_reset_on_success(
    page: Page, pages: PageServer
) -> None:
    script = iter(
        [
            refuse(500),
            lambda request: None,  # a network error: the connection drops unanswered
            refuse(503),  # no Retry-After: the backoff alone decides
            accept_all,
            refuse(500),
        ]
    )
    pages.responder = lambda request: next(script, accept_all)(request)
    open_child(page, pages)
    wait_until(lambda: len(pages.fetches()) >= 4, timeout_s=20, what="three retries")
    page.evaluate("location.hash = '#after-recovery'")
    wait_until(lambda: len(pages.fetches()) >= 6, timeout_s=20, what="the retry after recovery")

    times = [r.at for r in pages.fetches()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Base 1 s doubling per failure, each wait scaled by a random factor in [0.5, 1.5); the upper bounds allow
    # half a second for timers on a busy machine.
    assert 0.45 <= gaps[0] <= 2.0
    assert 0.95 <= gaps[1] <= 3.5
    assert 1.95 <= gaps[2] <= 6.5
    assert 0.45 <= gaps[4] <= 2.0  # a success reset the backoff
    delivered = [e["seq"] for r in pages.fetches()[3:] for e in r.events]
    assert sorted(set(delivered)) == [1, 2]


def test_an_event_too_big_to_send_is_dropped_and_leaves_a_gap(page: Page, pages: PageServer) -> None:
    open_child(page, pages)
    posted = page.evaluate(
        "CallTrail.post('sendCard', {header: 'big', pic: 'data:image/png;base64,' + 'A'.repeat(70000)})"
    )
    page.evaluate("CallTrail.sendCard({header: 'small'})")
    pages.wait_for_events(2)
    page.wait_for_timeout(700)

    assert posted is True  # the workstation still got it
    events = pages.events()
    assert [e["seq"] for e in events] == [1, 3]
    assert events[1]["data"]["payload"]["message"] == {"header": "small"}


def test_a_page_going_away_sends_the_rest_by_beacons_within_the_keepalive_budget(
    page: Page, pages: PageServer
) -> None:
    # The service refuses everything for a minute: all events stay queued until the page goes.
    pages.responder = refuse(503, retry_after=60)
    open_child(page, pages)
    page.evaluate("for (let i = 1; i <= 120; i++) location.hash = '#n=' + i + '&' + 'x'.repeat(600)")
    wait_until(lambda: len(pages.fetches()) >= 1, what="the first attempt")
    page.wait_for_timeout(700)
    page.goto("about:blank")
    wait_until(lambda: len(pages.beacons()) >= 2, what="beacons")
    page.wait_for_timeout(500)

    beacons = pages.beacons()
    assert all(b.content_type == "text/plain;charset=UTF-8" for b in beacons)
    assert all(len(b.body) <= BATCH_BYTES + ENVELOPE_ALLOWANCE for b in beacons)
    assert sum(len(b.body) for b in beacons) <= 65536
    sent = [e["seq"] for b in beacons for e in b.events]
    assert len(sent) == len(set(sent))  # no event in two beacons
    # Oldest first (the browser sends the beacons concurrently, so they may arrive in any order).
    assert sorted(sent) == list(range(1, len(sent) + 1))
    assert len(sent) < 121  # the budget did not take them all: the rest wait in storage


def test_requests_never_overlap_even_when_the_endpoint_is_slow(page: Page, pages: PageServer) -> None:
    gate = threading.Event()

    def slow(request: Recorded) -> Answer:
        gate.wait(3)
        return accept_all(request)

    pages.responder = slow
    open_child(page, pages)
    wait_until(lambda: len(pages.fetches()) >= 1, what="the first request")
    page.evaluate("for (let i = 1; i <= 5; i++) location.hash = '#n=' + i")
    page.wait_for_timeout(1200)
    assert len(pages.fetches()) == 1
    gate.set()
    pages.wait_for_events(6)
    assert pages.most_in_flight == 1
