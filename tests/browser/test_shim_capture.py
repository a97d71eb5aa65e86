"""What the shim records of the pop-up's ccc-sdk messages, in a real Chromium, with the workstation (parent)
and the pop-up (child) on two sites: the CallTrail API, and the opt-in capture of the page's own postMessage
calls through a replaced window.parent, with its documented limits."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Frame, Page

from tests.browser.harness import PageServer, child_page, parent_page, shim_tag, wait_until


def ccc(event: str, message: Any) -> dict[str, Any]:
    return {"source": "ccc-sdk", "payload": {"event": event, "message": message}}


# Runs in the pop-up before the shim: page code that kept a reference to the parent, and a reply handler.
BEFORE_SHIM = """<script>
  window.__early = window.parent;
</script>"""
REPLY_HANDLER = """<script>
  addEventListener("message", (e) => {
    const fromParent = e.source === window.parent, fromTop = e.source === window.top;
    __test.replies.push({ fromParent, fromTop, data: e.data });
  });
</script>"""


def open_pair(page: Page, pages: PageServer, **data: str) -> Frame:
    tags = shim_tag(pages.url("127.0.0.1", "/shim.js"), **data)
    pages.pages["/child.html"] = child_page(tags, body=REPLY_HANDLER, before=BEFORE_SHIM)
    pages.pages["/parent.html"] = parent_page(pages.url("localhost", "/child.html"))
    page.goto(pages.url("127.0.0.1", "/parent.html"))
    return next(f for f in page.frames if f.url.endswith("/child.html"))


def messages_recorded(pages: PageServer) -> list[Any]:
    return [e["data"] for e in pages.events() if e["type"] == "message"]


def test_the_api_posts_the_exact_envelopes_and_records_them(page: Page, pages: PageServer) -> None:
    child = open_pair(page, pages)
    returned = child.evaluate(
        """[CallTrail.callOut('15889000000', 'Mr. Liu'),
            CallTrail.callOut('15889000001'),
            CallTrail.sendCard({header: 'Title', desc: 'Description', pic: 'https://x/p.png', url: 'https://x/'}),
            CallTrail.post('sendTextMessage', 'hello')]"""
    )
    expected = [
        ccc("callOut", {"phoneNumber": "15889000000", "desc": "Mr. Liu"}),
        ccc("callOut", {"phoneNumber": "15889000001"}),
        ccc(
            "sendCard",
            {"header": "Title", "desc": "Description", "pic": "https://x/p.png", "url": "https://x/"},
        ),
        ccc("sendTextMessage", "hello"),
    ]
    wait_until(lambda: len(messages_recorded(pages)) == 4, what="four recorded messages")

    assert returned == [True, True, True, True]
    assert page.evaluate("received") == expected
    assert messages_recorded(pages) == expected
    # Without data-capture the page's window.parent is the real one.
    assert child.evaluate("window.parent === window.top") is True


def test_without_opt_in_the_pages_own_post_message_is_not_recorded(page: Page, pages: PageServer) -> None:
    child = open_pair(page, pages)
    child.evaluate(
        "window.parent.postMessage({source: 'ccc-sdk', payload: {event: 'callOut', message: {}}}, '*')"
    )
    child.evaluate("CallTrail.sendCard({header: 'marker'})")
    wait_until(lambda: len(messages_recorded(pages)) == 1, what="the marker")
    page.wait_for_timeout(700)

    assert messages_recorded(pages) == [ccc("sendCard", {"header": "marker"})]
    assert len(page.evaluate("received")) == 2


def test_capture_parent_records_what_goes_through_window_parent_and_says_what_it_misses(
    page: Page, pages: PageServer
) -> None:
    child = open_pair(page, pages, capture="parent")
    child.evaluate(
        """() => {
          const m = (n) =>
            ({source: 'ccc-sdk', payload: {event: 'callOut', message: {phoneNumber: String(n)}}});
          window.parent.postMessage(m(1), '*');           // caught
          parent.postMessage(m(2), '*');                  // caught: the bare name is window.parent
          self.parent.postMessage(m(3), {targetOrigin: '*'});  // caught, options form too
          window.top.postMessage(m(4), '*');              // missed: window.top cannot be replaced
          __early.postMessage(m(5), '*');                 // missed: taken before the shim ran
          window.parent.postMessage({hello: 'not ccc-sdk'}, '*');  // forwarded, not recorded
          window.parent.postMessage('a string', '*');     // forwarded, not recorded
        }"""
    )
    child.evaluate("CallTrail.callOut('6')")  # recorded once, not again through the proxy
    wait_until(lambda: len(page.evaluate("received")) == 8, what="every message at the parent")
    wait_until(lambda: len(messages_recorded(pages)) == 4, what="the recorded messages")
    page.wait_for_timeout(700)

    received = page.evaluate("received")
    assert [
        m["payload"]["message"]["phoneNumber"] for m in received if isinstance(m, dict) and "payload" in m
    ] == [
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
    ]
    assert [m["payload"]["message"]["phoneNumber"] for m in messages_recorded(pages)] == ["1", "2", "3", "6"]

    # The parent acknowledged each message; the page's `event.source === window.parent` checks still hold.
    wait_until(lambda: len(child.evaluate("__test.replies")) == 8, what="the parent's replies")
    replies = child.evaluate("__test.replies")
    assert all(reply["fromParent"] for reply in replies)
    # The documented costs: identity with window.top is lost, for the parent and for its messages.
    assert not any(reply["fromTop"] for reply in replies)
    assert child.evaluate("window.parent === window.top") is False
    # The rest of the parent still works through the proxy.
    assert child.evaluate("[window.parent.closed, window.parent.length, typeof window.parent.focus]") == [
        False,
        1,
        "function",
    ]
    child.evaluate("window.parent.focus()")
    assert child.evaluate("__test.errors") == []


def test_capture_parent_leaves_a_top_level_page_alone(page: Page, pages: PageServer) -> None:
    pages.pages["/child.html"] = child_page(shim_tag(pages.url("127.0.0.1", "/shim.js"), capture="parent"))
    page.goto(pages.url("localhost", "/child.html"))
    assert page.evaluate("window.parent === window && window.parent === window.top") is True
    assert page.evaluate("CallTrail.callOut('1')") is True
    wait_until(lambda: len(messages_recorded(pages)) == 1, what="the call-out")
