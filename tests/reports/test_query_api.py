"""The read API on both databases: auth, lists and cursors, reports checked against a plain reference."""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from sqlalchemy import Engine, func, select

from service.admin.registry import Site, create_key, revoke_key
from service.config import Settings
from service.domain.histograms import BIN_BOUNDS, bin_of
from service.storage.schema import rollup_marks
from tests.center import center_history
from tests.conftest import running_app
from tests.projection_helpers import T0, TIMEOUTS, hash_row, ingest, message_row

pytestmark = pytest.mark.anyio
DAY = 86_400_000
AGENT = "agentEmail=ann%40x.com&agentNickName=Ann&sdkAppId=1400"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def ms(value: str | None) -> int:
    if value is None:
        return 0
    return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture
async def reader(settings: Settings, engine: Engine, site: Site) -> AsyncIterator[httpx.AsyncClient]:
    key = create_key(engine, "read", "tests").plaintext
    async with running_app(settings) as client:
        client.headers["authorization"] = f"Bearer {key}"
        yield client


@pytest.fixture
def center(settings: Settings, site: Site) -> None:
    ingest(settings, [center_history(site.id, seed=7, start_ms=T0)])


async def all_sessions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/sessions", params={"format": "ndjson"})
    assert response.status_code == 200
    return [orjson.loads(line) for line in response.text.splitlines()]


async def all_actions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params={"format": "ndjson"})
    assert response.status_code == 200
    return [orjson.loads(line) for line in response.text.splitlines()]


# Auth


async def test_every_read_endpoint_needs_a_key(settings: Settings, engine: Engine, site: Site) -> None:
    created = create_key(engine, "read")
    async with running_app(settings) as client:
        for path in ["/v1/sessions", "/v1/sessions/x", "/v1/analytics/inbound", "/v1/analytics/agents",
                     "/v1/analytics/cards", "/v1/analytics/outbound", "/v1/audit", "/v1/live", "/v1/quality"]:  # fmt: skip
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
            wrong = await client.get(path, headers={"authorization": "Bearer ctk_nope_nope"})
            assert wrong.status_code == 401, path
        ok = await client.get("/v1/live", headers={"authorization": f"Bearer {created.plaintext}"})
        assert ok.status_code == 200
        revoke_key(engine, created.key.key_id)
        revoked = await client.get("/v1/live", headers={"authorization": f"Bearer {created.plaintext}"})
        assert revoked.status_code == 401


# Sessions


async def test_session_pages_cover_every_session_once_newest_first(
    reader: httpx.AsyncClient, center: None
) -> None:
    everything = await all_sessions(reader)
    assert len(everything) > 40
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = (await reader.get("/v1/sessions", params=params)).json()
        assert len(page["sessions"]) <= 7
        seen += page["sessions"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s["id"] for s in seen] == [s["id"] for s in everything]
    assert len({s["id"] for s in seen}) == len(seen)
    starts = [ms(s["offered_at"]) for s in seen if s["observed_from"] == 100]
    assert starts == sorted(starts, reverse=True)


async def test_session_filters(reader: httpx.AsyncClient, center: None) -> None:
    everything = await all_sessions(reader)
    cases: list[tuple[dict[str, str], Callable[[dict[str, Any]], bool]]] = [
        ({"agent": "agent1@x.com"}, lambda s: s["agent_email"] == "agent1@x.com"),
        ({"channel": "im"}, lambda s: s["channel"] == "im"),
        ({"outcome": "not_answered"}, lambda s: s["outcome"] == "not_answered"),
        ({"outcome": "answered"}, lambda s: s["outcome"] == "answered"),
        ({"outcome": "unknown"}, lambda s: s["outcome"] == "unknown"),
        ({"customer": "13800000007"}, lambda s: s["customer_mobile"] == "13800000007"),
    ]
    for params, keep in cases:
        response = await reader.get("/v1/sessions", params={**params, "limit": 500})
        assert response.status_code == 200
        expected = [s["id"] for s in everything if keep(s)]
        assert expected, params
        assert [s["id"] for s in response.json()["sessions"]] == expected, params


