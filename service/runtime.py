"""What one worker process runs on, assembled from its settings: engines (the CCC receiver's included), the
event writer and its projection, the site directory, rate limits, PII policy and session timeouts. The ASGI
app holds it for the life of its lifespan; the CLI builds the parts it needs from the same functions."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from logging import getLogger

import anyio.to_thread
from sqlalchemy import Connection

from service import telemetry
from service.admin.registry import SiteDirectory
from service.ccc.sync import Project, SyncScheduler
from service.config import Settings
from service.domain.call_join import JoinRules
from service.domain.pii import PiiPolicy
from service.domain.sessions import Timeouts
from service.http.state import AppState
from service.ingest.idle import IdleWork, ProjectionAndSeal
from service.ingest.loop_writer import LoopEventWriter, ProjectionThread
from service.ingest.ratelimit import RateLimits
from service.ingest.writer import EventWriter, IngestWriter
from service.projection.call_records import project_call_sessions
from service.projection.queue import QueuedProjection
from service.storage.engine import asyncpg_dsn, is_sqlite_url, make_engine, make_transactor
from service.storage.migrations import check_current
from service.storage.seals import Sealer

WRITER_DRAIN_TIMEOUT_S = 60.0
# SQLite's writer thread lets go of the GIL for each database call and must take it back from the thread that
# parses requests, which by default keeps it up to 5 ms: 1 ms carried about 10 % more events per second on
# SQLite. On PostgreSQL only the projection's thread is left to hand the GIL to, and 0.5 ms served slightly
# more requests than 5 ms (docs/design.md, "The ingestion hot path").
SQLITE_GIL_SWITCH_INTERVAL_S = 0.001
POSTGRES_GIL_SWITCH_INTERVAL_S = 0.0005
# The cyclic garbage collector, at Python's default thresholds, cost the thread serving requests more than
# any part of CallTrail's own work: with dozens of requests waiting for their commit, young objects survive
# into the older generations, and each full collection walks every object the process ever made. After
# startup the process freezes what exists (modules, engines, caches: it stays for the process's life) out of
# the collector's sight, and collects less often (docs/design.md, "The ingestion hot path").
GC_THRESHOLDS = (10_000, 50, 100)
log = getLogger("calltrail.ccc")


def session_timeouts(settings: Settings) -> Timeouts:
    return Timeouts(settings.ringing_timeout_s * 1000, settings.connected_timeout_s * 1000)


def join_rules(settings: Settings) -> JoinRules:
    """How page sessions join CCC's legs: within the tolerance, and by customer unless numbers are masked
    (two customers' masks can coincide; docs/call-records.md)."""
    return JoinRules(settings.call_join_tolerance_s * 1000, by_customer=settings.pii_mode != "mask")


def seal_key(settings: Settings) -> bytes | None:
    """The key that signs seals and removal records, if one is set (CALLTRAIL_SEAL_KEY)."""
    return settings.seal_key.encode() if settings.seal_key else None


def pii_policy(settings: Settings) -> PiiPolicy:
    return PiiPolicy(settings.pii_mode, settings.pii_key.encode())


def make_writer(settings: Settings, sqlite: bool) -> IngestWriter:
    """SQLite's writer is a thread; PostgreSQL's commits on the serving event loop (start it there), with
    the projection in a thread of its own."""
    projection: IdleWork = QueuedProjection(
        session_timeouts(settings), settings.projection_batch, join_rules(settings)
    )
    if settings.seal_interval_s > 0:
        projection = ProjectionAndSeal(projection, Sealer(seal_key(settings), settings.seal_interval_s))
    if sqlite:
        return EventWriter(
            make_transactor(settings),
            max_batch=settings.writer_max_batch,
            queue_limit=settings.writer_queue_limit,
            idle_work=projection,
            idle_share=settings.projection_share,
        )
    return LoopEventWriter(
        asyncpg_dsn(settings.database_url),
        connections=settings.writer_connections,
        max_batch=settings.writer_max_batch,
        queue_limit=settings.writer_queue_limit,
        projection=ProjectionThread(make_transactor(settings), projection, settings.projection_share),
    )


def ccc_projection(settings: Settings) -> Project:
    """The projection of pulled CCC records into call records and their joins (projection/call_records.py),
    in the transaction that stored them, as the push receiver does for pushes."""
    rules = join_rules(settings)

    def project(conn: Connection, sdk_app_id: int, session_ids: Sequence[str]) -> None:
        project_call_sessions(conn, [(sdk_app_id, session_id) for session_id in session_ids], rules)

    return project


def start_ccc_sync(settings: Settings, project: Project) -> SyncScheduler | None:
    """The scheduled reconciliation with CCC's API (``CALLTRAIL_CCC_SYNC_INTERVAL_S``), started, or None
    when it is off or the API key is missing."""
    scheduler = SyncScheduler.from_settings(settings, pii_policy(settings), project)
    if scheduler is not None:
        scheduler.start()
    return scheduler


@asynccontextmanager
async def running(settings: Settings, *, ccc_project: Project | None = None) -> AsyncIterator[AppState]:
    """The worker's state, from a checked schema to a drained writer: entered on the serving event loop
    (PostgreSQL's writer commits there), left once the server has finished the requests in flight. With
    ``CALLTRAIL_CCC_SYNC_INTERVAL_S``, the scheduled reconciliation with CCC runs in a thread meanwhile,
    projecting what it pulls with ``ccc_project`` (by default ``ccc_projection``; tests pass their own)."""
    sqlite = is_sqlite_url(settings.database_url)
    sys.setswitchinterval(SQLITE_GIL_SWITCH_INTERVAL_S if sqlite else POSTGRES_GIL_SWITCH_INTERVAL_S)
    read_engine = make_engine(settings, "read")
    # Connects on the first push (an engine is lazy): a deployment without CCC apps holds no connection.
    ccc_engine = make_engine(settings, "write")
    try:
        check_current(read_engine)
        writer = make_writer(settings, sqlite)
        writer.start()
        ccc_sync: SyncScheduler | None = None
        try:
            ccc_sync = start_ccc_sync(settings, ccc_project or ccc_projection(settings))
            state = AppState(
                settings=settings,
                read_engine=read_engine,
                ccc_engine=ccc_engine,
                writer=writer,
                sites=SiteDirectory(read_engine, settings.site_cache_s),
                rate_limits=RateLimits(
                    settings.rate_limit_per_ip,
                    settings.rate_limit_per_site,
                    per_ccc_app=settings.ccc_push_rate,
                ),
                pii=pii_policy(settings),
                timeouts=session_timeouts(settings),
                join_rules=join_rules(settings),
            )
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            yield state
        finally:
            if ccc_sync is not None:
                # Between two pages (a page in flight commits or rolls back whole), off the event loop.
                await anyio.to_thread.run_sync(ccc_sync.stop)
            # Commit whatever the last requests left queued.
            await writer.shutdown(WRITER_DRAIN_TIMEOUT_S)
    finally:
        ccc_engine.dispose()
        read_engine.dispose()
        telemetry.forget_process(os.getpid())
