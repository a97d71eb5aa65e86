"""Regression tests for the security probe's findings (issue 18), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from service.admin.registry import Site, create_key
from service.cli import cli
from service.config import Settings
from service.domain.json_depth import MAX_JSON_DEPTH, json_depth_exceeds
from service.formats import csv_cell
from service.logs import AccessLogRedaction, redact_query
from service.storage.engine import create_private_sqlite_file
from service.storage.schema import events, projection_failures, quarantined_events
from tests.batches import batch, body, hash_event, message_event
from tests.conftest import ORIGIN, running_app
from tests.projection_helpers import T0, hash_row, ingest, message_row

pytestmark = pytest.mark.anyio
HEADERS = {"origin": ORIGIN, "content-type": "text/plain"}
AGENT = "agentEmail=ann%40x.com&agentNickName=Ann&sdkAppId=1400"


async def run_cli(args: list[str], env: dict[str, str]) -> Any:
    """The CLI in a thread: its PostgreSQL transactor runs an event loop of its own."""
    return await anyio.to_thread.run_sync(lambda: CliRunner().invoke(cli, args, env=env))


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\x00\u2028', max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=4), children, max_size=3)
    ),
    max_leaves=40,
)


@given(JSON_VALUES, st.integers(0, 6))
@hypothesis_settings(max_examples=300, deadline=None)
def test_the_depth_scan_is_exact_on_valid_json(value: Any, limit: int) -> None:
    text = json.dumps(value, ensure_ascii=False).encode()
    assert json_depth_exceeds(text, limit) == (depth_of(value) > limit)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 3 + 1, 60, 250, 251, 252, 300, 1024, 5000])
@pytest.mark.parametrize("long_digits", [False, True])
async def test_deep_bodies_get_one_400_naming_the_limit(
    api: httpx.AsyncClient, site: Site, engine: Engine, depth: int, long_digits: bool
) -> None:
    deep = "[" * depth + "1" + "]" * depth
    if long_digits:
        deep = f"[{deep}, 12345678901234567890123]"
    event = message_event(1, "sendCard", {"header": "DEEP"})
    sent = body(batch(site.site_key, [event])).replace(b'"DEEP"', deep.encode())
    response = await api.post("/v1/events", content=sent, headers=HEADERS)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "too_deep"
    assert str(MAX_JSON_DEPTH) in response.json()["error"]["message"]
    with engine.connect() as conn:
        assert conn.execute(select(events)).first() is None


async def test_the_deepest_accepted_event_reads_back_everywhere(
    settings: Settings, api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    # body, events, event, data, payload, message: 6 levels before the card's own fields.
    card = {"header": nested(MAX_JSON_DEPTH - 6), "url": 123456789012345678901234567890}
    hash_ = hash_event(1, f"#?mobile=1888&status=100&type=im&{AGENT}")
    event = message_event(2, "sendCard", card)
    sent = json.dumps(batch(site.site_key, [hash_, event])).encode()
    assert not json_depth_exceeds(sent) and json_depth_exceeds(sent, MAX_JSON_DEPTH - 1)
    response = await api.post("/v1/events", content=sent, headers=HEADERS)
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]
    await read_everything(settings, engine, expect_actions=1)


def poison_rows(site_id: int) -> list[Any]:
    """Rows as the old ingest stored them: a card nested 250 levels (accepted before the limit)."""
    page = str(uuid.uuid4())
    return [
        hash_row(site_id, page, 1, T0, f"#?mobile=1888&status=100&type=im&{AGENT}"),
        message_row(site_id, page, 2, T0 + 1000, "sendCard", {"header": nested(245)}),
        hash_row(site_id, page, 3, T0 + 2000, f"#?mobile=1888&status=200&type=im&{AGENT}"),
    ]


async def read_everything(settings: Settings, engine: Engine, *, expect_actions: int) -> None:
    key = create_key(engine, "read", "tests").plaintext
    async with running_app(settings) as client:
        client.headers["authorization"] = f"Bearer {key}"
        window = {"from": "2025-11-20", "to": "2025-11-30"}
        sessions = (await client.get("/v1/sessions")).json()["sessions"]
        assert sessions
        for session in sessions:
            detail = await client.get(f"/v1/sessions/{session['id']}")
            assert detail.status_code == 200, detail.text
        audit = await client.get("/v1/audit", params={"limit": 1})
        assert audit.status_code == 200, audit.text
        assert len(audit.json()["actions"]) == min(1, expect_actions)
        for fmt in ("csv", "ndjson"):
            for path in ("/v1/audit", "/v1/sessions"):
                assert (await client.get(path, params={"format": fmt})).status_code == 200
        for path in ("inbound", "agents", "cards", "outbound"):
            assert (await client.get(f"/v1/analytics/{path}", params=window)).status_code == 200
        assert (await client.get("/v1/live")).status_code == 200
        assert (await client.get("/v1/quality", params=window)).status_code == 200
    env = {"CALLTRAIL_DATABASE_URL": settings.database_url}
    for kind in ("events", "sessions", "actions"):
        for fmt in ("ndjson", "csv"):
            result = await run_cli(["export", kind, "--format", fmt], env)
            assert result.exit_code == 0, result.output


async def test_rows_stored_before_the_limit_read_back_and_are_quarantined(
    settings: Settings, site: Site, engine: Engine
) -> None:
    ingest(settings, [poison_rows(site.id)])
    await read_everything(settings, engine, expect_actions=1)  # failed with 500s before the fix
    env = {"CALLTRAIL_DATABASE_URL": settings.database_url}
    dry = await run_cli(["quarantine", "--dry-run"], env)
    assert dry.exit_code == 0, dry.output
    assert "would quarantine 1 events" in dry.output
    done = await run_cli(["quarantine"], env)
    assert done.exit_code == 0, done.output
    assert "quarantined 1 events" in done.output
    with engine.connect() as conn:
        kept = conn.execute(select(quarantined_events)).mappings().one()
        assert orjson.loads(kept["raw"])["data"]["payload"]["message"] == {"header": nested(245)}
        assert conn.execute(select(events).where(events.c.id == kept["id"])).first() is None
    await read_everything(settings, engine, expect_actions=0)
    listed = await run_cli(["export", "quarantined"], env)
    assert listed.exit_code == 0 and "nests arrays" in listed.output
    again = await run_cli(["quarantine"], env)
    assert "quarantined 0 events" in again.output
    # Retention reaches the quarantine too: it holds callers' numbers like the log.
    kept_recent = await run_cli(["purge", "--older-than", "5000d"], env)
    assert "0 quarantined events" in kept_recent.output
    purged = await run_cli(["purge", "--older-than", "1h"], env)
    assert purged.exit_code == 0 and "1 quarantined events" in purged.output, purged.output
    with engine.connect() as conn:
        assert conn.execute(select(quarantined_events)).first() is None


async def test_nul_in_hash_fields_derives_the_same_session_on_both_databases(
    settings: Settings, api: httpx.AsyncClient, site: Site, engine: Engine
) -> None:
    hashes = [
        "#?userId=u1&status=100&type=im&agentEmail=a%00b%40x.com&nickName=Li%00Lei",
        "#?userId=u1&status=200&type=im&agentEmail=a%00b%40x.com&nickName=Li%00Lei",
    ]
    sent = [hash_event(i + 1, h) for i, h in enumerate(hashes)]
    sent.append(message_event(3, "x\u0000y", {"a": "\u0000"}))
    response = await api.post("/v1/events", content=body(batch(site.site_key, sent)), headers=HEADERS)
    assert {r["status"] for r in response.json()["results"]} == {"accepted"}
    key = create_key(engine, "read", "tests").plaintext
    found = await api.get("/v1/sessions", headers={"authorization": f"Bearer {key}"})
    (session,) = found.json()["sessions"]
    assert session["agent_email"] == "a\ufffdb@x.com"
    assert session["customer_nickname"] == "Li\ufffdLei"
    assert session["outcome"] == "ongoing"
    audit = (await api.get("/v1/audit", headers={"authorization": f"Bearer {key}"})).json()
    assert [a["action"] for a in audit["actions"]] == ["x\ufffdy"]
    quality = (await api.get("/v1/quality", headers={"authorization": f"Bearer {key}"})).json()
    assert quality["projection_failures"] == 0


async def test_a_projection_failure_is_a_visible_retryable_dead_letter(
    settings: Settings, site: Site, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.projection.derive as projection_module

    real = projection_module.parse_hash  # type: ignore[attr-defined]

    def failing(raw_hash: str) -> Any:
        if "poison" in raw_hash:
            raise ValueError(f"injected failure on {raw_hash}")  # quotes the caller's number
        return real(raw_hash)

    monkeypatch.setattr(projection_module, "parse_hash", failing)
    page = str(uuid.uuid4())
    ingest(
        settings,
        [[
            hash_row(site.id, page, 1, T0, f"#?mobile=1&status=100&type=phone&{AGENT}"),
            hash_row(site.id, page, 2, T0 + 1, f"#?mobile=2&status=100&type=phone&poison=1&{AGENT}"),
        ]],
    )  # fmt: skip
    with engine.connect() as conn:
        (failure,) = conn.execute(select(projection_failures)).mappings().all()
    # The kind of error, never its message: that quoted the hash, and so the caller's number.
    assert failure["error"] == "ValueError" and failure["attempts"] == 1
    key = create_key(engine, "read", "tests").plaintext
    async with running_app(settings) as client:
        client.headers["authorization"] = f"Bearer {key}"
        quality = (await client.get("/v1/quality", params={"from": "2025-11-20", "to": "2025-11-30"})).json()
        assert quality["projection_failures"] == 1
        assert len((await client.get("/v1/sessions")).json()["sessions"]) == 1
    env = {"CALLTRAIL_DATABASE_URL": settings.database_url}
    still = await run_cli(["project", "--retry-failed"], env)
    assert "1 dead letters left" in still.output, still.output
    monkeypatch.setattr(projection_module, "parse_hash", real)
    fixed = await run_cli(["project", "--retry-failed"], env)
    assert "0 dead letters left" in fixed.output, fixed.output
    async with running_app(settings) as client:
        client.headers["authorization"] = f"Bearer {key}"
        assert len((await client.get("/v1/sessions")).json()["sessions"]) == 2


def test_csv_cells_are_neutralised_by_column_type() -> None:
    for text in ('=HYPERLINK("http://x")', "+cmd|'/C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    assert csv_cell("+8613800000000", phone=True) == "+8613800000000"
    assert csv_cell("+86 138 0000 0000", phone=True) == "+86 138 0000 0000"
    assert csv_cell("+1-2+cmd|x", phone=True) == "'+1-2+cmd|x"
    assert csv_cell("+8613800000000") == "'+8613800000000"
    assert csv_cell(-120) == -120 and csv_cell(-1.5) == -1.5
    assert csv_cell("ann@x.com") == "ann@x.com"


async def test_csv_exports_carry_no_formula(settings: Settings, site: Site, engine: Engine) -> None:
    page = str(uuid.uuid4())
    ingest(
        settings,
        [[
            hash_row(site.id, page, 1, T0, "#?mobile=%2B8613800000000&status=100&type=im&agentEmail=%3D1%2B1&nickName=%40SUM(A1)"),
            message_row(site.id, page, 2, T0 + 1, "sendCard", {"header": "=cmd|'/C calc'!A0", "url": "-1"}),
        ]],
    )  # fmt: skip
    key = create_key(engine, "read", "tests").plaintext
    async with running_app(settings) as client:
        client.headers["authorization"] = f"Bearer {key}"
        sessions_csv = (await client.get("/v1/sessions", params={"format": "csv"})).text
        audit_csv = (await client.get("/v1/audit", params={"format": "csv"})).text
    env = {"CALLTRAIL_DATABASE_URL": settings.database_url}
    cli_csv = (await run_cli(["export", "sessions", "--format", "csv"], env)).output
    for text in (sessions_csv, audit_csv, cli_csv):
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert not cell.startswith(("=", "@", "\t", "\r")), cell
                assert not cell.startswith(("+", "-")) or cell.lstrip("+").replace(" ", "").isdigit(), cell
    (session,) = list(csv.DictReader(io.StringIO(sessions_csv)))
    assert session["customer_mobile"] == "+8613800000000"
    assert session["agent_email"] == "'=1+1"
    assert session["customer_nickname"] == "'@SUM(A1)"


async def test_the_site_budget_is_charged_after_the_origin_check(settings: Settings, site: Site) -> None:
    limited = settings.replace(rate_limit_per_site="3/minute")
    async with running_app(limited) as client:
        for seq in range(1, 6):
            document = body(batch(site.site_key, [hash_event(seq, "#?status=100")]))
            foreign = {**HEADERS, "origin": "https://evil.example"}
            assert (await client.post("/v1/events", content=document, headers=foreign)).status_code == 403
        document = body(batch(site.site_key, [hash_event(9, "#?status=100")]))
        response = await client.post("/v1/events", content=document, headers=HEADERS)
        assert response.status_code == 200, response.text


async def test_hosts_and_redirects(settings: Settings) -> None:
    async with running_app(settings) as client:
        response = await client.get("/dashboard/", headers={"host": "evil.example"})
        assert response.status_code in (307, 308)
        assert response.headers["location"] == "/dashboard"
        # A protocol-relative target ("//evil.example/") is sent raw in tests/security/test_security_baseline.py:
        # httpx would send it as "/".
    async with running_app(settings.replace(allowed_hosts="events.example.com,*.corp.example")) as client:
        refused = await client.get("/healthz", headers={"host": "evil.example"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_host"
        ingest_refused = await client.post("/v1/events", content=b"{}", headers={"host": "evil.example"})
        assert ingest_refused.status_code == 400
        for host in ("events.example.com", "events.example.com:8443", "a.corp.example"):
            assert (await client.get("/healthz", headers={"host": host})).status_code == 200


async def test_api_answers_are_nosniff_and_not_stored(settings: Settings, site: Site, engine: Engine) -> None:
    key = create_key(engine, "read", "tests").plaintext
    async with running_app(settings) as client:
        answers = [
            await client.get("/v1/sessions", headers={"authorization": f"Bearer {key}"}),
            await client.get(
                "/v1/audit", params={"format": "csv"}, headers={"authorization": f"Bearer {key}"}
            ),
            await client.get("/v1/sessions"),
            await client.post("/v1/events", content=b"{", headers=HEADERS),
            await client.get("/openapi.json"),
        ]
        for response in answers:
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["cache-control"] == "no-store"
        dashboard = await client.get("/dashboard")
        assert dashboard.headers["cache-control"] == "no-cache"
        assert dashboard.headers["x-content-type-options"] == "nosniff"


def test_access_log_keeps_no_customer_number() -> None:
    target = "/v1/sessions?customer=13912345678&agent=ann%40x.com&from=2026-11-01&limit=5&cursor=abc"
    redacted = redact_query(target)
    assert "13912345678" not in redacted and "ann" not in redacted and "abc" not in redacted
    assert "from=2026-11-01" in redacted and "limit=5" in redacted and "customer=-" in redacted
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", target, "1.1", 200), None,
    )  # fmt: skip
    assert AccessLogRedaction().filter(record)
    assert "13912345678" not in record.getMessage()


def test_a_new_sqlite_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    old = os.umask(0o022)
    try:
        create_private_sqlite_file(f"sqlite:///{path}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_docker_compose_publishes_on_loopback_without_a_fixed_password() -> None:
    text = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: calltrail" not in text
    assert "calltrail:calltrail@" not in text
    assert '"127.0.0.1:8000:8000"' in text
    assert '"8000:8000"' not in text
