"""What the security probe found sound, kept so (issue 18): read keys checked on every read path, keys never
in URLs or logs, no CORS on reads, no path traversal, compressed or odd ingest bodies refused with nothing
stored, and hostile query parameters answered 200 or one 400, never a server error. On SQLite and PostgreSQL.
The dashboard's escaping is kept in tests/browser/test_dashboard_hostile.py."""

from __future__ import annotations

import gzip
import itertools
import os
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from service.admin.registry import Site, add_site, create_key, revoke_key
from service.cli.server import _is_loopback
from service.config import Settings
from service.contract.openapi import document
from service.domain.keys import split_secret_key
from service.storage.engine import make_engine
from service.storage.events import count_events
from tests import databases
from tests.batches import batch, body, hash_event
from tests.center import center_history
from tests.conftest import ORIGIN, running_app
from tests.projection_helpers import T0, ingest
from tests.servers import Server

pytestmark = pytest.mark.anyio


def read_operations() -> list[tuple[str, list[str]]]:
    """(path, query parameter names) of every GET under /v1, from the OpenAPI document: a new read endpoint
    is covered here the day it is declared."""
    spec = document()
    shared = spec["components"].get("parameters", {})
    operations = []
    for path, item in spec["paths"].items():
        if not path.startswith("/v1/") or "get" not in item:
            continue
        names = []
        for parameter in item["get"].get("parameters", []):
            if "$ref" in parameter:
                parameter = shared[parameter["$ref"].rsplit("/", 1)[-1]]
            if parameter["in"] == "query":
                names.append(parameter["name"])
        operations.append((path.replace("{session_id}", "00000000-0000-0000-0000-000000000000"), names))
    return operations


READ_PATHS = [path for path, _ in read_operations()]


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    error = response.json()["error"]
    assert set(error) >= {"code", "message"} and isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code


async def test_every_read_path_refuses_every_bad_key(settings: Settings, engine: Engine, site: Site) -> None:
    good = create_key(engine, "read", "good").plaintext
    revoked = create_key(engine, "read", "revoked")
    revoke_key(engine, revoked.key.key_id)
    parts = split_secret_key(good)
    assert parts is not None
    key_id = parts[0]
    refused: dict[str, dict[str, str]] = {
        "missing": {},
        "malformed": {"authorization": "Bearer ctk_nope_nope"},
        "wrong secret": {"authorization": f"Bearer ctk_{key_id}_{'A' * 43}"},
        "truncated": {"authorization": f"Bearer {good[:-1]}"},
        "one more character": {"authorization": f"Bearer {good}A"},
        "revoked": {"authorization": f"Bearer {revoked.plaintext}"},
        "the public site key": {"authorization": f"Bearer {site.site_key}"},
        "basic scheme": {"authorization": f"Basic {good}"},
        "no scheme": {"authorization": good},
        "empty bearer": {"authorization": "Bearer "},
        "as a cookie": {"cookie": f"key={good}"},
        "as another header": {"x-api-key": good},
    }
    async with running_app(settings) as client:
        for path in READ_PATHS:
            for what, headers in refused.items():
                response = await client.get(path, headers=headers)
                assert_error(response, 401, "unauthorized")
                assert response.headers["www-authenticate"] == "Bearer", (path, what)
            # Keys are accepted in the header only: never in the URL, where logs and histories keep them.
            for name in ("key", "api_key", "access_token", "token", "authorization"):
                assert_error(await client.get(path, params={name: good}), 401, "unauthorized")
        # The same key in its header is accepted (the refusals above are about the key, not the path).
        ok = await client.get("/v1/live", headers={"authorization": f"Bearer {good}"})
        assert ok.status_code == 200


