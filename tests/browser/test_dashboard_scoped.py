"""The dashboard with a key scoped to one site, in a real Chromium against a real `calltrail serve` over two
sites: its figures and its agents table are the scoped site's, the same as an unscoped key reading
`site=` that site, and not the whole center's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from service.admin.registry import add_site, create_key
from service.config import Settings
from service.storage.engine import make_engine
from tests import databases
from tests.browser.test_dashboard import (
    API_RANGE,
    RANGE,
    expected_figures,
    figure_values,
    table_values,
    wait_ready,
    with_key,
)
from tests.center import center_history
from tests.projection_helpers import T0, ingest
from tests.servers import Server


@pytest.fixture(scope="module")
def two_sites(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str, str]]:
    directory = tmp_path_factory.mktemp("dashboard-scoped")
    url = databases.sqlite_create_database(sqlite_template, directory)
    settings = Settings(database_url=url)
    engine = make_engine(settings)
    alpha = add_site(engine, "alpha", ["https://alpha.example.com"])
    beta = add_site(engine, "beta", ["https://beta.example.com"])
    ingest(
        settings,
        [
            center_history(alpha.id, seed=7, start_ms=T0, agents=2, calls=10),
            center_history(beta.id, seed=8, start_ms=T0, agents=5, calls=16),
        ],
    )
    scoped = create_key(engine, "read", "alpha", site_names=["alpha"]).plaintext
    everyone = create_key(engine, "read", "everyone").plaintext
    engine.dispose()
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": url, "CALLTRAIL_RATE_LIMIT_PER_IP": "100000/second"}
    server = Server([], env, directory)
    try:
        yield server, scoped, everyone
    finally:
        server.terminate()


@pytest.fixture
def laptop(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    return page


def get(server: Server, key: str, path: str, **params: str) -> dict[str, object]:
    answer = httpx.get(f"{server.base}{path}", params=params, headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_a_scoped_key_shows_only_its_site(
    two_sites: tuple[Server, str, str], context: BrowserContext, laptop: Page
) -> None:
    server, scoped, everyone = two_sites
    with_key(context, scoped)
    laptop.goto(f"{server.base}/dashboard?{urlencode({'view': 'overview', **RANGE})}")
    wait_ready(laptop)
    params = {"interval": "day", "tz": "UTC", **API_RANGE}
    alpha = get(server, everyone, "/v1/analytics/inbound", site="alpha", **params)
    whole = get(server, everyone, "/v1/analytics/inbound", **params)
    cards = get(server, everyone, "/v1/analytics/cards", site="alpha", **API_RANGE)
    shown = figure_values(laptop)
    assert shown == expected_figures(alpha["totals"], cards)  # type: ignore[arg-type]
    assert shown["offered"] != whole["totals"]["offered"]  # type: ignore[index]

    laptop.click("nav a[data-view='agents']")
    wait_ready(laptop)
    agents = get(server, everyone, "/v1/analytics/agents", site="alpha", **API_RANGE)["agents"]
    rows = table_values(laptop, "#table-agents")
    assert sorted(float(r[1]) for r in rows) == sorted(a["offered"] for a in agents)  # type: ignore[attr-defined]
    assert len(rows) == 2