async def test_session_time_window_and_csv(reader: httpx.AsyncClient, center: None) -> None:
    everything = await all_sessions(reader)

    def first_heard(s: dict[str, Any]) -> int:
        return ms(s["offered_at"] or s["connected_at"] or s["ended_at"]) or 0

    heard = sorted({first_heard(s) for s in everything})
    lo, hi = heard[5], heard[20]
    response = await reader.get("/v1/sessions", params={"from": iso(lo), "to": iso(hi), "format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == [s["id"] for s in everything if lo <= first_heard(s) < hi]
    assert len(rows) >= 15


async def test_session_detail_has_an_ordered_timeline(
    settings: Settings, site: Site, reader: httpx.AsyncClient
) -> None:
    page = "22222222-2222-4222-8222-222222222222"
    ingest(settings, [[
        hash_row(site.id, page, 1, T0, f"#?mobile=1888&status=100&type=im&{AGENT}"),
        hash_row(site.id, page, 2, T0 + 3_000, f"#?mobile=1888&status=200&type=im&{AGENT}"),
        message_row(site.id, page, 3, T0 + 5_000, "sendCard", {"header": "H", "url": "u"}),
        hash_row(site.id, page, 4, T0 + 9_000, f"#?mobile=1888&status=400&type=im&{AGENT}"),
    ]])  # fmt: skip
    (session,) = (await reader.get("/v1/sessions")).json()["sessions"]
    detail = (await reader.get(f"/v1/sessions/{session['id']}")).json()
    assert detail["outcome"] == "answered"
    assert [(item["kind"], item.get("status"), item.get("action")) for item in detail["timeline"]] == [
        ("event", 100, None), ("event", 200, None), ("action", None, "send_card"), ("event", 400, None),
    ]  # fmt: skip
    assert detail["timeline"][0]["raw"]["hash"].startswith("#?mobile=1888&status=100")
    missing = await reader.get("/v1/sessions/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/v1/sessions", {"from": "2026-02-01", "to": "2026-01-01"}, {"from"}),
        (
            "/v1/sessions",
            {"limit": "0", "cursor": "not-a-cursor", "outcome": "maybe"},
            {"limit", "cursor", "outcome"},
        ),
        ("/v1/sessions", {"from": "yesterday", "channel": "fax"}, {"from", "channel"}),
        ("/v1/analytics/inbound", {"tz": "Mars/Olympus"}, {"tz"}),
        ("/v1/analytics/inbound", {"tz": "../../etc/passwd"}, {"tz"}),
        ("/v1/analytics/inbound", {"from": "2020-01-01", "to": "2026-01-01"}, {"to"}),
        (
            "/v1/analytics/inbound",
            {"from": "2026-01-01", "to": "2026-06-01", "interval": "15m"},
            {"interval"},
        ),
        (
            "/v1/analytics/inbound",
            {"service_level_s": "601", "interval": "year"},
            {"service_level_s", "interval"},
        ),
        ("/v1/audit", {"cursor": "WzEsMl0", "limit": "501"}, {"cursor", "limit"}),
        ("/v1/analytics/agents", {"site": "nope"}, {"site"}),
        ("/v1/sessions", {"limit": ["1", "2"]}, {"limit"}),
    ],
)
async def test_bad_parameters_are_named_in_one_400(
    reader: httpx.AsyncClient, path: str, params: dict[str, Any], named: set[str]
) -> None:
    response = await reader.get(path, params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert {d["field"] for d in error["details"]} == named


# Inbound


def reference_inbound(
    sessions: list[dict[str, Any]], lo: int, hi: int, sl: int, short: int, **match: str
) -> dict[str, Any]:
    """Straight from the definitions in docs/metrics.md, over session records."""
    chosen = [
        s for s in sessions
        if s["observed_from"] == 100 and lo <= (ms(s["offered_at"]) or 0) < hi
        and all(s[k] == v for k, v in match.items())
    ]  # fmt: skip
    answered = [s for s in chosen if s["connected_at"] is not None]
    not_answered = [s for s in chosen if s["outcome"] == "not_answered"]
    shorts = [
        s for s in not_answered if ((ms(s["ended_at"]) or 0) - (ms(s["offered_at"]) or 0)) / 1000 <= short
    ]
    rings = [s["ring_s"] for s in answered]
    talks = [s["talk_s"] for s in answered if s["talk_s"] is not None]

    def pct(values: list[float], p: float) -> float | None:
        if not values:
            return None
        binned = sorted(float(BIN_BOUNDS[bin_of(v)]) for v in values)
        return round(min(binned[max(1, math.ceil(p * len(binned))) - 1], max(values)), 3)

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 6) if b else None

    return {
        "offered": len(chosen),
        "answered": len(answered),
        "not_answered": len(not_answered),
        "unresolved": len(chosen) - len(answered) - len(not_answered),
        "answer_rate": ratio(len(answered), len(chosen)),
        "short_abandons": len(shorts),
        "not_answered_rate_excl_short": ratio(len(not_answered) - len(shorts), len(chosen) - len(shorts)),
        "ring_s": {
            "mean": round(sum(rings) / len(rings), 3) if rings else None,
            "p50": pct(rings, 0.5),
            "p90": pct(rings, 0.9),
            "max": round(max(rings), 3) if rings else None,
        },
        "talk_s": {"mean": round(sum(talks) / len(talks), 3) if talks else None, "p90": pct(talks, 0.9)},
        "service_level": ratio(sum(1 for r in rings if r <= sl), len(chosen) - len(shorts)),
    }


