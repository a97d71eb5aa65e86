"""Prometheus metrics, shared by the HTTP layer and the writer.

With several worker processes, ``calltrail serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the workers start, so that a scrape of any worker reports the sum over all of them.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "calltrail_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "calltrail_http_request_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS = Counter(
    "calltrail_events_total",
    "Events received in valid batches, by result: accepted, duplicate or rejected.",
    ["status"],
)
WRITER_BATCH_EVENTS = Histogram(
    "calltrail_writer_batch_events",
    "Events written per transaction (group commit).",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
WRITER_BATCH_REQUESTS = Histogram(
    "calltrail_writer_batch_requests",
    "Requests whose events went into one transaction (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
WRITER_COMMIT_SECONDS = Histogram(
    "calltrail_writer_commit_seconds",
    "Time to write and commit one group, from BEGIN to COMMIT.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
WRITER_QUEUE_EVENTS = Gauge(
    "calltrail_writer_queue_events",
    "Events waiting for the writer or being written.",
    multiprocess_mode="livesum",
)
WRITER_FAILURES = Counter(
    "calltrail_writer_failures_total",
    "Requests the writer could not store, by reason: unavailable, overloaded, closed or error.",
    ["reason"],
)
PROJECTION_EVENTS = Counter(
    "calltrail_projection_events_total",
    "Stored events projected into sessions, actions and rollups, by result: projected or failed.",
    ["result"],
)
PROJECTION_SECONDS = Histogram(
    "calltrail_projection_batch_seconds",
    "Time to project one batch of queued events, from BEGIN to COMMIT.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROJECTION_BACKLOG = Gauge(
    "calltrail_projection_backlog_events",
    "Events stored but not projected yet (counted up to 1,000,000), as last seen by any worker.",
    multiprocess_mode="mostrecent",
)
PROJECTION_LAG = Gauge(
    "calltrail_projection_lag_seconds",
    "How long ago the oldest event not projected yet was received (0 when none), as last seen.",
    multiprocess_mode="mostrecent",
)
REQUEST_TIMEOUTS = Counter(
    "calltrail_http_request_timeouts_total",
    "Connections closed because a request's headers or body did not arrive in time, by phase.",
    ["phase"],
)
RATE_LIMITED = Counter(
    "calltrail_rate_limited_total",
    "Requests refused with 429, by the limit they hit: ip, site or ccc_app.",
    ["limit"],
)
CCC_SYNC_RECORDS = Counter(
    "calltrail_ccc_sync_records_total",
    "Records pulled from CCC's API (calltrail ccc sync and the scheduled reconciliation), by action and "
    "result: stored (new), duplicate (stored before) or unreadable (stored, but no SessionId could be read).",
    ["action", "result"],
)
CCC_SYNC_RUNS = Counter(
    "calltrail_ccc_sync_runs_total",
    "Scheduled reconciliation runs per app and action, by result: ok, failed, or skipped (another worker "
    "holds the lease).",
    ["action", "result"],
)


def count_ccc_sync(action: str, stored: int, duplicate: int, unreadable: int) -> None:
    for result, count in (("stored", stored), ("duplicate", duplicate), ("unreadable", unreadable)):
        if count:
            CCC_SYNC_RECORDS.labels(action, result).inc(count)


@functools.cache
def _http_children(route: str, method: str, status: int) -> tuple[Any, Any]:
    # labels() takes a lock and builds its key on every call; every request needs the same few children.
    return HTTP_REQUESTS.labels(route, method, str(status)), HTTP_SECONDS.labels(route)


# A client may send any token as its method: the others are counted as "other", so that the label set (and
# the cache of children above) stays small whatever clients send.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_http(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request. Route templates, methods and statuses are few (the label set stays small)."""
    if method not in _KNOWN_METHODS:
        method = "other"
    requests, latency = _http_children(route, method, status)
    requests.inc()
    latency.observe(seconds)


def observe_commit(seconds: float, events: int, requests: int) -> None:
    """One group commit of either writer: its time, and how many events and requests it held."""
    WRITER_COMMIT_SECONDS.observe(seconds)
    WRITER_BATCH_EVENTS.observe(events)
    WRITER_BATCH_REQUESTS.observe(requests)


def count_events(status: str, count: int) -> None:
    _event_children(status).inc(count)


@functools.cache
def _event_children(status: str) -> Any:
    return EVENTS.labels(status)


def render() -> tuple[bytes, str]:
    """The exposition text of every metric of this process, or of all workers in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def forget_process(pid: int) -> None:
    """Drop a finished worker's live gauges from the multiprocess totals."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
