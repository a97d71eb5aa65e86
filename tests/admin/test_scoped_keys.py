"""A key scoped to a site sees that site only, on every GET endpoint of the read API and the admin API, in
JSON and in its exports, on both databases: two sites, each with a history of page sessions and actions and
a CCC call record of the site's own app joined to a page call. Every GET route is listed here, so a new
endpoint fails the test until it says how a scoped key reads it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from starlette.routing import Route

from service.admin.registry import Site, add_site, create_key
from service.ccc.apps import add_app
from service.config import Settings
from service.http import admin
from service.reports.routes import routes as report_routes
from service.storage.schema import actions, events, sessions
from tests.ccc.call_records import S, cdr, page_hash, store_raw
from tests.ccc.pushes import APP_A, APP_B
from tests.center import center_history
from tests.conftest import running_app
from tests.projection_helpers import T0, hash_row, ingest

pytestmark = pytest.mark.anyio
WINDOW = {"from": "2025-11-20T00:00:00Z", "to": "2025-12-01T00:00:00Z"}
LISTS = ("/v1/sessions", "/v1/calls", "/v1/audit", "/v1/analytics/agents")
MOBILE = {APP_A: "13011110000", APP_B: "13022220000"}


def store_cdr(engine: Engine, app: int, document: dict[str, Any]) -> None:
    assert store_raw(engine, {**document, "SdkAppId": app}, app=app) is not None


def page_call(site: Site, app: int, ring_ms: int) -> list[Any]:
    page_id = str(uuid.uuid4())
    return [
        hash_row(site.id, page_id, seq, ring_ms + offset, page_hash(status, MOBILE[app], app=app))
        for seq, (offset, status) in enumerate([(0, 100), (3_000, 200), (63_000, 400)], 1)
    ]


@dataclass
class TwoSites:
    alpha: Site
    beta: Site
    beta_markers: set[str]  # what only beta's data contains: ids of its sessions, events, actions, call


@pytest.fixture
def two_sites(settings: Settings, engine: Engine) -> TwoSites:
    alpha = add_site(engine, "alpha", ["https://alpha.example.com"])
    beta = add_site(engine, "beta", ["https://beta.example.com"])
    add_app(engine, APP_A, "none", ["alpha"])
    add_app(engine, APP_B, "none", ["beta"])
    ingest(
        settings,
        [center_history(alpha.id, seed=1, start_ms=T0), center_history(beta.id, seed=2, start_ms=T0)],
    )
    store_cdr(engine, APP_A, cdr("alpha-call", SeatUser={"Mail": "ann@x.com"}, Caller="0086" + MOBILE[APP_A]))
    store_cdr(
        engine, APP_B, cdr("beta-call", S + 60, SeatUser={"Mail": "ann@x.com"}, Caller="0086" + MOBILE[APP_B])
    )
    ingest(settings, [page_call(alpha, APP_A, (S + 15) * 1000 + 800)])
    ingest(settings, [page_call(beta, APP_B, (S + 75) * 1000 + 800)])
    with engine.connect() as conn:
        markers = {"beta", "beta-call", str(APP_B), MOBILE[APP_B]}
        markers |= set(conn.execute(select(sessions.c.id).where(sessions.c.site_id == beta.id)).scalars())
        markers |= set(conn.execute(select(events.c.event_id).where(events.c.site_id == beta.id)).scalars())
        markers |= set(conn.execute(select(actions.c.id).where(actions.c.site_id == beta.id)).scalars())
    return TwoSites(alpha, beta, markers)


@dataclass
class Clients:
    scoped: httpx.AsyncClient  # a read key for alpha
    unscoped: httpx.AsyncClient  # a read key for every site
    scoped_admin: httpx.AsyncClient  # an admin key for alpha


@pytest.fixture
async def clients(settings: Settings, engine: Engine, two_sites: TwoSites) -> AsyncIterator[Clients]:
    scoped = create_key(engine, "read", "alpha reader", site_names=["alpha"]).plaintext
    unscoped = create_key(engine, "read", "everyone").plaintext
    scoped_admin = create_key(engine, "admin", "alpha admin", site_names=["alpha"]).plaintext
    async with running_app(settings) as client:
        made = []
        for key in (scoped, unscoped, scoped_admin):
            other = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
            other.headers["authorization"] = f"Bearer {key}"
            made.append(other)
        yield Clients(*made)
        for other in made:
            await other.aclose()


def get_routes(routes: list[Any]) -> list[str]:
    return [r.path for r in routes if isinstance(r, Route) and "GET" in (r.methods or ())]


READ_PATHS = get_routes(report_routes)
ADMIN_PATHS = get_routes(admin.routes)
# How each path with parameters is read: (alpha's object, beta's object) put into it.
DETAIL = {
    "/v1/sessions/{session_id}": "session",
    "/v1/calls/{sdk_app_id}/{session_id}": "call",
}


def without_beta(text: str, markers: set[str]) -> None:
    leaked = sorted(m for m in markers if m in text)
    assert not leaked, leaked


def comparable(path: str, body: Any) -> Any:
    if path == "/v1/live":
        body.pop("as_of")
    return body


def session_of_site(engine: Engine, site: Site) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(select(sessions.c.id).where(sessions.c.site_id == site.id).limit(1)).scalar_one()
        )


async def test_every_get_route_is_covered() -> None:
    # The read API's lists and reports take the window; the detail routes are read below; the admin API too.
    assert set(READ_PATHS) - set(DETAIL) == {
        "/v1/sessions", "/v1/calls", "/v1/analytics/inbound", "/v1/analytics/calls", "/v1/analytics/agents",
        "/v1/analytics/cards",
        "/v1/analytics/outbound", "/v1/audit", "/v1/live", "/v1/quality", "/v1/coverage",
    }  # fmt: skip
    assert set(ADMIN_PATHS) == {
        "/v1/admin/sites",
        "/v1/admin/keys",
        "/v1/admin/ccc-apps",
        "/v1/admin/access-log",
    }


@pytest.mark.parametrize("path", [p for p in READ_PATHS if p not in DETAIL])
async def test_a_scoped_key_reads_only_its_site(path: str, clients: Clients, two_sites: TwoSites) -> None:
    params = {} if path == "/v1/live" else dict(WINDOW)
    mine = await clients.scoped.get(path, params=params)
    assert mine.status_code == 200, mine.text
    without_beta(mine.text, two_sites.beta_markers)
    # The same as an unscoped key asking for alpha: nothing missing, totals included.
    asked = await clients.unscoped.get(path, params={**params, "site": "alpha"})
    assert comparable(path, mine.json()) == comparable(path, asked.json())
    everything = await clients.unscoped.get(path, params=params)
    # ... and differs from what every site reads (nothing is live now: the history is in the past).
    assert comparable(path, everything.json()) != comparable(path, mine.json()) or path == "/v1/live"
    # Its own site by name reads the same; another site, or one that does not exist, is a 403 alike.
    same = await clients.scoped.get(path, params={**params, "site": "alpha"})
    assert comparable(path, same.json()) == comparable(path, mine.json())
    for other in ("beta", "no-such-site"):
        refused = await clients.scoped.get(path, params={**params, "site": other})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden"
        assert "beta" not in refused.text or other == "beta"
    if path in LISTS:
        for fmt in ("csv", "ndjson"):
            exported = await clients.scoped.get(path, params={**params, "format": fmt})
            assert exported.status_code == 200
            without_beta(exported.text, two_sites.beta_markers)
            asked = await clients.unscoped.get(path, params={**params, "format": fmt, "site": "alpha"})
            assert exported.text == asked.text


@pytest.mark.parametrize("path", list(DETAIL))
async def test_a_scoped_key_finds_no_object_of_another_site(
    path: str, clients: Clients, two_sites: TwoSites, engine: Engine
) -> None:
    if DETAIL[path] == "session":
        alpha_url = f"/v1/sessions/{session_of_site(engine, two_sites.alpha)}"
        beta_url = f"/v1/sessions/{session_of_site(engine, two_sites.beta)}"
        missing_url = f"/v1/sessions/{uuid.uuid4()}"
    else:
        alpha_url, beta_url = f"/v1/calls/{APP_A}/alpha-call", f"/v1/calls/{APP_B}/beta-call"
        missing_url = f"/v1/calls/{APP_B}/no-such-call"
    mine = await clients.scoped.get(alpha_url)
    assert mine.status_code == 200, mine.text
    without_beta(mine.text, two_sites.beta_markers)
    assert (await clients.unscoped.get(beta_url)).status_code == 200
    theirs, missing = await clients.scoped.get(beta_url), await clients.scoped.get(missing_url)
    # Another site's object reads exactly as one that does not exist: its existence does not leak.
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"


async def test_the_joined_call_shows_in_a_scoped_session_detail(clients: Clients, engine: Engine) -> None:
    found = await clients.scoped.get("/v1/sessions", params={**WINDOW, "customer": MOBILE[APP_A]})
    (session,) = found.json()["sessions"]
    detail = (await clients.scoped.get(f"/v1/sessions/{session['id']}")).json()
    assert detail["call"]["session_id"] == "alpha-call"
    call = (await clients.scoped.get(f"/v1/calls/{APP_A}/alpha-call")).json()
    assert [s["id"] for s in call["sessions"]] == [session["id"]]


@pytest.mark.parametrize("path", ADMIN_PATHS)
async def test_admin_reads_need_an_admin_key_and_keep_to_its_sites(
    path: str, clients: Clients, two_sites: TwoSites
) -> None:
    refused = await clients.scoped.get(path)
    assert refused.status_code == 403
    assert set(refused.json()) == {"error"} and refused.json()["error"]["code"] == "forbidden"
    mine = await clients.scoped_admin.get(path)
    assert mine.status_code == 200, mine.text
    without_beta(mine.text, two_sites.beta_markers)


async def test_a_scoped_admin_lists_its_sites_apps_and_keys(clients: Clients) -> None:
    sites = (await clients.scoped_admin.get("/v1/admin/sites")).json()["sites"]
    assert [s["name"] for s in sites] == ["alpha"]
    apps = (await clients.scoped_admin.get("/v1/admin/ccc-apps")).json()["apps"]
    assert [a["sdk_app_id"] for a in apps] == [APP_A]
    keys = (await clients.scoped_admin.get("/v1/admin/keys")).json()["keys"]
    assert sorted(k["name"] for k in keys) == ["alpha admin", "alpha reader"]
    assert all(k["sites"] == ["alpha"] for k in keys)
