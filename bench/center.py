"""Generate a large contact center's derived data (sessions and actions) for the query benchmark.

Writes sessions and agent actions straight into a migrated database, the rows the projection would have
written for such a center: ingesting the raw events through POST /v1/events would take hours at the
measured ingestion rates, and the query API reads only these tables (and raw events for one session's
timeline, which this generator does not write). Every rollup span is marked dirty, as the migration marks
pre-existing sessions, so the first report builds its rollups (the benchmark reports that cold call too).

Shape (defaults): 300 agents over 30 days, about a million sessions. Agents work 10-hour shifts in their
time zone (Asia/Shanghai); calls arrive through the day with a midday peak; phone 50 %, im 30 %, om 10 %,
oim 10 %; 85 % answered, 12 % not answered (of which a third abandon within 5 s), 3 % joined mid-call; ring
times log-normal around 8 s, talk times around 4 minutes; 40 % of answered chats get 1 to 3 cards; 8 % of
answered sessions lead to a callOut.

    .venv/bin/python bench/center.py --url sqlite:////tmp/center.db
    .venv/bin/python bench/center.py --url postgresql://root@127.0.0.1:5432/calltrail_bench_center
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.domain.instants import parse_iso
from service.projection import rollups
from service.storage.engine import normalize_url
from service.storage.migrations import upgrade

HOUR = 3_600_000
DAY = 24 * HOUR
SESSION_COLUMNS = (
    "id", "stream", "site_id", "channel", "sdk_app_id", "agent_email", "agent_mobile", "agent_nickname",
    "agent_role_id", "customer_mobile", "customer_user_id", "customer_nickname", "customer_avatar",
    "offered_at", "connected_at", "ended_at", "ring_s", "talk_s", "outcome", "end_source", "observed_from",
    "cards_sent", "call_outs", "event_count", "duplicate_count", "started_at", "last_event_at",
)  # fmt: skip
ACTION_COLUMNS = ("site_id", "id", "at", "agent_email", "action", "session_id", "page_id", "details")


def generate(
    agents: int, days: int, sessions_target: int, end_ms: int, seed: int
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    rng = random.Random(seed)
    start_ms = end_ms - days * DAY
    per_agent_day = sessions_target / (agents * days)
    for a in range(agents):
        email = f"agent{a:03d}@center.example"
        nickname = f"Agent {a:03d}"
        page = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for day in range(days):
            # A 10-hour shift from 09:00 Asia/Shanghai (01:00 UTC), staggered by an hour or two.
            shift_start = start_ms + day * DAY + HOUR + rng.randrange(0, 2) * HOUR
            count = max(0, round(rng.gauss(per_agent_day, per_agent_day * 0.1)))
            voice_free_at = shift_start
            for _ in range(count):
                offset = min(max(rng.gauss(0.5, 0.22), 0.0), 0.999) * 10 * HOUR  # midday peak
                offered = int(shift_start + offset)
                channel = rng.choices(["phone", "im", "om", "oim"], [50, 30, 10, 10])[0]
                if channel in ("phone", "om"):
                    offered = max(offered, voice_free_at)
                fate = rng.random()
                ring_ms = int(min(rng.lognormvariate(math.log(8_000), 0.8), 120_000))
                talk_ms = int(min(rng.lognormvariate(math.log(240_000), 0.9), 3 * HOUR))
                customer = f"138{rng.randrange(10**8):08d}"
                session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                row: dict[str, Any] = {
                    "id": session_id, "stream": f"{a}:{channel}", "site_id": 1, "channel": channel,
                    "sdk_app_id": "1400000001", "agent_email": email, "agent_mobile": None,
                    "agent_nickname": nickname, "agent_role_id": "general", "customer_mobile": customer,
                    "customer_user_id": None, "customer_nickname": None, "customer_avatar": None,
                    "duplicate_count": 0, "cards_sent": 0, "call_outs": 0,
                }  # fmt: skip
                actions: list[dict[str, Any]] = []
                if fate < 0.03:  # joined mid-call
                    connected, ended = offered, offered + talk_ms
                    row.update(offered_at=None, connected_at=connected, ended_at=ended, ring_s=None,
                               talk_s=talk_ms / 1000, outcome="answered", end_source="explicit",
                               observed_from=200, event_count=2, started_at=connected, last_event_at=ended)  # fmt: skip
                elif fate < 0.15:  # not answered
                    abandon = (
                        rng.randrange(500, 5_000) if rng.random() < 0.33 else rng.randrange(5_000, 60_000)
                    )
                    ended = offered + abandon
                    row.update(offered_at=offered, connected_at=None, ended_at=ended, ring_s=None, talk_s=None,
                               outcome="not_answered", end_source="explicit", observed_from=100, event_count=2,
                               started_at=offered, last_event_at=ended)  # fmt: skip
                else:
                    connected, ended = offered + ring_ms, offered + ring_ms + talk_ms
                    row.update(offered_at=offered, connected_at=connected, ended_at=ended, ring_s=ring_ms / 1000,
                               talk_s=talk_ms / 1000, outcome="answered", end_source="explicit",
                               observed_from=100, event_count=3, started_at=offered, last_event_at=ended)  # fmt: skip
                    if channel in ("im", "oim") and rng.random() < 0.4:
                        for _ in range(rng.randrange(1, 4)):
                            header = rng.choice(["Spring offer", "Refund form", "Survey", "Order status"])
                            actions.append(_action(rng, page, email, session_id, connected + rng.randrange(talk_ms),
                                                   "send_card", {"header": header, "desc": "", "pic": "", "url": f"https://crm.example.com/{header}"}))  # fmt: skip
                    if rng.random() < 0.08:
                        actions.append(_action(rng, page, email, session_id, connected + rng.randrange(talk_ms),
                                               "call_out", {"phone_number": f"138{rng.randrange(10**8):08d}", "label": None}))  # fmt: skip
                row["cards_sent"] = sum(1 for x in actions if x["action"] == "send_card")
                row["call_outs"] = sum(1 for x in actions if x["action"] == "call_out")
                if channel in ("phone", "om"):
                    voice_free_at = row["last_event_at"] + rng.randrange(5_000, 60_000)
                yield row, actions


def _action(
    rng: random.Random, page: str, email: str, session: str, at: int, name: str, details: dict[str, Any]
) -> dict[str, Any]:
    return {
        "site_id": 1, "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "at": at, "agent_email": email,
        "action": name, "session_id": session, "page_id": page, "details": orjson.dumps(details).decode(),
    }  # fmt: skip


def load(url: str, agents: int, days: int, sessions: int, end_ms: int, seed: int) -> tuple[int, int]:
    url = normalize_url(url)
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (id, name, site_key, created_at) VALUES (1, 'center', 'cts_bench_center', :now)"),
                     {"now": time.time_ns() // 1_000_000})  # fmt: skip
        conn.execute(text("INSERT INTO site_origins (site_id, origin) VALUES (1, 'https://crm.example.com')"))
    session_count = action_count = 0
    if make_url(url).get_backend_name() == "sqlite":
        db = sqlite3.connect(make_url(url).database or "")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        s_sql = f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({', '.join('?' * len(SESSION_COLUMNS))})"
        a_sql = f"INSERT INTO actions ({', '.join(ACTION_COLUMNS)}) VALUES ({', '.join('?' * len(ACTION_COLUMNS))})"
        batch_s: list[tuple[Any, ...]] = []
        batch_a: list[tuple[Any, ...]] = []
        for row, actions in generate(agents, days, sessions, end_ms, seed):
            batch_s.append(tuple(row[c] for c in SESSION_COLUMNS))
            batch_a.extend(tuple(x[c] for c in ACTION_COLUMNS) for x in actions)
            if len(batch_s) >= 50_000:
                db.executemany(s_sql, batch_s)
                db.executemany(a_sql, batch_a)
                db.commit()
                session_count += len(batch_s)
                action_count += len(batch_a)
                batch_s, batch_a = [], []
        db.executemany(s_sql, batch_s)
        db.executemany(a_sql, batch_a)
        session_count += len(batch_s)
        action_count += len(batch_a)
        db.commit()
        db.close()
    else:
        import psycopg

        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo) as pg, pg.cursor() as cur:
            with cur.copy(f"COPY sessions ({', '.join(SESSION_COLUMNS)}) FROM STDIN") as s_copy:
                actions_buffer: list[dict[str, Any]] = []
                for row, actions in generate(agents, days, sessions, end_ms, seed):
                    s_copy.write_row([row[c] for c in SESSION_COLUMNS])
                    actions_buffer.extend(actions)
                    session_count += 1
            with cur.copy(f"COPY actions ({', '.join(ACTION_COLUMNS)}) FROM STDIN") as a_copy:
                for x in actions_buffer:
                    a_copy.write_row([x[c] for c in ACTION_COLUMNS])
                    action_count += 1
    with engine.begin() as conn:
        rollups.mark_history(conn)
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return session_count, action_count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", required=True, help="database URL (a new SQLite file or an empty PostgreSQL database)"
    )
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument(
        "--end", default="2026-11-01T00:00:00+00:00", help="the center's last instant (ISO 8601)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    end_ms = parse_iso(args.end)
    started = time.monotonic()
    made = load(args.url, args.agents, args.days, args.sessions, end_ms, args.seed)
    print(f"{made[0]:,} sessions and {made[1]:,} actions in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