def approx(figures: dict[str, Any]) -> dict[str, Any]:
    """Means are sums of floats in a different order: equal to 1e-6."""
    copied = orjson.loads(orjson.dumps(figures))
    for group in ("ring_s", "talk_s"):
        if copied[group]["mean"] is not None:
            copied[group]["mean"] = pytest.approx(copied[group]["mean"], abs=1e-3)
    return copied  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("lo_offset", "hi_offset", "interval", "tz"),
    [
        (0, 4 * DAY, "day", "Asia/Shanghai"),  # whole days: rollups only
        (-7 * 60_000, 3 * DAY + 123_457, "hour", "UTC"),  # ragged edges: rollups and raw slivers
        (DAY + 3_600_000 + 5_000, DAY + 9 * 3_600_000, "15m", "Asia/Kolkata"),  # a +05:30 zone
        (0, 2 * DAY, "week", "America/New_York"),
    ],
)
async def test_inbound_matches_the_definitions(
    reader: httpx.AsyncClient, center: None, lo_offset: int, hi_offset: int, interval: str, tz: str
) -> None:
    sessions = await all_sessions(reader)
    lo, hi = T0 - T0 % DAY + lo_offset, T0 - T0 % DAY + hi_offset
    for thresholds in [(20, 5), (3, 12)]:
        params: dict[str, Any] = {"from": iso(lo), "to": iso(hi), "interval": interval, "tz": tz,
                  "service_level_s": thresholds[0], "short_abandon_s": thresholds[1]}  # fmt: skip
        report = (await reader.get("/v1/analytics/inbound", params=params)).json()
        assert report["tz"] == tz and report["interval"] == interval
        assert report["totals"] == approx(reference_inbound(sessions, lo, hi, *thresholds))
        # Every bucket is the reference over its own slice; the slices tile the range.
        labels = [datetime.fromisoformat(b["start"]) for b in report["buckets"]]
        edges = [lo, *(round(t.timestamp() * 1000) for t in labels[1:]), hi]
        assert all(a < b for a, b in itertools.pairwise(edges))
        for bucket, a, b in zip(report["buckets"], edges, edges[1:], strict=False):
            start = bucket.pop("start")
            assert (
                datetime.fromisoformat(start).utcoffset()
                == datetime.fromisoformat(start).astimezone(ZoneInfo(tz)).utcoffset()
            )
            assert bucket == approx(reference_inbound(sessions, a, b, *thresholds)), start
    assert sum(b["offered"] for b in report["buckets"]) == report["totals"]["offered"] > 0


