"""Rollups stay right while writers change what they sum: reports read during ingestion never leave a stale
span behind, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, func, select

from service.admin.registry import Site
from service.config import Settings
from service.domain.buckets import buckets
from service.domain.formulas import Thresholds
from service.projection import rollups
from service.reports.agents import agents
from service.reports.filters import ReportFilter
from service.reports.inbound import inbound
from service.storage.engine import make_engine
from service.storage.schema import agent_rollup, inbound_rollup, rollup_marks
from tests.center import center_history
from tests.projection_helpers import T0, ingest

DAY = 86_400_000


def reports(engine: Engine) -> dict[str, Any]:
    start, end = T0 - T0 % DAY - DAY, T0 - T0 % DAY + 5 * DAY
    scope = ReportFilter(start, end)
    per_bucket, totals = inbound(
        engine, scope, buckets(start, end, "hour", ZoneInfo("Asia/Shanghai")), Thresholds(20, 5)
    )
    return {"buckets": per_bucket, "totals": totals, "agents": agents(engine, scope)}


def test_reports_during_ingestion_end_equal_to_a_fresh_build(
    settings: Settings, engine: Engine, site: Site
) -> None:
    rows = center_history(site.id, seed=11, start_ms=T0, agents=5, calls=20)
    random.Random(5).shuffle(rows)  # late and out-of-order events rewrite sessions already summed
    batches = [rows[i : i + 7] for i in range(0, len(rows), 7)]
    reader_engine = make_engine(settings, "write")
    stop = threading.Event()
    errors: list[BaseException] = []

    def read_repeatedly() -> None:
        try:
            while not stop.is_set():
                reports(reader_engine)
        except BaseException as exc:
            errors.append(exc)

    # Reports both between batches (so late events always change spans already built) and from a thread
    # racing the writer (so claims and bumps interleave as the scheduler has them).
    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for number, batch in enumerate(batches):
            ingest(settings, [batch])
            if number % 5 == 0:
                reports(engine)
    finally:
        stop.set()
        reader.join(timeout=120)
    assert not errors, errors

    during = reports(reader_engine)
    with engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(inbound_rollup)).scalar_one() > 0
        conn.execute(delete(inbound_rollup))
        conn.execute(delete(agent_rollup))
        conn.execute(delete(rollup_marks))
        assert rollups.mark_history(conn) > 0
    fresh = reports(reader_engine)
    assert during == fresh
    assert fresh["totals"]["offered"] > 50
    with engine.connect() as conn:
        dirty = conn.execute(
            select(func.count()).where(rollup_marks.c.gen > rollup_marks.c.built_gen)
        ).scalar_one()
        assert conn.execute(select(func.count()).select_from(agent_rollup)).scalar_one() > 0
    assert dirty == 0
    reader_engine.dispose()
