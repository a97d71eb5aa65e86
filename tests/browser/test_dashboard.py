"""The supervisor dashboard (/dashboard) in a real Chromium against a real `calltrail serve`: it shows the
numbers the query API gives for a seeded history, filters change them and live in the URL, every view renders,
and a missing key, a refused key and a stopped service each say what to do. Screenshots of each view go to
docs/screenshots/ for the docs."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route

from service.admin.registry import add_site, create_key
from service.config import Settings
from service.storage.engine import make_engine
from tests import databases
from tests.center import center_history
from tests.conftest import ORIGIN
from tests.projection_helpers import T0, hash_row, ingest
from tests.servers import Server

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
KEY_STORAGE = "calltrail.readKey"
# The seeded history starts at T0 (2025-11-24 16:00 UTC) and lasts under three days.
RANGE = {"preset": "custom", "from": "2025-11-24", "to": "2025-11-27", "tz": "UTC", "interval": "day"}
API_RANGE = {"from": "2025-11-24T00:00:00Z", "to": "2025-11-28T00:00:00Z"}
FIGURES = {
    "offered": ("offered",),
    "answered": ("answered",),
    "answer_rate": ("answer_rate",),
    "service_level": ("service_level",),
    "ring_p90": ("ring_s", "p90"),
    "talk_mean": ("talk_s", "mean"),
}


@dataclass
class Center:
    server: Server
    key: str
    api: httpx.Client
    env: dict[str, str]

    def get(self, path: str, **params: Any) -> Any:
        response = self.api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def url(self, **params: str) -> str:
        return f"{self.server.base}/dashboard?{urlencode(params)}"


@pytest.fixture(scope="module")
def center(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    """One server for the module over a known history (seeded once: it is the slow part), plus two pop-up
    pages that are live now: one call ringing, one connected."""
    directory = tmp_path_factory.mktemp("dashboard")
    url = databases.sqlite_create_database(sqlite_template, directory)
    settings = Settings(database_url=url)
    engine = make_engine(settings)
    site = add_site(engine, "crm", [ORIGIN])
    now = int(time.time() * 1000)
    agent = "agentEmail=live%40x.com&agentNickName=Live&sdkAppId=1400"
    ringing_page, connected_page = str(uuid.uuid4()), str(uuid.uuid4())
    live = [
        hash_row(site.id, ringing_page, 1, now - 3000, f"#?mobile=13900000001&type=phone&{agent}&status=100"),
        hash_row(site.id, connected_page, 1, now - 9000, f"#?mobile=13900000002&type=im&{agent}&status=100"),
        hash_row(site.id, connected_page, 2, now - 5000, f"#?mobile=13900000002&type=im&{agent}&status=200"),
    ]
    ingest(settings, [center_history(site.id, seed=7, start_ms=T0, agents=6, calls=16), live])
    key = create_key(engine, "read", "dashboard-test").plaintext
    engine.dispose()
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": url, "CALLTRAIL_RATE_LIMIT_PER_IP": "100000/second"}
    server = Server([], env, directory)
    client = httpx.Client(base_url=server.base, headers={"authorization": f"Bearer {key}"}, timeout=30)
    try:
        yield Center(server, key, client, env)
    finally:
        client.close()
        server.terminate()


def with_key(context: BrowserContext, key: str) -> None:
    """As if the user had entered the key once before: it is in the browser's storage at load."""
    context.add_init_script(f"window.localStorage.setItem({KEY_STORAGE!r}, {key!r})")


def wait_ready(page: Page) -> None:
    page.wait_for_selector("body[data-ready='true'] main[aria-busy='false']", timeout=15_000)


def figure_values(page: Page) -> dict[str, float | None]:
    values: dict[str, str] = page.eval_on_selector_all(
        "#figures [data-figure]",
        "ns => Object.fromEntries(ns.map(n => [n.dataset.figure, n.querySelector('dd').dataset.value]))",
    )
    return {name: (float(value) if value != "" else None) for name, value in values.items()}


def table_values(page: Page, selector: str) -> list[list[str]]:
    """Each body row's cells: data-value where the cell has one (the raw number), else its text."""
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tbody tr:not(.empty-row)",
        "rows => rows.map(r => [...r.cells].map(c => c.dataset.value ?? c.textContent))",
    )
    return rows


