"""The admin API and the CLI on the same operations, on both databases: sites, keys and CCC apps managed
over HTTP by admin keys only, a scoped admin kept to its sites, bad bodies and conflicts, expiring keys,
the last use noted at most once a minute, and the access log of reads, exports and admin actions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from service.admin import access, registry
from service.admin.access import CLI
from service.admin.registry import Site, create_key
from service.cli import cli
from service.config import Settings
from service.domain.instants import now_ms
from service.storage.schema import access_log, api_keys
from tests.conftest import running_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app(settings: Settings, site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(settings) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return dict(body["error"])


async def test_sites_created_changed_listed_and_deleted(app: httpx.AsyncClient, engine: Engine) -> None:
    root = bearer(create_key(engine, "admin").plaintext)
    made = await app.post(
        "/v1/admin/sites", json={"name": "shop", "origins": ["https://Shop.example.com/"]}, headers=root
    )
    assert made.status_code == 201, made.text
    assert made.json()["origins"] == ["https://shop.example.com"]
    assert made.json()["site_key"].startswith("cts_")
    again = await app.post(
        "/v1/admin/sites", json={"name": "shop", "origins": ["https://x.example.com"]}, headers=root
    )
    assert_error(again, 409, "conflict")
    changed = await app.patch(
        "/v1/admin/sites/shop",
        json={"add": ["https://two.example.com"], "remove": ["https://shop.example.com"]},
        headers=root,
    )
    assert changed.json()["origins"] == ["https://two.example.com"]
    emptied = await app.patch(
        "/v1/admin/sites/shop", json={"remove": ["https://two.example.com"]}, headers=root
    )
    assert_error(emptied, 400, "invalid_body")
    names = [s["name"] for s in (await app.get("/v1/admin/sites", headers=root)).json()["sites"]]
    assert names == ["crm", "shop"]
    assert (await app.delete("/v1/admin/sites/shop", headers=root)).status_code == 204
    assert_error(await app.delete("/v1/admin/sites/shop", headers=root), 404, "not_found")


async def test_a_bad_body_names_every_bad_field(app: httpx.AsyncClient, engine: Engine) -> None:
    root = bearer(create_key(engine, "admin").plaintext)
    bad = await app.post(
        "/v1/admin/sites", json={"origins": ["ftp://x", "https://ok.example.com"], "colour": 1}, headers=root
    )
    error = assert_error(bad, 400, "invalid_body")
    assert {d["field"] for d in error["details"]} == {"colour", "name"}
    bad_origin = await app.post("/v1/admin/sites", json={"name": "x", "origins": ["ftp://x"]}, headers=root)
    error = assert_error(bad_origin, 400, "invalid_body")
    assert [d["field"] for d in error["details"]] == ["origins[0]"]
    bad_key = await app.post("/v1/admin/keys", json={"scope": "root", "expires": "soon"}, headers=root)
    error = assert_error(bad_key, 400, "invalid_body")
    assert [d["field"] for d in error["details"]] == ["scope"]
    assert_error(await app.post("/v1/admin/keys", content=b"[", headers=root), 400, "invalid_body")


async def test_read_keys_and_no_keys_are_refused(app: httpx.AsyncClient, engine: Engine) -> None:
    reader = bearer(create_key(engine, "read").plaintext)
    for method, path in [
        ("GET", "/v1/admin/keys"),
        ("POST", "/v1/admin/keys"),
        ("DELETE", "/v1/admin/keys/0123456789ab"),
        ("POST", "/v1/admin/sites"),
        ("PATCH", "/v1/admin/sites/crm"),
        ("DELETE", "/v1/admin/ccc-apps/1400000001"),
    ]:
        assert_error(await app.request(method, path, headers=reader, json={}), 403, "forbidden")
        assert_error(await app.request(method, path, json={}), 401, "unauthorized")


async def test_keys_created_with_sites_and_expiry_then_revoked(
    app: httpx.AsyncClient, engine: Engine
) -> None:
    root = bearer(create_key(engine, "admin").plaintext)
    made = await app.post(
        "/v1/admin/keys",
        json={"scope": "read", "sites": ["crm"], "name": "n", "expires": "90d"},
        headers=root,
    )
    assert made.status_code == 201, made.text
    key = made.json()
    assert (key["scope"], key["sites"], key["name"], key["revoked_at"]) == ("read", ["crm"], "n", None)
    assert key["expires_at"] is not None and key["secret"].startswith("ctk_" + key["key_id"])
    assert (await app.get("/v1/sessions", headers=bearer(key["secret"]))).status_code == 200
    listed = (await app.get("/v1/admin/keys", headers=root)).json()["keys"]
    assert "secret" not in listed[0] and [k["key_id"] for k in listed][-1] == key["key_id"]
    with engine.connect() as conn:
        stored = conn.execute(
            select(api_keys.c.secret_hash).where(api_keys.c.key_id == key["key_id"])
        ).scalar()
    assert stored is not None and key["secret"].split("_")[2] not in stored
    revoked = await app.delete(f"/v1/admin/keys/{key['key_id']}", headers=root)
    assert revoked.json()["revoked_at"] is not None
    assert_error(await app.get("/v1/sessions", headers=bearer(key["secret"])), 401, "unauthorized")
    unknown_site = await app.post("/v1/admin/keys", json={"scope": "read", "sites": ["nope"]}, headers=root)
    assert [d["field"] for d in assert_error(unknown_site, 400, "invalid_body")["details"]] == ["sites[0]"]


async def test_a_scoped_admin_administers_only_its_sites(app: httpx.AsyncClient, engine: Engine) -> None:
    registry.add_site(engine, "other", ["https://other.example.com"])
    mine = bearer(create_key(engine, "admin", site_names=["crm"]).plaintext)
    unscoped = await app.post("/v1/admin/keys", json={"scope": "read"}, headers=mine)
    assert_error(unscoped, 403, "forbidden")
    for sites in (["other"], ["crm", "other"], ["ghost"]):
        refused = await app.post("/v1/admin/keys", json={"scope": "admin", "sites": sites}, headers=mine)
        assert_error(refused, 403, "forbidden")
    made = await app.post("/v1/admin/keys", json={"scope": "read", "sites": ["crm"]}, headers=mine)
    assert made.status_code == 201 and made.json()["sites"] == ["crm"]
    site = await app.post(
        "/v1/admin/sites", json={"name": "n", "origins": ["https://n.example.com"]}, headers=mine
    )
    assert_error(site, 403, "forbidden")
    assert_error(await app.delete("/v1/admin/sites/other", headers=mine), 404, "not_found")
    patched = await app.patch("/v1/admin/sites/other", json={"add": ["https://a.example.com"]}, headers=mine)
    assert_error(patched, 404, "not_found")
    root_key = create_key(engine, "read").key.key_id  # an unscoped key: not a scoped admin's to revoke
    assert_error(await app.delete(f"/v1/admin/keys/{root_key}", headers=mine), 404, "not_found")
    app_without_site = await app.post(
        "/v1/admin/ccc-apps", json={"sdk_app_id": 1400000009, "auth": "none"}, headers=mine
    )
    assert_error(app_without_site, 403, "forbidden")
    made_app = await app.post(
        "/v1/admin/ccc-apps", json={"sdk_app_id": 1400000009, "auth": "basic", "sites": ["crm"]}, headers=mine
    )
    assert made_app.status_code == 201, made_app.text
    console = made_app.json()["console"]
    assert console["username"] == made_app.json()["client_id"] and console["password"]
    assert made_app.json()["sites"] == ["crm"]
    again = await app.post(
        "/v1/admin/ccc-apps", json={"sdk_app_id": 1400000009, "auth": "none", "sites": ["crm"]}, headers=mine
    )
    assert_error(again, 409, "conflict")
    assert [a["sdk_app_id"] for a in (await app.get("/v1/admin/ccc-apps", headers=mine)).json()["apps"]] == [
        1400000009
    ]
    assert (await app.delete("/v1/admin/ccc-apps/1400000009", headers=mine)).status_code == 204
    assert (await app.delete("/v1/admin/sites/crm", headers=mine)).status_code == 204


async def test_a_scoped_key_whose_sites_are_deleted_sees_nothing(
    app: httpx.AsyncClient, engine: Engine, site: Site
) -> None:
    key = create_key(engine, "read", site_names=["crm"])
    access.delete_site(engine, CLI, "crm")
    registry.add_site(engine, "new", ["https://new.example.com"])
    with engine.connect() as conn:
        stored = registry.key_by_id(conn, key.key.key_id)
    assert stored is not None and stored.site_ids == frozenset()
    answer = await app.get("/v1/sessions", headers=bearer(key.plaintext))
    assert answer.status_code == 200 and answer.json()["sessions"] == []
    assert_error(
        await app.get("/v1/sessions", params={"site": "new"}, headers=bearer(key.plaintext)), 403, "forbidden"
    )


async def test_an_expired_key_is_refused_saying_so(app: httpx.AsyncClient, engine: Engine) -> None:
    key = create_key(engine, "read", expires_at=now_ms() - 1).plaintext
    error = assert_error(await app.get("/v1/sessions", headers=bearer(key)), 401, "unauthorized")
    assert "expired" in str(error["message"])
    assert_error(
        await app.get("/v1/admin/keys", headers=bearer(create_key(engine, "admin", expires_at=1).plaintext)),
        401,
        "unauthorized",
    )


async def test_the_last_use_is_noted_at_most_once_a_minute(app: httpx.AsyncClient, engine: Engine) -> None:
    created = create_key(engine, "read")

    def last_used() -> int | None:
        with engine.connect() as conn:
            return conn.execute(
                select(api_keys.c.last_used_at).where(api_keys.c.id == created.key.id)
            ).scalar()

    assert last_used() is None
    before = now_ms()
    await app.get("/v1/live", headers=bearer(created.plaintext))
    first = last_used()
    assert first is not None and first >= before
    await app.get("/v1/live", headers=bearer(created.plaintext))
    assert last_used() == first
    with engine.connect() as conn:
        key = registry.key_by_id(conn, created.key.key_id)
    assert key is not None
    assert not registry.note_use(engine, key, first + 59_999)
    assert registry.note_use(engine, key, first + 60_000)
    assert last_used() == first + 60_000


async def test_reads_exports_and_admin_actions_are_in_the_access_log(
    app: httpx.AsyncClient, engine: Engine
) -> None:
    reader = create_key(engine, "read")
    root = create_key(engine, "admin")
    await app.get("/v1/sessions", params={"agent": "a@x.com", "limit": "5"}, headers=bearer(reader.plaintext))
    await app.get("/v1/audit", params={"format": "csv"}, headers=bearer(reader.plaintext))
    await app.get("/v1/analytics/inbound", headers=bearer(reader.plaintext))  # an aggregate: not logged
    await app.get("/v1/sessions")  # no key: not logged
    await app.post("/v1/admin/keys", json={"scope": "read", "sites": ["crm"]}, headers=bearer(root.plaintext))
    await app.post("/v1/admin/keys", json={"scope": "read"}, headers=bearer(reader.plaintext))  # refused
    page = await app.get("/v1/admin/access-log", headers=bearer(root.plaintext))
    assert page.status_code == 200, page.text
    entries = page.json()["entries"]
    summary = [(e["key_id"], e["kind"], e["action"], e["status"]) for e in reversed(entries)]
    assert summary == [
        (reader.key.key_id, "read", "GET /v1/sessions", 200),
        (reader.key.key_id, "export", "GET /v1/audit", 200),
        (root.key.key_id, "admin", "keys.create", None),
        (reader.key.key_id, "admin", "POST /v1/admin/keys", 403),
    ]
    first = entries[-1]
    assert first["params"] == {"agent": "a@x.com", "limit": "5"}
    assert (first["rows"], first["client_ip"], first["path"]) == (0, "203.0.113.7", "/v1/sessions")
    created = entries[-3]
    assert created["params"]["scope"] == "read" and created["params"]["sites"] == ["crm"]
    assert "secret" not in orjson.dumps(entries).decode()
    # Filters by key, keyset pages, and a window.
    only = await app.get(
        "/v1/admin/access-log", params={"key": root.key.key_id}, headers=bearer(root.plaintext)
    )
    assert {e["key_id"] for e in only.json()["entries"]} == {root.key.key_id}
    seen = []
    params: dict[str, str] = {"limit": "2"}
    while True:
        got = (await app.get("/v1/admin/access-log", params=params, headers=bearer(root.plaintext))).json()
        assert "entries" in got, got
        seen += [e["id"] for e in got["entries"]]
        if got["next_cursor"] is None:
            break
        params["cursor"] = got["next_cursor"]
    with engine.connect() as conn:
        stored = sorted(conn.execute(select(access_log.c.id)).scalars(), reverse=True)
    # Pages neither skip nor repeat, while the log's own reads are added after each of them.
    assert seen == [i for i in stored if i <= seen[0]] and len(stored) == len(seen) + 3
    later = await app.get(
        "/v1/admin/access-log", params={"from": "2090-01-01T00:00:00Z"}, headers=bearer(root.plaintext)
    )
    assert later.json()["entries"] == []


def run_cli(db_url: str, *args: str) -> str:
    result = CliRunner().invoke(
        cli, list(args), env={"CALLTRAIL_DATABASE_URL": db_url}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cli_makes_scoped_expiring_keys_and_reads_the_access_log(db_url: str, site: Site) -> None:
    output = run_cli(db_url, "keys", "create", "--scope", "read", "--site", "crm", "--expires", "36h")
    assert "for site(s) crm" in output and "expiring" in output
    key_id = output.strip().splitlines()[-1].split("_")[1]
    listed = run_cli(db_url, "keys", "list")
    assert f"{key_id}\tread\texpires " in listed and "\tcrm\tnever used" in listed
    run_cli(db_url, "sites", "origins", "crm", "--add", "https://two.example.com")
    log = run_cli(db_url, "access-log", "--json")
    actions = [orjson.loads(line)["action"] for line in log.splitlines()]
    assert actions == ["sites.update", "keys.create"]
    assert all(orjson.loads(line)["key_id"] is None for line in log.splitlines())
    result = CliRunner().invoke(
        cli,
        ["keys", "create", "--scope", "read", "--expires", "soon"],
        env={"CALLTRAIL_DATABASE_URL": db_url},
    )
    assert result.exit_code != 0 and "not a duration" in result.output