async def test_inbound_by_channel_and_agent(reader: httpx.AsyncClient, center: None) -> None:
    sessions = await all_sessions(reader)
    lo, hi = T0 - DAY, T0 + 5 * DAY
    for params, match in [
        ({"channel": "phone"}, {"channel": "phone"}),
        ({"agent": "agent2@x.com"}, {"agent_email": "agent2@x.com"}),
    ]:
        report = (
            await reader.get("/v1/analytics/inbound", params={"from": iso(lo), "to": iso(hi), **params})
        ).json()
        assert report["totals"] == approx(reference_inbound(sessions, lo, hi, 20, 5, **match))
        assert report["totals"]["offered"] > 0


async def test_rollups_follow_late_events(
    settings: Settings, engine: Engine, site: Site, reader: httpx.AsyncClient
) -> None:
    page = "33333333-3333-4333-8333-333333333333"
    ingest(settings, [[hash_row(site.id, page, 1, T0, f"#?mobile=1888&status=100&type=phone&{AGENT}")]])
    params = {"from": iso(T0 - T0 % DAY), "to": iso(T0 - T0 % DAY + DAY), "interval": "day"}
    before = (await reader.get("/v1/analytics/inbound", params=params)).json()["totals"]
    assert (before["offered"], before["answered"], before["unresolved"]) == (1, 0, 1)
    with engine.connect() as conn:
        dirty = conn.execute(
            select(func.count()).where(
                rollup_marks.c.span == "hour", rollup_marks.c.gen > rollup_marks.c.built_gen
            )
        ).scalar()
    assert dirty == 0  # the report built what it read
    # The answer and the end arrive later; the report built before must not be served stale.
    ingest(settings, [[
        hash_row(site.id, page, 3, T0 + 50_000, f"#?mobile=1888&status=400&type=phone&{AGENT}"),
        hash_row(site.id, page, 2, T0 + 7_500, f"#?mobile=1888&status=200&type=phone&{AGENT}"),
    ]])  # fmt: skip
    after = (await reader.get("/v1/analytics/inbound", params=params)).json()["totals"]
    assert (after["offered"], after["answered"], after["ring_s"]["max"], after["talk_s"]["mean"]) == (
        1,
        1,
        7.5,
        42.5,
    )
    agents = (await reader.get("/v1/analytics/agents", params=params)).json()["agents"]
    assert [(a["agent_email"], a["answered"], a["talk_s_total"]) for a in agents] == [("ann@x.com", 1, 42.5)]