async def test_read_endpoints_answer_no_cors(settings: Settings, engine: Engine, site: Site) -> None:
    # An admin key reads every GET, the admin API's (/v1/admin/...) included.
    key = create_key(engine, "admin").plaintext
    async with running_app(settings) as client:
        for path in READ_PATHS:
            for origin in (ORIGIN, "https://evil.example"):
                answer = await client.get(path, headers={"authorization": f"Bearer {key}", "origin": origin})
                assert answer.status_code in (200, 404), (path, answer.text)
                assert not any(h.startswith("access-control-") for h in answer.headers), (path, origin)
                preflight = await client.options(
                    path,
                    headers={"origin": origin, "access-control-request-method": "GET",
                             "access-control-request-headers": "authorization"},
                )  # fmt: skip
                assert "access-control-allow-origin" not in preflight.headers, (path, origin)
                assert preflight.status_code in (400, 404, 405), (path, preflight.status_code)


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"content-encoding": "gzip"}, gzip.compress(body(batch("KEY", [hash_event(1, "#?status=100")])))),
        ({"content-encoding": "deflate"}, zlib.compress(body(batch("KEY", [hash_event(1, "#?status=100")])))),
        ({"content-encoding": "br"}, body(batch("KEY", [hash_event(1, "#?status=100")]))),
        ({}, b"\xef\xbb\xbf" + body(batch("KEY", [hash_event(1, "#?status=100")]))),
        ({}, body(batch("KEY", [hash_event(1, "#?status=100")])).replace(b"100", b"\xff\xfe")),
        ({}, b"\x00" * 64),
        ({}, b""),
        ({"content-type": "multipart/form-data; boundary=x"}, b"--x\r\n\r\n{}\r\n--x--"),
        ({"content-type": "application/x-www-form-urlencoded"}, b"v=1&site=KEY"),
    ],
    ids=["gzip", "deflate", "br", "bom", "invalid-utf8", "nul-bytes", "empty", "multipart", "form"],
)
async def test_odd_ingest_bodies_are_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, site: Site, engine: Engine, headers: dict[str, str], content: bytes
) -> None:
    sent = {"origin": ORIGIN, "content-type": "text/plain;charset=UTF-8", **headers}
    response = await api.post(
        "/v1/events", content=content.replace(b"KEY", site.site_key.encode()), headers=sent
    )
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)
    if "content-encoding" in headers:
        assert_error(response, 415, "unsupported_media_type")
    with engine.connect() as conn:
        assert count_events(conn) == 0


HOSTILE_VALUES = [
    "", " ", "'", '"', "' OR 1=1 --", "1; DROP TABLE events", "%00", "\x00", "\u202e", "\ud7ff", "😀" * 50,
    "-1", "0", "1e309", "NaN", "Infinity", "-0", "99999999999999999999999", "0x10", "1_000",
    "9999-99-99", "0000-01-01T00:00:00Z", "2025-13-01", "2025-11-24T25:00:00Z", "2025-11-24T00:00:00+99:00",
    "../../etc/passwd", "{}", "[[[[", '{"$gt": ""}', "<script>alert(1)</script>", "${jndi:ldap://x}",
    "a" * 5000, "Europe/../../etc/localtime", "phone,im", "desc", "x:desc",
]  # fmt: skip


async def test_hostile_query_parameters_get_an_answer_or_one_400(
    settings: Settings, engine: Engine, site: Site
) -> None:
    ingest(settings, [center_history(site.id, seed=5, start_ms=T0, agents=2, calls=6)])
    key = create_key(engine, "admin").plaintext  # every GET, the admin API too
    statuses: dict[int, int] = {}
    async with running_app(settings) as client:
        client.headers["authorization"] = f"Bearer {key}"
        for path, names in read_operations():
            for name, value in itertools.product([*names, "unknown"], HOSTILE_VALUES):
                response = await client.get(path, params={name: value})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code in (200, 400, 404), (path, name, value, response.text[:300])
                if response.status_code != 200:
                    assert_error(response, response.status_code)
            # Every parameter repeated, and all of them hostile at once.
            repeated: list[tuple[str, str | int | float | bool | None]] = [
                (name, v) for name in names for v in ("1", "2")
            ]
            assert (await client.get(path, params=repeated)).status_code in (200, 400, 404)
            for value in HOSTILE_VALUES[:10]:
                response = await client.get(path, params={name: value for name in names})
                assert response.status_code in (200, 400, 404), (path, value, response.text[:300])
        for hostile_id in ["x", "'", "..%2Faudit", "%00", "a" * 5000, "00000000-0000-0000-0000-00000000000g"]:
            response = await client.get(f"/v1/sessions/{hostile_id}")
            assert response.status_code in (400, 404), (hostile_id, response.text[:300])
    assert statuses.get(400, 0) > 100 and statuses.get(200, 0) > 100  # both kinds really exercised


@dataclass
class Served:
    server: Server
    key: str
    site_key: str


