"""The answers of today, byte for byte: on a fixed history, every read endpoint's body in every format, the
error bodies and the CLI exports are compared with the files recorded in tests/contract/golden/ (the
description, /openapi.json, is generated from the contract's models and checked by test_description.py).
A refactor that changes a byte of any of them fails here; a deliberate change is recorded again with
`CALLTRAIL_RECORD_GOLDEN=1 .venv/bin/python -m pytest tests/contract/test_golden.py` and shows in the
diff. Both databases must give the same bytes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import anyio
import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from service.admin.registry import Site, create_key
from service.cli import cli
from service.config import Settings
from service.storage.events import EventRow
from tests.batches import batch, body, hash_event
from tests.center import center_history
from tests.conftest import ORIGIN, running_app
from tests.projection_helpers import T0, ingest

pytestmark = pytest.mark.anyio
GOLDEN = Path(__file__).resolve().parent / "golden"
RECORD = os.environ.get("CALLTRAIL_RECORD_GOLDEN") == "1"
_IDS = uuid.UUID("0c1d2e3f-4a5b-4c6d-8e7f-001122334455")
WINDOW = {"from": "2025-11-24T00:00:00Z", "to": "2025-12-01T00:00:00Z"}

READS: list[tuple[str, dict[str, str]]] = [
    ("/v1/sessions", {**WINDOW, "limit": "500"}),
    ("/v1/sessions", {**WINDOW, "limit": "7"}),
    ("/v1/sessions", {**WINDOW, "limit": "500", "format": "csv"}),
    ("/v1/sessions", {**WINDOW, "limit": "500", "format": "ndjson"}),
    ("/v1/sessions", {**WINDOW, "channel": "im", "outcome": "answered"}),
    ("/v1/sessions", {**WINDOW, "agent": "agent1@x.com", "customer": "13800000003"}),
    ("/v1/analytics/inbound", {**WINDOW, "interval": "day", "tz": "Asia/Shanghai"}),
    ("/v1/analytics/inbound", {**WINDOW, "interval": "hour", "tz": "UTC", "channel": "phone"}),
    (
        "/v1/analytics/inbound",
        {**WINDOW, "interval": "week", "service_level_s": "10", "short_abandon_s": "3"},
    ),
    ("/v1/analytics/agents", WINDOW),
    ("/v1/analytics/agents", {**WINDOW, "format": "csv"}),
    ("/v1/analytics/agents", {**WINDOW, "format": "ndjson", "channel": "im"}),
    ("/v1/analytics/cards", WINDOW),
    ("/v1/analytics/cards", {**WINDOW, "agent": "agent0@x.com"}),
    ("/v1/analytics/outbound", WINDOW),
    ("/v1/analytics/outbound", {**WINDOW, "follow_window_s": "60"}),
    ("/v1/audit", {**WINDOW, "limit": "500"}),
    ("/v1/audit", {**WINDOW, "limit": "5"}),
    ("/v1/audit", {**WINDOW, "format": "csv", "limit": "500"}),
    ("/v1/audit", {**WINDOW, "format": "ndjson", "action": "send_card", "limit": "500"}),
    ("/v1/quality", WINDOW),
    ("/v1/sessions/00000000-0000-0000-0000-000000000000", {}),
]
ERRORS: list[tuple[str, dict[str, str]]] = [
    ("/v1/sessions", {"from": "yesterday"}),
    ("/v1/sessions", {"limit": "0", "channel": "fax", "format": "xml"}),
    ("/v1/sessions", {"cursor": "not-a-cursor"}),
    ("/v1/analytics/inbound", {**WINDOW, "interval": "minute", "tz": "Mars/Olympus"}),
    ("/v1/analytics/inbound", {"from": "2020-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}),
    ("/v1/audit", {"action": "dance"}),
    ("/v1/nowhere", {}),
]
INGEST_ERRORS: list[tuple[bytes, dict[str, str]]] = [
    (b'{"v": 1, "site": ', {"content-type": "text/plain"}),
    (b"{}", {"content-type": "image/png"}),
    (b'{"v": 2, "site": 5, "events": "x"}', {"content-type": "text/plain"}),
    (b"[" * 40 + b"]" * 40, {"content-type": "text/plain"}),
]
EXPORTS = [
    ["export", kind, "--format", fmt]
    for kind in ("sessions", "events", "actions")
    for fmt in ("csv", "ndjson")
]


def golden_history(site_id: int) -> list[EventRow]:
    """The query tests' history with event ids derived from (page, seq), so session and action ids repeat."""
    rows = center_history(site_id, seed=11, start_ms=T0, agents=4, calls=12)
    for row in rows:
        event_id = str(uuid.uuid5(_IDS, f"{row['page_id']}:{row['seq']}"))
        raw = orjson.loads(row["raw"])
        raw["id"] = event_id
        row["event_id"], row["raw"] = event_id, orjson.dumps(raw).decode()
    return rows