async def test_buckets_are_local_days_across_dst(reader: httpx.AsyncClient) -> None:
    # New York fell back on 2026-11-01: that day has 25 hours; empty buckets are listed too.
    params = {
        "from": "2026-10-31T04:00:00Z",
        "to": "2026-11-03T05:00:00Z",
        "interval": "day",
        "tz": "America/New_York",
    }
    report = (await reader.get("/v1/analytics/inbound", params=params)).json()
    assert [b["start"] for b in report["buckets"]] == [
        "2026-10-31T00:00:00-04:00", "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00",
    ]  # fmt: skip
    assert all(b["offered"] == 0 and b["answer_rate"] is None for b in report["buckets"])
    hourly = (await reader.get("/v1/analytics/inbound", params={**params, "interval": "hour",
              "from": "2026-11-01T04:00:00Z", "to": "2026-11-01T08:00:00Z"})).json()  # fmt: skip
    assert [b["start"] for b in hourly["buckets"]] == [
        "2026-11-01T00:00:00-04:00", "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]  # fmt: skip


# Agents, cards, outbound, audit


async def test_agents_match_the_definitions(reader: httpx.AsyncClient, center: None) -> None:
    sessions = await all_sessions(reader)
    actions = await all_actions(reader)
    for lo, hi in [(T0 - T0 % DAY, T0 - T0 % DAY + 3 * DAY), (T0 + 3_600_000, T0 + 2 * DAY + 60_000)]:
        expected: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "offered": 0,
                "answered": 0,
                "not_answered": 0,
                "talk": [],
                "cards_sent": 0,
                "call_outs": 0,
            }
        )
        for s in sessions:
            if s["observed_from"] == 100 and lo <= (ms(s["offered_at"]) or 0) < hi:
                row = expected[s["agent_email"]]
                row["offered"] += 1
                row["answered"] += s["connected_at"] is not None
                row["not_answered"] += s["outcome"] == "not_answered"
                if s["connected_at"] is not None and s["talk_s"] is not None:
                    row["talk"].append(s["talk_s"])
        for a in actions:
            if lo <= (ms(a["at"]) or 0) < hi:
                name = {"send_card": "cards_sent", "call_out": "call_outs"}[a["action"]]
                expected[a["agent_email"]][name] += 1
        report = (await reader.get("/v1/analytics/agents", params={"from": iso(lo), "to": iso(hi)})).json()[
            "agents"
        ]
        got = {r["agent_email"]: r for r in report}
        assert set(got) == set(expected)
        for agent, row in expected.items():
            assert (got[agent]["offered"], got[agent]["answered"], got[agent]["not_answered"]) == (
                row["offered"],
                row["answered"],
                row["not_answered"],
            )
            assert got[agent]["talk_s_total"] == pytest.approx(sum(row["talk"]), abs=1e-3)
            assert (got[agent]["cards_sent"], got[agent]["call_outs"]) == (
                row["cards_sent"],
                row["call_outs"],
            )
            assert got[agent]["agent_nickname"] == "Agent" + agent[5]


async def test_peak_concurrent_chats(settings: Settings, site: Site, reader: httpx.AsyncClient) -> None:
    page = "44444444-4444-4444-8444-444444444444"
    chat = "type=im&" + AGENT
    ingest(settings, [[
        hash_row(site.id, page, 1, T0, f"#?mobile=1&status=100&{chat}"),
        hash_row(site.id, page, 2, T0 + 1_000, f"#?mobile=1&status=200&{chat}"),
        hash_row(site.id, page, 3, T0 + 2_000, f"#?mobile=2&status=100&{chat}"),
        hash_row(site.id, page, 4, T0 + 3_000, f"#?mobile=2&status=200&{chat}"),
        hash_row(site.id, page, 5, T0 + 4_000, f"#?mobile=3&status=100&{chat}"),  # rings only: not held
        hash_row(site.id, page, 6, T0 + 5_000, f"#?mobile=1&status=400&{chat}"),
        hash_row(site.id, page, 7, T0 + 6_000, f"#?mobile=4&status=100&{chat}"),
        hash_row(site.id, page, 8, T0 + 7_000, f"#?mobile=4&status=200&{chat}"),
        hash_row(site.id, page, 9, T0 + 8_000, f"#?mobile=2&status=400&{chat}"),
        hash_row(site.id, page, 10, T0 + 9_000, f"#?mobile=4&status=400&{chat}"),
    ]])  # fmt: skip
    day = T0 - T0 % DAY
    for lo, hi, peak in [(day, day + DAY, 2), (T0 + 5_500, T0 + 6_500, 1), (T0 + 7_000, T0 + 7_001, 2)]:
        (row,) = (await reader.get("/v1/analytics/agents", params={"from": iso(lo), "to": iso(hi)})).json()[
            "agents"
        ]
        assert row["peak_concurrent_chats"] == peak, (lo - T0, hi - T0)
    phone_only = (
        await reader.get(
            "/v1/analytics/agents", params={"from": iso(day), "to": iso(day + DAY), "channel": "phone"}
        )
    ).json()
    assert phone_only["agents"] == []


