"""The event writer: one thread per process that commits the events of many requests in one transaction.

Requests hand their rows to ``submit`` and wait on the returned future, which completes only after the
transaction holding their rows has committed, so an answer of 2xx always means durable. While one
transaction commits, the next requests queue up and go together into the following one (group commit).
The pending work is bounded: past ``queue_limit`` events, ``submit`` refuses at once with ``Overloaded``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from service import metrics
from service.storage.engine import Transactor
from service.storage.events import EventKey, EventRow, insert_new

log = logging.getLogger("calltrail.writer")

# Runs inside the writer's transaction with the rows that were new, so derived records commit atomically
# with the events they come from.
Projector = Callable[[Connection, Sequence[EventRow]], None]


class StorageUnavailable(RuntimeError):
    """The database could not take the write (down, locked, full); nothing of the request was stored."""


class Overloaded(StorageUnavailable):
    """Too much work is already waiting; try again shortly."""


class WriterClosed(StorageUnavailable):
    """The process is shutting down and takes no new work."""


@dataclass
class _Job:
    rows: Sequence[EventRow]
    future: Future[set[EventKey]] = field(default_factory=Future)


_STOP = object()

# A deadlock or serialization failure aborts the transaction through no fault of its rows: try it again.
TRANSIENT_RETRIES = 1

# SQLSTATE classes that mean "the database cannot take this now", not "this request is wrong": connection
# (08), resources such as a full disk or too many clients (53), operator intervention such as a shutdown or
# a restart (57), system errors (58), a database that does not exist (3D), and a lock wait timeout (55P03).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58", "3D")
_RETRY_SQLSTATES = ("40001", "40P01")

FailureKind = Literal["retry", "unavailable", "error"]


def classify_failure(exc: BaseException) -> FailureKind:
    sqlstate = (getattr(exc.orig, "sqlstate", None) or "") if isinstance(exc, DBAPIError) else ""
    if sqlstate in _RETRY_SQLSTATES:
        return "retry"
    if isinstance(exc, OSError | OperationalError | InterfaceError):
        # OSError covers refused connections and timeouts from the driver; SQLite reports locked, full and
        # unopenable databases as OperationalError.
        return "unavailable"
    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate == "55P03"
    ):
        return "unavailable"
    return "error"


class EventWriter:
    def __init__(
        self,
        transactor: Transactor,
        *,
        max_batch: int,
        queue_limit: int,
        projector: Projector | None = None,
    ) -> None:
        self._transactor = transactor
        self._max_batch = max_batch
        self._queue_limit = queue_limit
        self._projector = projector
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="calltrail-writer", daemon=True)

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        self._thread.start()

    def submit(self, rows: Sequence[EventRow]) -> Future[set[EventKey]]:
        """Queue rows for the next group commit; the future yields the keys that were newly stored."""
        job = _Job(rows)
        with self._lock:
            if self._closed:
                metrics.WRITER_FAILURES.labels("closed").inc()
                raise WriterClosed("the server is shutting down")
            if self._thread.ident is not None and not self._thread.is_alive():
                raise StorageUnavailable("the writer has stopped")
            if self._pending + len(rows) > self._queue_limit and self._pending > 0:
                metrics.WRITER_FAILURES.labels("overloaded").inc()
                raise Overloaded(f"{self._pending} events are already waiting to be written")
            self._pending += len(rows)
            self._queue.put(job)
        metrics.WRITER_QUEUE_EVENTS.inc(len(rows))
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Stop taking work, finish what was queued, wait for the thread, release the transactor."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if self._thread.ident is None:
            self._transactor.dispose()
        else:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._serve_queue()
        finally:
            # The transactor belongs to this thread (asyncpg's connections are bound to its event loop).
            self._transactor.dispose()

    def _serve_queue(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            assert isinstance(first, _Job)
            group = [first]
            size = len(first.rows)
            while size < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Job)
                group.append(item)
                size += len(item.rows)
            self._process(group, size)

    def _process(self, group: list[_Job], size: int) -> None:
        # A request cancelled while queued is dropped (its client had no answer and will retry); from here
        # on a cancellation can no longer touch the future, so the answers below always land.
        live = [job for job in group if job.future.set_running_or_notify_cancel()]
        outcomes: list[set[EventKey] | BaseException] = []
        try:
            started = time.perf_counter()
            outcomes = self._attempt(live) if live else []
            metrics.WRITER_COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.WRITER_BATCH_EVENTS.observe(size)
            metrics.WRITER_BATCH_REQUESTS.observe(len(live))
        except BaseException as exc:  # never leave a request waiting, whatever went wrong here
            log.error("writer failure: %s", _one_line(exc), exc_info=exc)
            outcomes = [exc] * len(live)
        finally:
            # Account before answering: a client may act on its answer at once (and read /metrics).
            metrics.WRITER_QUEUE_EVENTS.dec(size)
            with self._lock:
                self._pending -= size
            for job, outcome in zip(live, outcomes, strict=False):
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    def _attempt(self, group: list[_Job]) -> list[set[EventKey] | BaseException]:
        """Write the group in one transaction; each job's stored keys, or the error that refused it."""
        for attempt in range(1, TRANSIENT_RETRIES + 2):
            try:
                return list(self._write(group))
            except Exception as exc:
                kind = classify_failure(exc)
                if kind == "retry" and attempt <= TRANSIENT_RETRIES:
                    log.warning("transaction aborted (%s); retrying", _one_line(exc))
                    continue
                if kind in ("retry", "unavailable"):
                    return self._refuse(group, exc)
                return self._isolate(group, exc)
        raise AssertionError("unreachable")

    def _refuse(self, group: list[_Job], exc: Exception) -> list[set[EventKey] | BaseException]:
        reason = _one_line(exc)
        if "database or disk is full" in reason.lower():
            log.error(
                "the SQLite database is full (disk space, or CALLTRAIL_SQLITE_MAX_SIZE_MB); "
                "%d requests refused with 503 until there is room: %s",
                len(group),
                reason,
            )
        else:
            log.error("the database cannot take writes; %d requests refused with 503: %s", len(group), reason)
        metrics.WRITER_FAILURES.labels("unavailable").inc(len(group))
        return [StorageUnavailable(reason) for _ in group]

    def _isolate(self, group: list[_Job], exc: Exception) -> list[set[EventKey] | BaseException]:
        if len(group) > 1:
            return [outcome for job in group for outcome in self._attempt([job])]
        log.error("write failed: %s", _one_line(exc), exc_info=exc)
        metrics.WRITER_FAILURES.labels("error").inc()
        return [exc]

    def _write(self, group: list[_Job]) -> list[set[EventKey]]:
        # The same event may come in two requests of one group (a client retrying while its first try is
        # still queued): only the first request claims it, so exactly one of them answers "accepted".
        claimed: dict[EventKey, int] = {}
        rows: list[EventRow] = []
        for index, job in enumerate(group):
            for row in job.rows:
                key = (row["site_id"], row["event_id"])
                if key not in claimed:
                    claimed[key] = index
                    rows.append(row)
        # Two writers inserting overlapping keys in different orders can deadlock on PostgreSQL's unique
        # index; inserting in key order makes every writer take those locks in the same order.
        rows.sort(key=lambda r: (r["site_id"], r["event_id"]))

        def work(conn: Connection) -> set[EventKey]:
            inserted = insert_new(conn, rows)
            if self._projector is not None and inserted:
                self._projector(conn, [r for r in rows if (r["site_id"], r["event_id"]) in inserted])
            return inserted

        inserted = self._transactor.run(work)
        outcomes: list[set[EventKey]] = [set() for _ in group]
        for key in inserted:
            outcomes[claimed[key]].add(key)
        return outcomes


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]
