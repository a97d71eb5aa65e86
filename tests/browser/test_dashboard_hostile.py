"""No stored or reflected XSS in the dashboard: hostile text in every hash parameter, card and call-out field,
event name, page URL and dashboard URL parameter, ingested through the real API, is shown as text in every
view, with the page's CSP and with it bypassed (the escaping alone must hold)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page

from service.admin.registry import add_site, create_key
from service.config import Settings
from service.storage.engine import make_engine
from tests import databases
from tests.batches import batch, body, hash_event, message_event
from tests.conftest import ORIGIN
from tests.servers import Server

KEY_STORAGE = "calltrail.readKey"
MARK = "xss-mark"
# Each payload sets window.__xss if it ever runs; each carries MARK so its text can be found on the page.
PAYLOADS = [
    f'<img src=x onerror="window.__xss=1">{MARK}',
    f'"><svg onload="window.__xss=1">{MARK}',
    f"</script><script>window.__xss=1</script>{MARK}",
    f"'-alert(1)-'{MARK}<iframe srcdoc=\"<script>parent.__xss=1</script>\">",
    f"javascript:window.__xss=1//{MARK}",
]
HASH_PARAMS = ["mobile", "userId", "nickName", "avatar", "agentEmail", "agentMobile", "agentNickName",
               "agentRoleId", "sdkAppId"]  # fmt: skip
SETTLED = """() => document.querySelector("main").getAttribute("aria-busy") === "false" &&
    (document.body.dataset.ready === "true" || document.getElementById("message").innerText !== "")"""
VIEWS = ["overview", "sessions", "agents", "cards", "audit", "quality"]


@dataclass
class Hostile:
    server: Server
    key: str
    session_ids: list[str]


def _hash(payload: str, status: int) -> str:
    fields = {name: payload for name in HASH_PARAMS} | {"type": "phone", "status": str(status)}
    return "#?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items())


@pytest.fixture(scope="module")
def hostile(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    directory = tmp_path_factory.mktemp("hostile")
    url = databases.sqlite_create_database(sqlite_template, directory)
    engine = make_engine(Settings(database_url=url))
    site = add_site(engine, "crm", [ORIGIN])
    key = create_key(engine, "read", "xss-test").plaintext
    engine.dispose()
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": url, "CALLTRAIL_RATE_LIMIT_PER_IP": "100000/second"}
    server = Server([], env, directory)
    try:
        _post_hostile_calls(server, site.site_key)
    except BaseException:
        server.kill()
        raise
    reader = httpx.Client(base_url=server.base, headers={"authorization": f"Bearer {key}"}, timeout=30)
    try:
        sessions = httpx_wait_for_sessions(reader, len(PAYLOADS))
        yield Hostile(server, key, sessions)
    finally:
        reader.close()
        server.terminate()


def _post_hostile_calls(server: Server, site_key: str) -> None:
    """One call per payload, through the real API: every field the pop-up can send carries it."""
    now = int(time.time() * 1000) - 600_000
    headers = {"origin": ORIGIN, "content-type": "text/plain;charset=UTF-8"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        for n, payload in enumerate(PAYLOADS):
            at = now + n * 60_000
            card = {key: payload for key in ("header", "desc", "pic", "url")}
            events = [
                hash_event(1, _hash(payload, 100), ts=at),
                hash_event(2, _hash(payload, 200), ts=at + 2_000),
                message_event(3, "sendCard", card, ts=at + 3_000),
                message_event(4, "callOut", {"phoneNumber": payload, "desc": payload}, ts=at + 4_000),
                message_event(5, payload, {"x": payload}, ts=at + 5_000),
                hash_event(6, _hash(payload, 400), ts=at + 6_000),
            ]
            document = batch(
                site_key, events, page_id=str(uuid.uuid4()), sent_at=at + 7_000,
                url=f"https://crm.example.com/?q={quote(payload, safe='')}",
            )  # fmt: skip
            answer = client.post("/v1/events", content=body(document))
            assert answer.status_code == 200, answer.text
            assert {r["status"] for r in answer.json()["results"]} == {"accepted"}


def httpx_wait_for_sessions(reader: httpx.Client, count: int) -> list[str]:
    """The projection runs in the server's writer when idle: wait until every call is a session."""
    deadline = time.monotonic() + 30
    while True:
        listed = reader.get("/v1/sessions", params={"limit": 50}).json()["sessions"]
        if len(listed) >= count or time.monotonic() > deadline:
            assert len(listed) == count, listed
            return [s["id"] for s in listed]
        time.sleep(0.2)


def _today_range() -> dict[str, str]:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    return {"preset": "custom", "from": today, "to": today, "tz": "UTC"}


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "csp-bypassed"])
def test_hostile_text_is_only_ever_text(browser: Browser, hostile: Hostile, bypass_csp: bool) -> None:
    context = browser.new_context(bypass_csp=bypass_csp)
    context.add_init_script(f"window.localStorage.setItem({KEY_STORAGE!r}, {hostile.key!r})")
    dialogs: list[str] = []
    try:
        page: Page = context.new_page()

        def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        targets = [{"view": view, **_today_range()} for view in VIEWS]
        targets += [{"view": "session", "id": sid, **_today_range()} for sid in hostile.session_ids]
        # Hostile dashboard URL parameters too: each is read back into filters, links and API queries.
        hostile_filters = {"agent": PAYLOADS[0], "channel": PAYLOADS[1], "sort": PAYLOADS[2], "tz": "UTC",
                           "interval": PAYLOADS[3], "preset": "custom", "from": PAYLOADS[4]}  # fmt: skip
        targets.append({"view": "sessions", **hostile_filters})
        targets.append({"view": "session", "id": PAYLOADS[0]})
        shown_somewhere = 0
        for target in targets:
            page.goto(f"{hostile.server.base}/dashboard?{urlencode(target)}")
            # Ready, or refusing the hostile filters with its message (itself text).
            page.wait_for_function(SETTLED, timeout=15_000)
            page.wait_for_timeout(200)  # let any injected handler (onerror, onload) fire
            assert page.evaluate("window.__xss") is None, target
            assert page.locator("main img[src='x'], main svg[onload], main iframe, main script").count() == 0
            if MARK in page.inner_text("main") and target.get("id") != PAYLOADS[0]:
                shown_somewhere += 1
        assert dialogs == []
        # The hostile text is on the page as text: in the session list, each session, agents, cards, audit.
        assert shown_somewhere >= len(hostile.session_ids) + 3
    finally:
        context.close()


def test_every_read_answers_the_hostile_rows(hostile: Hostile) -> None:
    """What the ingest accepted, every read path returns (JSON and CSV), with the text unchanged."""
    with httpx.Client(
        base_url=hostile.server.base, headers={"authorization": f"Bearer {hostile.key}"}, timeout=30
    ) as reader:
        for path in ["/v1/sessions", "/v1/audit", "/v1/analytics/agents", "/v1/analytics/cards",
                     "/v1/analytics/outbound", "/v1/analytics/inbound", "/v1/quality"]:  # fmt: skip
            for fmt in ("json", "csv", "ndjson"):
                response = reader.get(path, params={"format": fmt})
                assert response.status_code in (200, 400), (path, fmt, response.text)
                if response.status_code == 400:
                    assert response.json()["error"]["code"] == "invalid_parameter"
        audit = reader.get("/v1/audit", params={"limit": 200}).json()["actions"]
        assert any(PAYLOADS[0] in str(a) for a in audit)
        for sid in hostile.session_ids:
            detail = reader.get(f"/v1/sessions/{sid}")
            assert detail.status_code == 200
            assert MARK in detail.text