async def test_cards_and_outbound(settings: Settings, site: Site, reader: httpx.AsyncClient) -> None:
    page = "55555555-5555-4555-8555-555555555555"
    chat = "type=im&" + AGENT
    ingest(settings, [[
        message_row(site.id, page, 1, T0 - 60_000, "sendCard", {"header": "Orphan", "url": "o"}),
        hash_row(site.id, page, 2, T0, f"#?mobile=1&status=100&{chat}"),
        hash_row(site.id, page, 3, T0 + 1_000, f"#?mobile=1&status=200&{chat}"),
        message_row(site.id, page, 4, T0 + 11_000, "sendCard", {"header": "Offer", "url": "u"}),
        message_row(site.id, page, 5, T0 + 12_000, "sendCard", {"header": "Offer", "url": "u"}),
        message_row(site.id, page, 6, T0 + 13_000, "callOut", {"phoneNumber": "1399", "desc": "x"}),
        hash_row(site.id, page, 7, T0 + 20_000, f"#?mobile=1&status=400&{chat}"),
        hash_row(site.id, page, 8, T0 + 30_000, f"#?mobile=2&status=100&{chat}"),
        hash_row(site.id, page, 9, T0 + 33_000, f"#?mobile=2&status=200&{chat}"),
        hash_row(site.id, page, 10, T0 + 40_000, f"#?mobile=2&status=400&{chat}"),
        message_row(site.id, page, 11, T0 + 50_000, "callOut", {"phoneNumber": "1400"}),
        hash_row(site.id, page, 12, T0 + 55_000, "#?mobile=1400&status=100&type=phone&" + AGENT),
    ]])  # fmt: skip
    window = {"from": iso(T0 - DAY), "to": iso(T0 + DAY)}
    cards = (await reader.get("/v1/analytics/cards", params=window)).json()
    assert (cards["cards_sent"], cards["orphans"], cards["answered_chat_sessions"]) == (3, 1, 2)
    assert (cards["attach_rate"], cards["cards_per_session"], cards["median_s_to_first_card"]) == (
        0.5,
        1.0,
        10.0,
    )
    assert cards["by_card"] == [
        {"header": "Offer", "url": "u", "count": 2},
        {"header": "Orphan", "url": "o", "count": 1},
    ]
    assert cards["by_agent"] == [
        {"agent_email": "ann@x.com", "cards_sent": 2},
        {"agent_email": None, "cards_sent": 1},
    ]
    outbound = (await reader.get("/v1/analytics/outbound", params=window)).json()
    assert (outbound["call_outs"], outbound["followed_by_session"], outbound["follow_rate"]) == (2, 1, 0.5)
    audit = (await reader.get("/v1/audit", params={**window, "action": "call_out"})).json()["actions"]
    assert [a["details"]["phone_number"] for a in audit] == ["1399", "1400"]