def answer_text(status: int, content_type: str, text: str) -> str:
    return f"{status} {content_type}\n{text}"


async def capture(settings: Settings, engine: Engine, site: Site, db_url: str) -> dict[str, str]:
    ingest(settings, [golden_history(site.id)])
    key = create_key(engine, "read").plaintext
    answers: dict[str, str] = {}
    async with running_app(settings) as client:
        headers = {"authorization": f"Bearer {key}"}
        for path, params in [*READS, *ERRORS]:
            response = await client.get(path, params=params, headers=headers)
            name = f"GET {path}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
            answers[name] = answer_text(response.status_code, response.headers["content-type"], response.text)
        listed = (await client.get("/v1/sessions", params={**WINDOW, "limit": "500"}, headers=headers)).json()
        with_actions = [s["id"] for s in listed["sessions"] if s["cards_sent"] or s["call_outs"]][:3]
        for session_id in [*with_actions, listed["sessions"][-1]["id"]]:
            response = await client.get(f"/v1/sessions/{session_id}", headers=headers)
            answers[f"GET /v1/sessions/{session_id}"] = answer_text(
                response.status_code, response.headers["content-type"], response.text
            )
        response = await client.get("/v1/live", headers={"authorization": f"Bearer {key}"})
        live = response.json()
        live.pop("as_of")  # the only value that is the time of asking
        answers["GET /v1/live"] = answer_text(
            response.status_code, response.headers["content-type"], str(live)
        )
        answers["GET /v1/sessions (no key)"] = (await client.get("/v1/sessions")).text
        for content, headers in INGEST_ERRORS:
            response = await client.post("/v1/events", content=content, headers={"origin": ORIGIN, **headers})
            answers[f"POST /v1/events {content[:40]!r} {headers}"] = answer_text(
                response.status_code, response.headers["content-type"], response.text
            )
    env = {"CALLTRAIL_DATABASE_URL": db_url}
    for args in EXPORTS:
        result = await anyio.to_thread.run_sync(lambda a=args: CliRunner().invoke(cli, a, env=env))  # type: ignore[misc]
        assert result.exit_code == 0, result.output
        answers["calltrail " + " ".join(args)] = result.stdout
    # Last: its row carries the time it was received, which the exports above would show.
    async with running_app(settings) as client:
        accepted = await client.post(
            "/v1/events",
            content=body(batch(site.site_key, [hash_event(1, "#?status=100", ts=T0)], page_id=str(_IDS))),
            headers={"origin": ORIGIN, "content-type": "text/plain"},
        )
        results = accepted.json()["results"]
        answers["POST /v1/events (one event)"] = str([(r["status"], sorted(r)) for r in results])
    return answers


async def test_answers_are_byte_identical_to_the_recorded_ones(
    backend: str, db_url: str, settings: Settings, engine: Engine, site: Site
) -> None:
    answers = await capture(settings, engine, site, db_url)
    recorded_file = GOLDEN / "answers.json"
    if RECORD and backend == "sqlite":
        GOLDEN.mkdir(exist_ok=True)
        recorded_file.write_bytes(
            orjson.dumps(answers, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    recorded: dict[str, str] = orjson.loads(recorded_file.read_bytes())
    assert sorted(answers) == sorted(recorded)
    for name, text in recorded.items():
        assert answers[name] == text, name
    assert len(recorded) > 30
