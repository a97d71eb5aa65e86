"""The dashboard's views of CCC's call records, in a real Chromium against a real `calltrail serve`: Coverage
shows what /v1/coverage answers for a seeded day (figures, agents, the unseen legs page by page), and Calls
what /v1/analytics/calls answers for it. A second Calls test answers the report itself, inside the browser
(Playwright's route interception), with a hand-made answer that has every figure (abandons of each stage,
skill groups, satisfaction), to check each one lands in its place. Screenshots:
docs/screenshots/dashboard-coverage.png and dashboard-calls.png."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import orjson
import pytest
from playwright.sync_api import BrowserContext, Page, Route

from service.admin.registry import add_site, create_key
from service.ccc.apps import add_app
from service.config import Settings
from service.storage.engine import make_engine
from tests import databases
from tests.browser.test_dashboard import Center, screenshot, table_values, wait_ready, with_key
from tests.conftest import ORIGIN
from tests.projection_helpers import ingest
from tests.reports.test_coverage import ANN, APP_A, BOB, S, cdr, one, page, ring_ms, store
from tests.servers import Server

RANGE = {"preset": "custom", "from": "2025-11-24", "to": "2025-11-24", "tz": "UTC", "interval": "hour"}
API_RANGE = {"from": "2025-11-24T00:00:00Z", "to": "2025-11-25T00:00:00Z"}
UNSEEN = 55  # more than a page of 50


@pytest.fixture(scope="module")
def center(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    """A day of APP_A: 10 of ann's calls the pop-up showed, UNSEEN of bob's it did not, 3 page sessions CCC
    has no record of."""
    directory = tmp_path_factory.mktemp("dashboard-ccc")
    url = databases.sqlite_create_database(sqlite_template, directory)
    settings = Settings(database_url=url)
    engine = make_engine(settings)
    site = add_site(engine, "crm", [ORIGIN])
    add_app(engine, APP_A, "none", ["crm"])
    pages = []
    for index in range(10 + UNSEEN):
        start = S + index * 300
        mobile = f"130{index:08d}"
        agent = ANN if index < 10 else BOB
        store(engine, cdr(APP_A, f"sess-{index:03d}-{uuid.uuid4().hex[:8]}", start, mobile, one(agent)))
        if index < 10:
            pages.append(page(site, ring_ms(start) + 1_000, mobile, ANN, APP_A))
        if index in (3, 5, 7):
            pages.append(page(site, (start + 150) * 1000, f"139{index:08d}", ANN, APP_A))
    ingest(settings, pages)
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


@pytest.fixture
def laptop(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    return page


def figures(page: Page, selector: str) -> dict[str, str]:
    found: dict[str, str] = page.eval_on_selector_all(
        f"{selector} [data-figure]",
        "ns => Object.fromEntries(ns.map(n => [n.dataset.figure, n.querySelector('dd').dataset.value]))",
    )
    return found


def test_coverage_shows_the_api_totals_agents_and_unseen_legs(
    center: Center, context: BrowserContext, laptop: Page
) -> None:
    errors: list[str] = []
    laptop.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    laptop.on("pageerror", lambda e: errors.append(str(e)))
    with_key(context, center.key)
    laptop.goto(center.url(view="coverage", **RANGE))
    wait_ready(laptop)
    report = center.get("/v1/coverage", limit=50, **API_RANGE)
    totals = report["totals"]
    assert totals == {"answered_legs": 65, "seen": 10, "unseen": 55, "ambiguous": 0, "page_only": 3}
    shown = figures(laptop, "#coverage-figures")
    assert {k: float(v) for k, v in shown.items() if k != "cov_seen_share"} == {
        "cov_answered": 65, "cov_seen": 10, "cov_unseen": 55, "cov_ambiguous": 0, "cov_page_only": 3,
    }  # fmt: skip
    assert float(shown["cov_seen_share"]) == pytest.approx(10 / 65, abs=1e-6)
    agents = table_values(laptop, "#table-coverage-agents")
    assert [[row[0], *map(float, row[1:6])] for row in agents] == [
        [a["agent_email"], a["answered_legs"], a["seen"], a["unseen"], a["ambiguous"], a["page_only"]]
        for a in report["by_agent"]
    ]
    assert [row[0] for row in agents] == [ANN, BOB]

    def listed() -> list[str]:
        ids: list[str] = laptop.eval_on_selector_all(
            "#table-unseen tbody tr[data-session]", "rows => rows.map(r => r.dataset.session)"
        )
        return ids

    assert listed() == [u["session_id"] for u in report["unseen"]] and len(listed()) == 50
    screenshot(laptop, "dashboard-coverage.png")
    laptop.click("[data-pager='coverage'] [data-page='next']")
    laptop.wait_for_selector("[data-pager='coverage'] .page-label:text('Page 2')")
    wait_ready(laptop)
    second = center.get("/v1/coverage", limit=50, cursor=report["next_cursor"], **API_RANGE)
    assert listed() == [u["session_id"] for u in second["unseen"]] and len(listed()) == UNSEEN - 50
    assert laptop.is_disabled("[data-pager='coverage'] [data-page='next']")

    # The agent filter: ann's calls were all seen.
    laptop.fill("#f-agent", ANN)
    laptop.press("#f-agent", "Enter")
    laptop.wait_for_url("**agent=ann%40x.com**")
    wait_ready(laptop)
    assert float(figures(laptop, "#coverage-figures")["cov_unseen"]) == 0
    assert "Every answered leg" in laptop.inner_text("#table-unseen")
    assert errors == []


CALLS: dict[str, Any] = {
    "totals": {
        "offered": 120, "answered": 96, "abandoned": 18, "abandoned_ivr": 5, "abandoned_queue": 9,
        "abandoned_ringing": 4, "no_agent": 3, "after_hours": 3, "service_level": 0.8125, "asa_s": 14.2,
        "queue_s": {"mean": 16.5, "p50": 11.0, "p90": 41.0, "max": 190.0}, "transferred": 7,
        "hung_up_by": {"user": 70, "seat": 44, "system": 6}, "satisfaction": {"1": 40, "2": 9, "3": 3},
    },
    "buckets": [
        {
            "start": f"2025-11-24T{hour:02d}:00:00+00:00", "offered": 10 + hour, "answered": 8 + hour,
            "abandoned": 2, "abandoned_ivr": 1, "abandoned_queue": 1, "abandoned_ringing": 0, "no_agent": 0,
            "after_hours": 0, "service_level": 0.75, "asa_s": 12.0,
            "queue_s": {"mean": 12.0, "p50": 10.0, "p90": 30.0 + hour, "max": 60.0}, "transferred": 0,
            "hung_up_by": {"user": 6, "seat": 4, "system": 0}, "satisfaction": {},
        }
        for hour in range(24)
    ],
    "by_skill_group": [
        {
            "skill_group_id": 7, "skill_group_name": "Sales", "offered": 80, "answered": 66, "abandoned": 10,
            "abandoned_ivr": 2, "abandoned_queue": 6, "abandoned_ringing": 2, "no_agent": 1, "after_hours": 1,
            "service_level": 0.85, "asa_s": 12.5,
            "queue_s": {"mean": 14.0, "p50": 10.0, "p90": 35.0, "max": 120.0},
            "transferred": 5, "hung_up_by": {"user": 50, "seat": 26, "system": 4}, "satisfaction": {"1": 30},
        },
        {
            "skill_group_id": 9, "skill_group_name": "Support", "offered": 40, "answered": 30, "abandoned": 8,
            "abandoned_ivr": 3, "abandoned_queue": 3, "abandoned_ringing": 2, "no_agent": 2, "after_hours": 2,
            "service_level": None, "asa_s": None,
            "queue_s": {"mean": None, "p50": None, "p90": None, "max": None},
            "transferred": 2, "hung_up_by": {"user": 20, "seat": 18, "system": 2}, "satisfaction": {"1": 10},
        },
    ],
}  # fmt: skip


def test_calls_shows_the_ccc_figures_from_their_report(
    center: Center, context: BrowserContext, laptop: Page
) -> None:
    asked: list[dict[str, list[str]]] = []

    def answer(route: Route) -> None:
        asked.append(parse_qs(urlparse(route.request.url).query))
        route.fulfill(status=200, content_type="application/json", body=orjson.dumps(CALLS))

    # Only in this browser: an answer with every figure set, in place of the seeded day's.
    laptop.route("**/v1/analytics/calls?*", answer)
    errors: list[str] = []
    laptop.on("pageerror", lambda e: errors.append(str(e)))
    with_key(context, center.key)
    laptop.goto(center.url(view="overview", **RANGE))
    wait_ready(laptop)
    assert "page-side sessions" in laptop.inner_text("#overview-source")
    laptop.click("#overview-source a[data-view='calls']")
    laptop.wait_for_url("**view=calls**")
    wait_ready(laptop)
    assert "preset=custom" in laptop.url  # the link kept the filters
    assert "CCC call records" in laptop.inner_text("#calls-source")
    (params,) = asked
    assert {k: v[0] for k, v in params.items()} == {
        "from": "2025-11-24T00:00:00.000Z",
        "to": "2025-11-25T00:00:00.000Z",
        "tz": "UTC",
        "interval": "hour",
    }

    t = CALLS["totals"]
    shown = {k: float(v) if v else None for k, v in figures(laptop, "#calls-figures").items()}
    assert shown == {
        "calls_offered": 120, "calls_answered": 96, "calls_abandoned": 18, "calls_service_level": 0.8125,
        "calls_asa": 14.2, "calls_queue_p90": 41.0, "calls_transferred": 7, "calls_no_agent": 3,
        "calls_after_hours": 3,
    }  # fmt: skip
    stages = table_values(laptop, "#table-abandons")
    assert [(row[0], float(row[1])) for row in stages] == [
        ("In the IVR", 5),
        ("In the queue", 9),
        ("While ringing", 4),
    ]
    assert [float(row[1]) for row in table_values(laptop, "#table-queue")] == [16.5, 11.0, 41.0, 190.0]
    assert [float(row[1]) for row in table_values(laptop, "#table-hung-up")] == [70, 44, 6]
    groups = table_values(laptop, "#table-skill-groups")
    assert [row[0] for row in groups] == ["Sales", "Support"]
    assert [float(v) for v in groups[0][1:4]] == [80, 66, 10] and groups[1][4] == ""  # no service level
    assert laptop.inner_text("#table-skill-groups tbody tr:nth-child(2) td:nth-child(5)") == "\u2013"
    satisfaction = table_values(laptop, "#table-satisfaction")
    assert [(row[0], float(row[1])) for row in satisfaction] == [("1", 40), ("2", 9), ("3", 3)]
    assert float(satisfaction[0][2]) == pytest.approx(40 / 52)
    assert laptop.get_attribute("#chart-ccc-calls", "data-drawn") == "true"
    buckets = table_values(laptop, "#table-ccc-calls")
    assert [row[0] for row in buckets] == [b["start"] for b in CALLS["buckets"]]
    assert [float(row[1]) for row in buckets] == [b["offered"] for b in CALLS["buckets"]]
    assert t["offered"] == 120 and not laptop.is_visible("#calls-empty")
    screenshot(laptop, "dashboard-calls.png")

    # An agent filter goes to the report as `agent`.
    laptop.fill("#f-agent", BOB)
    laptop.press("#f-agent", "Enter")
    laptop.wait_for_url("**agent=bob%40x.com**")
    wait_ready(laptop)
    assert asked[-1]["agent"] == [BOB]
    assert errors == []


def test_calls_shows_what_the_service_answers(center: Center, context: BrowserContext, laptop: Page) -> None:
    # No interception: the view against the service's own /v1/analytics/calls over the seeded day.
    report = center.get("/v1/analytics/calls", **API_RANGE, tz="UTC", interval="hour")
    totals = report["totals"]
    assert totals["offered"] == 10 + UNSEEN
    errors: list[str] = []
    laptop.on("pageerror", lambda e: errors.append(str(e)))
    with_key(context, center.key)
    laptop.goto(center.url(view="calls", **RANGE))
    wait_ready(laptop)
    shown = figures(laptop, "#calls-figures")
    assert float(shown["calls_offered"]) == totals["offered"]
    assert float(shown["calls_answered"]) == totals["answered"]
    assert float(shown["calls_abandoned"]) == totals["abandoned"]
    buckets = table_values(laptop, "#table-ccc-calls")
    assert [float(row[1]) for row in buckets] == [b["offered"] for b in report["buckets"]]
    assert not laptop.is_visible("#calls-empty")
    assert errors == []