async def test_audit_pages_in_time_order(reader: httpx.AsyncClient, center: None) -> None:
    everything = await all_actions(reader)
    assert len(everything) > 10
    times = [ms(a["at"]) for a in everything]
    assert times == sorted(times)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await reader.get("/v1/audit", params=params)).json()
        seen += [a["id"] for a in page["actions"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [a["id"] for a in everything]
    agent_only = (await reader.get("/v1/audit", params={"agent": "agent0@x.com", "limit": 500})).json()[
        "actions"
    ]
    assert [a["id"] for a in agent_only] == [
        a["id"] for a in everything if a["agent_email"] == "agent0@x.com"
    ]


async def test_live_and_quality(settings: Settings, site: Site, reader: httpx.AsyncClient) -> None:
    import time

    now = time.time_ns() // 1_000_000
    page = "66666666-6666-4666-8666-666666666666"
    ingest(settings, [[
        hash_row(site.id, page, 1, now - 30_000, f"#?mobile=1&status=100&type=im&{AGENT}"),
        hash_row(site.id, page, 2, now - 20_000, f"#?mobile=1&status=200&type=im&{AGENT}"),
        hash_row(site.id, page, 3, now - 12_000, f"#?mobile=2&status=100&type=im&{AGENT}"),
        hash_row(site.id, page, 5, now - 9_000, f"#?mobile=3&status=100&type=im&{AGENT}"),
        hash_row(site.id, page, 6, now - 2 * 3_600_000, f"#?mobile=4&status=100&type=im&{AGENT}"),  # rang out long ago
    ]])  # fmt: skip
    live = (await reader.get("/v1/live")).json()
    assert (live["ringing_now"], live["connected_now"], live["agents_on_contact"]) == (2, 1, 1)
    assert 12 <= live["longest_ring_s"] < 60
    assert [s["customer_mobile"] for s in live["ringing"]] == ["2", "3"]
    quality = (
        await reader.get("/v1/quality", params={"from": iso(now - DAY), "to": iso(now + 60_000)})
    ).json()
    assert (quality["events"], quality["missing_events"], quality["pages_with_gaps"]) == (5, 1, 1)
    assert quality["pages_with_problems"] == [
        {"page_id": page, "events": 5, "last_seq": 6, "missing": 1, "repeated_seqs": 0}
    ]
    assert quality["closed_by_timeout"] == 1 and quality["sessions"] == 4


async def test_rollups_command_builds_what_reports_would(
    db_url: str, engine: Engine, center: None, reader: httpx.AsyncClient
) -> None:
    from click.testing import CliRunner

    from service.cli import cli

    def dirty() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(rollup_marks.c.gen > rollup_marks.c.built_gen)
                ).scalar_one()
            )

    assert dirty() > 0
    result = CliRunner().invoke(
        cli, ["rollups"], env={"CALLTRAIL_DATABASE_URL": db_url}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("rebuilt ")
    assert dirty() == 0
    sessions = await all_sessions(reader)
    lo, hi = T0 - T0 % DAY, T0 - T0 % DAY + 4 * DAY
    report = (
        await reader.get("/v1/analytics/inbound", params={"from": iso(lo), "to": iso(hi), "interval": "day"})
    ).json()
    assert report["totals"] == approx(reference_inbound(sessions, lo, hi, 20, 5))


# Regressions from the review of the query API


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/v1/sessions", [True, "x"]),
        ("/v1/audit", [True, True, "x"]),
        ("/v1/audit", [1, 2**40, "x"]),
        ("/v1/sessions", [2**63, "x"]),
        ("/v1/sessions", [1, "\x00"]),
    ],
)
async def test_forged_cursors_are_a_400(reader: httpx.AsyncClient, path: str, cursor: list[Any]) -> None:
    from service.reports.params import encode_cursor

    response = await reader.get(path, params={"cursor": encode_cursor(cursor)})
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["error"]["details"]] == ["cursor"]


def test_a_report_of_ten_thousand_buckets_stays_small(engine: Engine) -> None:
    import tracemalloc

    from service.domain.buckets import buckets
    from service.domain.formulas import Thresholds
    from service.reports.filters import ReportFilter
    from service.reports.inbound import inbound

    start = T0 - T0 % DAY
    end = start + 104 * DAY
    report_buckets = buckets(start, end, "15m", ZoneInfo("UTC"))
    assert len(report_buckets) == 9984
    tracemalloc.start()
    try:
        per_bucket, _ = inbound(engine, ReportFilter(start, end), report_buckets, Thresholds(20, 5))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(per_bucket) == 9984
    assert peak < 40 * 2**20  # dense bucket x bin histograms took about 290 MB here


