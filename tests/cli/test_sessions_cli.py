"""rebuild, export, purge and data quality on both databases."""

from __future__ import annotations

import csv
import io
import time

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select

from service.admin.registry import Site
from service.cli import cli
from service.config import Settings
from service.reports.quality import page_quality, quality_summary
from service.reports.records import ACTION_FIELDS, EVENT_FIELDS, SESSION_FIELDS
from service.storage.schema import events
from tests.conftest import ORIGIN, running_app
from tests.projection_helpers import (
    T0,
    TIMEOUTS,
    derived,
    drain_all,
    hash_row,
    ingest,
    message_row,
    queued_count,
    rebuild_all,
    store_unprojected,
)

AGENT = "agentEmail=ann%40x.com&sdkAppId=1400"


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"CALLTRAIL_DATABASE_URL": db_url}, catch_exceptions=False)


@pytest.fixture
def history(settings: Settings, site: Site) -> None:
    page = "11111111-1111-4111-8111-111111111111"
    ingest(
        settings,
        [
            [
                hash_row(site.id, page, 1, T0, f"#?mobile=18888888888&status=100&type=phone&{AGENT}"),
                hash_row(site.id, page, 2, T0 + 4_000, f"#?mobile=18888888888&status=200&type=phone&{AGENT}"),
                message_row(site.id, page, 3, T0 + 9_000, "sendCard", {"header": 'Offer, "new"', "url": "u"}),
                hash_row(
                    site.id, page, 5, T0 + 60_000, f"#?mobile=18888888888&status=400&type=phone&{AGENT}"
                ),
                hash_row(
                    site.id, page, 6, T0 + 61_000, f"#?mobile=18888888888&status=400&type=phone&{AGENT}"
                ),
            ]
        ],
    )


def test_export_sessions_ndjson_and_csv(db_url: str, history: None) -> None:
    result = run(db_url, "export", "sessions")
    assert result.exit_code == 0, result.output
    (record,) = [orjson.loads(line) for line in result.output.splitlines()]
    assert list(record) == list(SESSION_FIELDS)
    assert (record["outcome"], record["ring_s"], record["talk_s"], record["cards_sent"]) == (
        "answered",
        4.0,
        56.0,
        1,
    )
    assert record["duplicate_count"] == 1

    as_csv = list(csv.DictReader(io.StringIO(run(db_url, "export", "sessions", "--format", "csv").output)))
    assert len(as_csv) == 1
    assert as_csv[0]["id"] == record["id"]
    assert as_csv[0]["talk_s"] == "56.0"
    assert as_csv[0]["end_source"] == "explicit"


def test_export_actions_and_events(db_url: str, history: None) -> None:
    (action,) = [orjson.loads(line) for line in run(db_url, "export", "actions").output.splitlines()]
    assert list(action) == list(ACTION_FIELDS)
    assert action["action"] == "send_card"
    assert action["details"]["header"] == 'Offer, "new"'
    rows = list(csv.DictReader(io.StringIO(run(db_url, "export", "events", "--format", "csv").output)))
    assert len(rows) == 5
    assert list(rows[0]) == list(EVENT_FIELDS)
    assert orjson.loads(rows[2]["raw"])["data"]["payload"]["message"]["header"] == 'Offer, "new"'


def test_export_windows_and_site_filter(db_url: str, history: None) -> None:
    inside = run(
        db_url, "export", "events", "--from", "2025-11-24T16:00:30Z", "--to", "2025-11-24T17:00:00+00:00"
    )
    assert len(inside.output.splitlines()) == 2
    assert run(db_url, "export", "events", "--site", "nobody").output == ""
    bad = run(db_url, "export", "events", "--from", "yesterday")
    assert bad.exit_code == 2
    assert "ISO 8601" in bad.output


def test_rebuild_command_reproduces_sessions(db_url: str, engine: Engine, history: None) -> None:
    before = derived(engine)
    result = run(db_url, "rebuild")
    assert result.exit_code == 0, result.output
    assert "rebuilt from 5 events: 1 sessions, 1 actions" in result.output
    assert derived(engine) == before


def test_project_command_drains_the_queue(
    settings: Settings, site: Site, db_url: str, engine: Engine
) -> None:
    page = "22222222-2222-4222-8222-222222222222"
    rows = [
        hash_row(site.id, page, 1, T0, f"#?mobile=18888888888&status=100&type=phone&{AGENT}"),
        hash_row(site.id, page, 2, T0 + 4_000, f"#?mobile=18888888888&status=200&type=phone&{AGENT}"),
        message_row(site.id, page, 3, T0 + 9_000, "sendCard", {"header": "Offer", "url": "u"}),
    ]
    store_unprojected(settings, rows)
    with engine.connect() as conn:
        assert queued_count(conn) == 3
    assert derived(engine)["sessions"] == []

    result = run(db_url, "project")
    assert result.exit_code == 0, result.output
    assert "projected 3 queued events" in result.output
    with engine.connect() as conn:
        assert queued_count(conn) == 0
    projected = derived(engine)
    assert len(projected["sessions"]) == 1 and len(projected["actions"]) == 1
    assert run(db_url, "rebuild").exit_code == 0
    assert derived(engine) == projected, "the same as computing everything again from the raw log"
    assert "projected 0 queued events" in run(db_url, "project").output