@pytest.fixture(scope="module")
def served(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real `calltrail serve` on SQLite logging at debug level: uvicorn parses the raw request line and
    writes the access log, which the in-process client would not."""
    directory = tmp_path_factory.mktemp("baseline")
    url = databases.sqlite_create_database(sqlite_template, directory)
    engine = make_engine(Settings(database_url=url))
    site = add_site(engine, "crm", [ORIGIN])
    key = create_key(engine, "read").plaintext
    engine.dispose()
    env = {**os.environ, "CALLTRAIL_DATABASE_URL": url, "CALLTRAIL_LOG_LEVEL": "debug"}
    server = Server([], env, directory)
    yield Served(server, key, site.site_key)
    server.kill()


def raw_get(server: Server, target: str) -> tuple[int, dict[str, str], bytes]:
    """GET exactly this request target: HTTP clients normalise dot segments before sending."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, content


@pytest.mark.slow
def test_no_path_escapes_the_served_files(served: Served) -> None:
    repository = Path(__file__).resolve().parents[2]
    secrets = [b"SETTINGS_SPEC", b"root:x:0:0", b"import "]
    assert b"SETTINGS_SPEC" in (repository / "service" / "config.py").read_bytes()
    for target in [
        "/dashboard/../service/config.py", "/dashboard/%2e%2e/%2e%2e/etc/passwd",
        "/dashboard/..%2f..%2fetc%2fpasswd",
        "/dashboard/vendor/../../service/config.py", "/dashboard/vendor/uplot/..%5c..%5capp.py",
        "/dashboard/app.js%00.html", "/dashboard//etc/passwd", "/shim.js/../service/config.py",
        "/static/../service/config.py", "/dashboard/%252e%252e/config.py", "/../../../etc/passwd",
        "/..%2f..%2fetc/passwd", "/dashboard/vendor/uplot/../../../../service/app.py", "//etc/passwd",
        "/service/config.py", "/service/static/dashboard/app.js", "/dashboard/app.js/..%2f..%2fconfig.py",
    ]:  # fmt: skip
        status, headers, content = raw_get(served.server, target)
        assert status in (307, 308, 400, 404, 405), (target, status)
        if status in (307, 308):
            location = headers["location"]
            assert location.startswith("/") and not location.startswith("//"), (target, location)
        assert not any(secret in content for secret in secrets), target


@pytest.mark.slow
def test_redirects_never_point_to_another_host(served: Served) -> None:
    targets = ["//evil.example/", "//evil.example/dashboard/", "///evil.example/dashboard/",
               "/\\evil.example/", "//evil.example/v1/sessions/", "/dashboard/"]  # fmt: skip
    for target in targets:
        status, headers, _ = raw_get(served.server, target)
        location = headers.get("location")
        if location is not None:
            assert location.startswith("/") and not location.startswith(("//", "/\\")), (target, location)
        assert status in (307, 308, 400, 404), (target, status)
    assert raw_get(served.server, "/dashboard/")[1]["location"] == "/dashboard"


@pytest.mark.slow
def test_keys_never_reach_the_logs(served: Served) -> None:
    server, key = served.server, served.key
    parts = split_secret_key(key)
    assert parts is not None
    secret = parts[1]
    with httpx.Client(base_url=server.base, timeout=10) as client:
        for path in READ_PATHS:
            client.get(path, headers={"authorization": f"Bearer {key}"})
            client.get(path, headers={"authorization": f"Bearer {key[:-1]}"})
            client.get(path, params={"key": key, "customer": "13900001111"})
        sent: Any = batch(served.site_key, [hash_event(1, "#?mobile=13900001111&status=100")])
        client.post(
            "/v1/events", content=body(sent), headers={"origin": ORIGIN, "content-type": "text/plain"}
        )
    log = server.log()
    assert "GET /v1/live" in log  # the access log is on: the absence below means something
    assert secret not in log and key not in log
    assert "13900001111" not in log


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("127.8.0.1", True), ("0.0.0.0", False),
     ("::", False), ("10.0.0.5", False), ("calltrail.internal", False)],
)  # fmt: skip
def test_serve_knows_which_addresses_only_this_machine_reaches(host: str, loopback: bool) -> None:
    # `calltrail serve` warns about CALLTRAIL_ALLOWED_HOSTS=* on exactly the addresses that are not these.
    assert _is_loopback(host) is loopback