def number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def expected_figures(totals: dict[str, Any], cards: dict[str, Any]) -> dict[str, float | None]:
    expected: dict[str, float | None] = {}
    for name, path in FIGURES.items():
        value: Any = totals
        for part in path:
            value = value[part]
        expected[name] = number(value)
    expected["cards_sent"] = float(cards["cards_sent"])
    return expected


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


@pytest.fixture
def laptop(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    return page


def test_overview_shows_the_api_figures_charts_and_live_strip(
    center: Center, context: BrowserContext, laptop: Page
) -> None:
    errors: list[str] = []
    laptop.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    laptop.on("pageerror", lambda e: errors.append(str(e)))
    with_key(context, center.key)
    laptop.goto(center.url(view="overview", **RANGE))
    wait_ready(laptop)

    report = center.get("/v1/analytics/inbound", interval="day", tz="UTC", **API_RANGE)
    cards = center.get("/v1/analytics/cards", **API_RANGE)
    assert report["totals"]["offered"] > 20 and cards["cards_sent"] > 0  # the seeded history is in range
    assert figure_values(laptop) == expected_figures(report["totals"], cards)

    # Three charts drawn by uPlot, and under each the numbers it plots.
    for name in ("calls", "rates", "ring"):
        assert laptop.locator(f"#chart-{name} canvas").count() == 1
        assert laptop.get_attribute(f"#chart-{name}", "data-drawn") == "true"
    buckets = report["buckets"]
    assert len(buckets) == 4
    calls = table_values(laptop, "#table-calls")
    assert [[row[0], *map(float, row[1:])] for row in calls] == [
        [
            b["start"],
            b["offered"],
            b["answered"],
            b["not_answered"],
            b["offered"] - b["answered"] - b["not_answered"],
        ]
        for b in buckets
    ]
    rates = table_values(laptop, "#table-rates")
    assert [[number(v) for v in row[1:]] for row in rates] == [
        [number(b["answer_rate"]), number(b["service_level"])] for b in buckets
    ]
    ring = table_values(laptop, "#table-ring")
    assert [[number(v) for v in row[1:]] for row in ring] == [
        [number(b["ring_s"][p]) for p in ("p50", "p90", "max")] for b in buckets
    ]
    # The live strip: the seeded call still ringing and the chat still connected.
    live = center.get("/v1/live")
    assert (live["ringing_now"], live["connected_now"]) == (1, 1)
    laptop.wait_for_function("document.getElementById('live-ringing').dataset.value === '1'")
    assert laptop.get_attribute("#live-connected", "data-value") == "1"
    assert laptop.get_attribute("#live-longest", "data-value") not in (None, "")
    assert not laptop.is_visible("#message")
    screenshot(laptop, "dashboard.png")
    # Every figure carries its definition, shown on hover and on keyboard focus.
    assert not laptop.is_visible("#def-service_level")
    laptop.hover("[data-figure='service_level']")
    assert laptop.is_visible("#def-service_level")
    assert "short abandons" in laptop.inner_text("#def-service_level")
    laptop.mouse.move(0, 0)
    laptop.focus("[data-figure='ring_p90']")
    assert laptop.is_visible("#def-ring_p90") and not laptop.is_visible("#def-service_level")
    assert errors == []


def test_filters_change_the_figures_and_live_in_the_url(
    center: Center, context: BrowserContext, laptop: Page
) -> None:
    with_key(context, center.key)
    laptop.goto(center.url(view="overview", **RANGE))
    wait_ready(laptop)
    everything = figure_values(laptop)["offered"]

    laptop.select_option("#f-channel", "phone")
    laptop.wait_for_url("**channel=phone**")
    wait_ready(laptop)
    phone = center.get("/v1/analytics/inbound", interval="day", tz="UTC", channel="phone", **API_RANGE)
    assert figure_values(laptop)["offered"] == phone["totals"]["offered"] != everything

    agents = center.get("/v1/analytics/agents", **API_RANGE)["agents"]
    agent = agents[0]["agent_email"]
    laptop.fill("#f-agent", agent)
    laptop.fill("#f-tz", "Asia/Shanghai")
    laptop.press("#f-agent", "Enter")
    laptop.wait_for_url("**tz=Asia%2FShanghai**")
    wait_ready(laptop)
    shanghai_range = {"from": "2025-11-23T16:00:00Z", "to": "2025-11-27T16:00:00Z"}
    expected = center.get(
        "/v1/analytics/inbound",
        interval="day",
        tz="Asia/Shanghai",
        channel="phone",
        agent=agent,
        **shanghai_range,
    )
    # Cards sent, with a channel filter: the agent's cards posted during phone sessions (agents report).
    by_agent = center.get("/v1/analytics/agents", channel="phone", **shanghai_range)["agents"]
    cards = {"cards_sent": sum(a["cards_sent"] for a in by_agent if a["agent_email"] == agent)}
    assert figure_values(laptop) == expected_figures(expected["totals"], cards)
    starts = [row[0] for row in table_values(laptop, "#table-calls")]
    assert starts == [b["start"] for b in expected["buckets"]] and starts[0].endswith("+08:00")

    # The URL is the view: opened elsewhere (another browser with the key), it shows the same numbers.
    shared = laptop.url
    other = context.browser.new_context()  # type: ignore[union-attr]
    try:
        with_key(other, center.key)
        second = other.new_page()
        second.goto(shared)
        wait_ready(second)
        assert figure_values(second) == figure_values(laptop)
        assert second.input_value("#f-agent") == agent and second.input_value("#f-channel") == "phone"
    finally:
        other.close()

    # A preset range replaces the custom dates. The seeded history is a year old and the live calls are
    # another agent's, so with this agent the view is empty.
    laptop.select_option("#f-preset", "7d")
    laptop.wait_for_url("**preset=7d**")
    wait_ready(laptop)
    assert figure_values(laptop)["offered"] == 0
    assert "No calls were offered" in laptop.inner_text("#overview-empty")


def test_tables_views_and_session_detail(center: Center, context: BrowserContext, laptop: Page) -> None:
    errors: list[str] = []
    laptop.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    laptop.on("pageerror", lambda e: errors.append(str(e)))
    with_key(context, center.key)
    laptop.goto(center.url(view="agents", **RANGE))
    wait_ready(laptop)
    agents = center.get("/v1/analytics/agents", **API_RANGE)["agents"]
    rows = table_values(laptop, "#table-agents")
    assert len(rows) == len(agents)
    assert sorted(float(r[1]) for r in rows) == sorted(a["offered"] for a in agents)
    # Sorting by keyboard: focus a heading's button, press Enter; the order follows and the URL keeps it.
    laptop.focus("#table-agents button[data-sort='cards_sent']")
    laptop.keyboard.press("Enter")
    laptop.wait_for_url("**sort=cards_sent%3Adesc**")
    wait_ready(laptop)
    cards_column = [float(r[7]) for r in table_values(laptop, "#table-agents")]
    assert cards_column == sorted((a["cards_sent"] for a in agents), reverse=True)
    assert (
        laptop.get_attribute("#table-agents th:has(button[data-sort='cards_sent'])", "aria-sort")
        == "descending"
    )
    screenshot(laptop, "dashboard-agents.png")

    laptop.click("nav a[data-view='cards']")
    wait_ready(laptop)
    cards = center.get("/v1/analytics/cards", **API_RANGE)
    assert [[r[0], float(r[2])] for r in table_values(laptop, "#table-by-card")] == [
        [c["header"], c["count"]] for c in cards["by_card"]
    ]
    assert [[r[0], float(r[1])] for r in table_values(laptop, "#table-cards-by-agent")] == [
        [a["agent_email"], a["cards_sent"]] for a in cards["by_agent"]
    ]
    screenshot(laptop, "dashboard-cards.png")

    laptop.click("nav a[data-view='audit']")
    wait_ready(laptop)
    first_page = center.get("/v1/audit", limit=50, **API_RANGE)
    second_page = center.get("/v1/audit", limit=50, cursor=first_page["next_cursor"], **API_RANGE)
    assert first_page["next_cursor"] and second_page["actions"]  # enough actions for two pages
    shown = laptop.eval_on_selector_all(
        "#table-audit tbody tr td:nth-child(3)", "cells => cells.map(c => c.textContent)"
    )
    assert shown == [a["action"] for a in first_page["actions"]]
    assert laptop.is_disabled("[data-pager='audit'] [data-page='prev']")
    laptop.click("[data-pager='audit'] [data-page='next']")
    laptop.wait_for_selector("[data-pager='audit'] .page-label:text('Page 2')")
    wait_ready(laptop)
    sessions_shown = laptop.eval_on_selector_all(
        "#table-audit tbody a[data-session]", "links => links.map(a => a.dataset.session)"
    )
    assert sessions_shown == [a["session_id"] for a in second_page["actions"] if a["session_id"]]
    screenshot(laptop, "dashboard-audit.png")
    laptop.click("[data-pager='audit'] [data-page='prev']")
    laptop.wait_for_selector("[data-pager='audit'] .page-label:text('Page 1')")

    laptop.click("nav a[data-view='quality']")
    wait_ready(laptop)
    quality = center.get("/v1/quality", **API_RANGE)
    measures = {r[0]: number(r[1]) for r in table_values(laptop, "#table-quality")}
    assert measures["Events received"] == quality["events"]
    assert measures["Observed mid-session"] == quality["observed_mid_session"]
    screenshot(laptop, "dashboard-quality.png")

    # A session from the sessions list: its timeline, raw events and actions as the API gives them.
    laptop.click("nav a[data-view='sessions']")
    wait_ready(laptop)
    listed = center.get("/v1/sessions", limit=50, **API_RANGE)["sessions"]
    with_cards = next(s for s in listed if s["cards_sent"] > 0)
    screenshot(laptop, "dashboard-sessions.png")
    laptop.click(f"#table-sessions a[data-session='{with_cards['id']}']")
    laptop.wait_for_url("**view=session**")
    wait_ready(laptop)
    detail = center.get(f"/v1/sessions/{with_cards['id']}")
    kinds = laptop.eval_on_selector_all("#table-timeline tbody tr", "rows => rows.map(r => r.dataset.kind)")
    assert kinds == [item["kind"] for item in detail["timeline"]] and "action" in kinds
    assert laptop.inner_text("#session-id") == detail["id"]
    screenshot(laptop, "dashboard-session.png")
    laptop.go_back()
    laptop.wait_for_url("**view=sessions**")
    assert errors == []


def test_a_view_shows_that_it_is_loading(center: Center, context: BrowserContext, laptop: Page) -> None:
    held: list[Route] = []
    # The report does not answer until the test releases it.
    laptop.route("**/v1/analytics/inbound?*", lambda route: held.append(route))
    with_key(context, center.key)
    laptop.goto(center.url(view="overview", **RANGE))
    laptop.wait_for_selector("main.loading[aria-busy='true']")
    assert "Loading" in laptop.evaluate(
        "getComputedStyle(document.querySelector('main'), '::before').content"
    )
    while not held:
        laptop.wait_for_timeout(20)
    held[0].continue_()
    wait_ready(laptop)
    assert not laptop.is_visible("main.loading")


def test_no_key_then_a_wrong_key_then_the_right_one(center: Center, laptop: Page) -> None:
    laptop.goto(center.url(view="overview", **RANGE))
    laptop.wait_for_selector("#message:has-text('Enter a read key')")
    assert laptop.is_visible("#key-form")
    assert "calltrail keys create --scope read" in laptop.inner_text("#message")
    assert not laptop.is_visible("#view-overview")
    screenshot(laptop, "dashboard-no-key.png")

    laptop.fill("#key-input", "ctr_not_a_key")
    laptop.press("#key-input", "Enter")
    laptop.wait_for_selector("#message:has-text('refused this key')")
    assert laptop.is_visible("#key-form")

    laptop.fill("#key-input", center.key)
    laptop.click("#key-form button[type='submit']")
    wait_ready(laptop)
    assert not laptop.is_visible("#key-form") and not laptop.is_visible("#message")
    assert (
        figure_values(laptop)["offered"]
        == center.get("/v1/analytics/inbound", interval="day", tz="UTC", **API_RANGE)["totals"]["offered"]
    )
    # Kept in the browser: a reload needs no key.
    laptop.reload()
    wait_ready(laptop)


def test_a_stopped_service_says_so(
    center: Center, context: BrowserContext, laptop: Page, tmp_path: Path
) -> None:
    own = Server([], center.env, tmp_path)  # the module's server stays up; this test stops its own
    try:
        with_key(context, center.key)
        laptop.goto(f"{own.base}/dashboard?{urlencode({'view': 'overview', **RANGE})}")
        wait_ready(laptop)
    finally:
        own.terminate()
    laptop.click("#filters button[type='submit']")
    laptop.wait_for_selector("#message:has-text('does not answer')")
    assert "calltrail serve" in laptop.inner_text("#message")
    assert laptop.is_visible("#message button:text('Retry')")
    assert not laptop.is_visible("#figures")  # no stale numbers under the error
    screenshot(laptop, "dashboard-service-down.png")