def test_purge_removes_old_data_and_says_so(db_url: str, engine: Engine, history: None) -> None:
    result = run(db_url, "purge", "--older-than", "90d")  # T0 lies a year back
    assert result.exit_code == 0, result.output
    assert "5 events, 1 sessions, 1 actions" in result.output
    assert derived(engine) == {"sessions": [], "actions": [], "hash_events": []}
    with engine.connect() as conn:
        assert conn.execute(select(events)).all() == []
    assert run(db_url, "purge", "--older-than", "ninety").exit_code == 2


def test_purge_keeps_recent_data(db_url: str, engine: Engine, history: None) -> None:
    result = run(db_url, "purge", "--older-than", "5000d")
    assert "0 events" in result.output
    assert len(derived(engine)["sessions"]) == 1


def test_purge_rederives_a_session_that_spans_the_cutoff(
    settings: Settings, engine: Engine, site: Site
) -> None:
    now = int(time.time() * 1000)
    old, recent = now - 10 * 86_400_000, now - 3_600_000
    page = "44444444-4444-4444-8444-444444444444"
    ingest(settings, [[
        hash_row(site.id, page, 1, old, f"#?mobile=1&status=100&type=im&{AGENT}"),
        hash_row(site.id, page, 2, old + 5_000, f"#?mobile=1&status=200&type=im&{AGENT}"),
        message_row(site.id, page, 3, old + 9_000, "sendCard", {"header": "h"}),
        hash_row(site.id, page, 4, recent, f"#?mobile=1&status=200&type=im&{AGENT}"),
        hash_row(site.id, page, 5, recent + 60_000, f"#?mobile=1&status=400&type=im&{AGENT}"),
    ]])  # fmt: skip
    result = run(settings.database_url, "purge", "--older-than", "7d")
    assert "3 events" in result.output, result.output
    purged = derived(engine)
    assert len(purged["sessions"]) == 1
    assert purged["actions"] == []
    rebuild_all(settings)
    assert derived(engine) == purged  # what remains is exactly what ingesting the remaining log gives
    with engine.connect() as conn:
        assert conn.execute(select(events.c.seq).order_by(events.c.seq)).scalars().all() == [4, 5]


def test_quality_counts_gaps_duplicates_and_inference(engine: Engine, history: None, site: Site) -> None:
    with engine.connect() as conn:
        (page,) = page_quality(conn, site_id=site.id)
        summary = quality_summary(conn, site_id=site.id, now_ms=T0 + 3_600_000, timeouts=TIMEOUTS)
    assert (page.events, page.last_seq, page.missing, page.repeated_seqs) == (
        5,
        6,
        1,
        0,
    )  # seq 4 never arrived
    assert (summary.events, summary.pages, summary.pages_with_gaps, summary.missing_events) == (5, 1, 1, 1)
    assert (summary.sessions, summary.duplicate_events) == (1, 1)
    assert (summary.closed_by_timeout, summary.closed_by_supersession, summary.observed_mid_session) == (
        0,
        0,
        0,
    )


@pytest.mark.anyio
async def test_hmac_mode_stores_no_number_anywhere(settings: Settings, site: Site, engine: Engine) -> None:
    protected = settings.replace(pii_mode="hmac", pii_key="a-secret-key-of-32-characters-ok")
    now = int(time.time() * 1000)
    document = {
        "v": 1, "site": site.site_key, "sent_at": now,
        "page": {"id": "22222222-2222-4222-8222-222222222222", "url": "https://crm.example.com/"},
        "events": [
            {"id": "33333333-3333-4333-8333-333333333331", "seq": 1, "ts": now, "type": "hash",
             "hash": f"#?mobile=18888888888&userId=u-777&status=100&type=phone&{AGENT}"},
            {"id": "33333333-3333-4333-8333-333333333332", "seq": 2, "ts": now, "type": "message",
             "data": {"source": "ccc-sdk", "payload": {"event": "callOut", "message": {"phoneNumber": "18888888888"}}}},
        ],
    }  # fmt: skip
    async with running_app(protected) as api:
        response = await api.post(
            "/v1/events",
            content=orjson.dumps(document),
            headers={"origin": ORIGIN, "content-type": "text/plain"},
        )
    assert {r["status"] for r in response.json()["results"]} == {"accepted"}
    drain_all(settings)  # what the server had not projected before it stopped stays queued until now
    stored = derived(engine)
    with engine.connect() as conn:
        raw = " ".join(conn.execute(select(events.c.raw)).scalars())
    everything = raw + repr(stored)
    assert "18888888888" not in everything
    assert "u-777" not in everything
    (session,) = stored["sessions"]
    assert any(isinstance(v, str) and v.startswith("h:") for v in session)


def test_hmac_mode_needs_a_key() -> None:
    result = CliRunner().invoke(cli, ["sites", "list"], env={"CALLTRAIL_PII_MODE": "hmac"})
    assert result.exit_code == 1
    assert "CALLTRAIL_PII_KEY" in result.output


def test_quality_counts_open_sessions_past_their_timeout(
    engine: Engine, settings: Settings, site: Site
) -> None:
    ingest(settings, [[hash_row(site.id, "p", 1, T0, f"#?mobile=9&status=100&type=phone&{AGENT}")]])
    with engine.connect() as conn:
        before = quality_summary(conn, site_id=site.id, now_ms=T0 + 60_000, timeouts=TIMEOUTS)
        after = quality_summary(conn, site_id=site.id, now_ms=T0 + 3_600_000, timeouts=TIMEOUTS)
    assert (before.closed_by_timeout, after.closed_by_timeout) == (0, 1)