async def test_outbound_matches_numbers_on_the_same_site_only(
    settings: Settings, engine: Engine, site: Site, reader: httpx.AsyncClient
) -> None:
    from service.admin.registry import add_site

    other = add_site(engine, "other", ["https://other.example.com"])
    page, other_page = "77777777-7777-4777-8777-777777777777", "88888888-8888-4888-8888-888888888888"
    ingest(settings, [[
        message_row(site.id, page, 1, T0, "callOut", {"phoneNumber": 13900001111}),  # posted as a JSON number
        message_row(site.id, page, 2, T0 + 1_000, "callOut", {"phoneNumber": "13900002222"}),
        hash_row(site.id, page, 3, T0 + 60_000, f"#?mobile=13900001111&status=100&type=phone&{AGENT}"),
        hash_row(other.id, other_page, 1, T0 + 60_000, f"#?mobile=13900002222&status=100&type=phone&{AGENT}"),
    ]])  # fmt: skip
    report = (
        await reader.get("/v1/analytics/outbound", params={"from": iso(T0 - DAY), "to": iso(T0 + DAY)})
    ).json()
    assert (report["call_outs"], report["followed_by_session"]) == (2, 1)


async def test_agents_seen_only_mid_call_have_no_row_and_peaks_agree_however_cut(
    settings: Settings, engine: Engine, site: Site, reader: httpx.AsyncClient
) -> None:
    from service.admin.registry import add_site

    other = add_site(engine, "other", ["https://other.example.com"])
    hour = T0 - T0 % 3_600_000
    chat = "type=im&" + AGENT
    ingest(settings, [[
        hash_row(site.id, "a1111111-1111-4111-8111-111111111111", 1, hour + 600_000, f"#?mobile=1&status=100&{chat}"),
        hash_row(site.id, "a1111111-1111-4111-8111-111111111111", 2, hour + 601_000, f"#?mobile=1&status=200&{chat}"),
        hash_row(site.id, "a1111111-1111-4111-8111-111111111111", 3, hour + 2_400_000, f"#?mobile=1&status=400&{chat}"),
        hash_row(other.id, "b2222222-2222-4222-8222-222222222222", 1, hour + 1_200_000, f"#?mobile=2&status=100&{chat}"),
        hash_row(other.id, "b2222222-2222-4222-8222-222222222222", 2, hour + 1_201_000, f"#?mobile=2&status=200&{chat}"),
        hash_row(other.id, "b2222222-2222-4222-8222-222222222222", 3, hour + 3_000_000, f"#?mobile=2&status=400&{chat}"),
        hash_row(site.id, "c3333333-3333-4333-8333-333333333333", 1, hour + 900_000, "#?mobile=3&status=200&type=phone&agentEmail=bob%40x.com"),
    ]])  # fmt: skip
    seen = set()
    for lo, hi in [
        (hour, hour + 3_600_000),
        (hour + 1, hour + 3_600_000),
        (hour - 86_400_000, hour + 86_400_000),
    ]:
        rows = (await reader.get("/v1/analytics/agents", params={"from": iso(lo), "to": iso(hi)})).json()[
            "agents"
        ]
        assert [r["agent_email"] for r in rows] == ["ann@x.com"]  # bob was only seen mid-call
        seen.add((rows[0]["offered"], rows[0]["peak_concurrent_chats"]))
    assert seen == {(2, 1)}  # the peak of each site's chats: one at a time on each


async def test_rebuild_leaves_reports_right(
    settings: Settings, engine: Engine, center: None, reader: httpx.AsyncClient
) -> None:
    from service.projection.rebuild import rebuild

    lo, hi = T0 - T0 % DAY, T0 - T0 % DAY + 4 * DAY
    params = {"from": iso(lo), "to": iso(hi), "interval": "day"}
    before = (await reader.get("/v1/analytics/inbound", params=params)).json()
    agents_before = (await reader.get("/v1/analytics/agents", params=params)).json()
    rebuild(engine, TIMEOUTS)
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).where(rollup_marks.c.gen > rollup_marks.c.built_gen)
            ).scalar_one()
            > 0
        )
    assert (await reader.get("/v1/analytics/inbound", params=params)).json() == before
    assert (await reader.get("/v1/analytics/agents", params=params)).json() == agents_before
