"""`calltrail demo` end to end, in a real Chromium: a newcomer clicks through a phone call and a chat with two
customers on the workstation simulator, calls out and sends a card from the CRM pop-up (another origin), and
sees it all stored; the database is checked afterwards, down to the simulated CCC push of the call's CDR
joined to its page session."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from playwright.sync_api import Page
from sqlalchemy import create_engine, select

from service.cli import cli
from service.storage.engine import normalize_url
from service.storage.schema import call_legs, call_records, events, sessions
from tests.batches import batch, body, hash_event, message_event
from tests.browser.harness import wait_until
from tests.servers import free_port

pytestmark = pytest.mark.slow


@dataclass
class RunningDemo:
    process: subprocess.Popen[str]
    lines: list[str]

    def value(self, label: str) -> str:
        for line in self.lines:
            if line.strip().startswith(label):
                return line.split()[len(label.split())]
        raise AssertionError(f"no {label!r} line in {self.lines}")

    @property
    def database(self) -> Path:
        found = re.search(r"database (\S+)", self.lines[0])
        assert found is not None, self.lines
        return Path(found.group(1))

    def stop(self) -> str:
        """Ctrl+C, as a person would; what it printed after the summary."""
        self.process.send_signal(signal.SIGINT)
        try:
            rest, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()  # a demo that does not stop must not outlive the test run
            raise
        return rest


def start_demo(*args: str) -> RunningDemo:
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "demo", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("CALLTRAIL_")},
    )
    assert process.stdout is not None
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+C"):
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(60) or not lines or not lines[-1].startswith("Press Ctrl+C"):
        process.kill()
        process.communicate()
        raise AssertionError(f"the demo did not start: {lines}")
    return RunningDemo(process, lines)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[RunningDemo]:
    running = start_demo("--data-dir", str(tmp_path / "demo"))
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.communicate()


def received_messages(page: Page) -> list[Any]:
    texts = page.locator("#messages .message").all_inner_texts()
    return [json.loads(text[text.index("{") :]) for text in reversed(texts)]


def test_demo_shows_a_call_a_chat_and_the_agents_actions_stored(page: Page, demo: RunningDemo) -> None:
    workstation = demo.value("workstation simulator")
    crm_url = demo.value("CRM pop-up page")
    assert workstation.startswith("http://127.0.0.1:")
    assert crm_url.startswith("http://localhost:")  # a second origin, and another site
    assert demo.value("site key").startswith("cts_")
    assert demo.value("read key").startswith("ctk_")
    assert demo.value("CCC app") == "1400000001"

    page.goto(workstation)
    crm = page.frame_locator("#crm")
    page.click("#call-incoming")
    mobile = page.inner_text("#call-state").split()[-1]
    page.click("#call-connect")
    crm.locator("#call-out").click()
    crm.locator("#send-card").click()
    crm.locator("#legacy-call-out").click()
    page.click("#call-hangup")
    for step in ("chat1-offer", "chat2-offer", "chat1-accept", "chat2-accept", "chat2-end", "chat1-end"):
        page.click(f"#{step}")
        page.wait_for_timeout(100)

    # The workstation got the pop-up's messages, exactly as the Contact Center would.
    wait_until(lambda: len(received_messages(page)) == 3, what="three messages at the workstation")
    card = {
        "header": "Your ticket #4711",
        "desc": "Router replacement, shipped today",
        "pic": "https://crm.example.com/static/ticket.png",
        "url": "https://crm.example.com/tickets/4711",
    }
    assert received_messages(page) == [
        {
            "source": "ccc-sdk",
            "payload": {"event": "callOut", "message": {"phoneNumber": mobile, "desc": "Acme customer"}},
        },
        {"source": "ccc-sdk", "payload": {"event": "sendCard", "message": card}},
        {"source": "ccc-sdk", "payload": {"event": "callOut", "message": {"phoneNumber": mobile}}},
    ]
    # The newcomer sees the sessions appear on the page.
    wait_until(lambda: page.locator("#sessions tr").count() == 3, what="three sessions shown")
    wait_until(lambda: page.locator("#events tr").count() > 0, what="events shown")

    engine = create_engine(normalize_url(f"sqlite:///{demo.database}"))
    try:

        def ended_sessions() -> list[Any]:
            with engine.connect() as conn:
                return list(conn.execute(select(sessions).where(sessions.c.ended_at.is_not(None))).mappings())

        wait_until(lambda: len(ended_sessions()) == 3, what="three ended sessions in the database")
        by_channel: dict[str, list[Any]] = {}
        for session in ended_sessions():
            by_channel.setdefault(session["channel"], []).append(session)
        (call,) = by_channel["phone"]
        assert call["customer_mobile"] == mobile
        assert call["agent_email"] == "li.na@example.com"
        assert call["outcome"] == "answered"
        assert call["offered_at"] < call["connected_at"] < call["ended_at"]
        assert (call["call_outs"], call["cards_sent"]) == (2, 1)
        chats = sorted(by_channel["im"], key=lambda s: s["customer_user_id"])
        assert [c["customer_user_id"] for c in chats] == ["web-user-7f3a", "web-user-91c2"]
        assert all(c["outcome"] == "answered" and c["connected_at"] is not None for c in chats)

        # CCC's push of the call's CDR (simulated), joined to the page's session.
        wait_until(lambda: "CCC pushed the CDR" in page.inner_text("#ccc-state"), what="the CDR pushed")
        with engine.connect() as conn:
            (record,) = conn.execute(select(call_records)).mappings().all()
            (leg,) = conn.execute(select(call_legs)).mappings().all()
        assert record["sdk_app_id"] == 1400000001 and record["channel"] == "phone"
        assert record["accept_at"] is not None and record["end_status"] == "ok"
        assert leg["agent_email"] == "li.na@example.com" and leg["accept_at"] is not None
        assert (leg["join_state"], leg["page_session_id"]) == ("joined", call["id"])
        assert abs(leg["join_offset_ms"]) < 1_000

        # The coverage report counts it as seen.
        read_key = demo.value("read key")
        coverage = httpx.get(
            f"{demo.value('CallTrail service')}/v1/coverage",
            headers={"authorization": f"Bearer {read_key}"},
            timeout=10,
        ).json()
        assert coverage["totals"] == {
            "answered_legs": 1,
            "seen": 1,
            "unseen": 0,
            "ambiguous": 0,
            "page_only": 0,
        }

        with engine.connect() as conn:
            rows = conn.execute(select(events.c.page_url, events.c.seq, events.c.type)).all()
        assert {r.page_url for r in rows} == {crm_url}  # never the hash
        assert sorted(r.seq for r in rows) == list(range(1, len(rows) + 1))
        assert [r.type for r in rows].count("message") == 3
    finally:
        engine.dispose()

    assert "demo stopped" in demo.stop()
    assert demo.process.returncode == 0
    assert demo.database.exists()  # --data-dir keeps it


def test_demo_deletes_its_throwaway_database_on_exit() -> None:
    running = start_demo()
    assert running.lines[0].endswith("(deleted on exit)")
    assert running.database.exists()
    running.stop()
    assert running.process.returncode == 0
    assert not running.database.parent.exists()


def test_demo_says_when_its_port_is_taken() -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = CliRunner().invoke(cli, ["demo", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_the_demo_tables_show_hostile_and_malformed_events_as_text(page: Page, demo: RunningDemo) -> None:
    """A lone '%' in a hash (which decodeURIComponent refuses) and markup in every field: the tables keep
    rendering, and render them as text."""
    crm_origin = demo.value("CRM pop-up page").split("/", 3)
    origin = "/".join(crm_origin[:3])
    hostile = '<img src=x onerror="window.__xss=1">'
    now = int(time.time() * 1000)
    sent = [
        hash_event(1, f"#?mobile=100%&status=100&type=phone&nickName={hostile}", ts=now - 2000),
        message_event(2, hostile, {"x": hostile}, ts=now - 1000),
    ]
    document = batch(demo.value("site key"), sent, url=f"{origin}/crm.html", sent_at=now)
    answer = httpx.post(
        f"{demo.value('CallTrail service')}/v1/events",
        content=body(document),
        headers={"origin": origin, "content-type": "text/plain"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    page.goto(demo.value("workstation simulator"))
    wait_until(lambda: page.locator("#events tr").count() == 2, what="both events shown")
    shown = page.inner_text("#events")
    assert "mobile=100%&status=100" in shown  # the hash as stored, since it cannot be decoded
    assert hostile in shown
    assert page.evaluate("window.__xss") is None
    assert page.locator("#events img").count() == 0
