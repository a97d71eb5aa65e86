"""The event writer: one thread per process that commits the events of many requests in one transaction.

Requests hand their rows to ``write`` (a coroutine) or ``submit`` (a future, for threads) and wait; the
answer comes only after the transaction holding their rows has committed, so an answer of 2xx always means
durable. While one transaction commits, the next requests queue up and go together into the following one
(group commit). The pending work is bounded: past ``queue_limit`` events, both refuse at once with
``Overloaded``.

The same thread does the projection of stored events (storage/projector.py) as its *idle work*:
* whenever no request has come for a moment (``IDLE_GRACE_S``), a full batch;
* under light load (a low rate of requests, a small group, nothing queued or being written behind it), right
  after the group, a small batch (at least ``LIGHT_LOAD_IDLE_BATCH`` items, as many as the group stored), so
  that a server that is never quiet for long still projects as events come;
* and under heavy load, for at least ``idle_share`` of the writer's time (measured: after a batch that took
  t seconds, the next one may wait t x (1 - share) / share), so that a saturated server still makes progress.
Requests come first: a batch of idle work is bounded, and a request arriving during one waits for it at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from service import metrics
from service.storage.engine import Transactor
from service.storage.events import EventKey, EventRow, store_new

log = logging.getLogger("calltrail.writer")

# Work for the writer's idle time, given the writer's transactor and at most how many items to take (None: the
# work's own batch size): one bounded piece of it per call, returning how much it did (0: nothing to do).
IdleWork = Callable[[Transactor, int | None], int]

# The writer counts as idle once no request has come for this long: under load the next requests are
# usually being parsed while a group commits, and should not find the writer busy with a projection batch.
IDLE_GRACE_S = 0.05
# Light load: fewer than LIGHT_LOAD_REQUESTS requests came in the last one or two LIGHT_LOAD_WINDOW_S (under
# 250 to 500 a second), the group held at most LIGHT_LOAD_GROUP_REQUESTS, and nothing is queued or being
# written behind it. Idle work may then run at once, in a batch of LIGHT_LOAD_IDLE_BATCH items (about 6 ms of
# projection on SQLite) or as many as the group stored, which is all a request arriving meanwhile waits.
# A momentary gap is no sign of light load: a saturated server has them too, and projecting in them starved
# the thread serving requests, which made more gaps (on PostgreSQL it cost (b) a third, docs/design.md).
LIGHT_LOAD_WINDOW_S = 0.1
LIGHT_LOAD_REQUESTS = 50
LIGHT_LOAD_GROUP_REQUESTS = 4
LIGHT_LOAD_IDLE_BATCH = 50
# When the writer has nothing to do, it looks for idle work this often (other workers may have queued some).
IDLE_POLL_S = 1.0
# After idle work fails because the database is unavailable, the writer leaves it alone this long.
IDLE_BACKOFF_S = 5.0


class StorageUnavailable(RuntimeError):
    """The database could not take the write (down, locked, full); nothing of the request was stored."""


class Overloaded(StorageUnavailable):
    """Too much work is already waiting; try again shortly."""


class WriterClosed(StorageUnavailable):
    """The process is shutting down and takes no new work."""


Outcome = set[EventKey] | BaseException


@dataclass(slots=True)
class _Job:
    rows: Sequence[EventRow]
    # Exactly one of the two: a thread waits on ``future`` (submit), a coroutine on ``waiter`` (write).
    future: Future[set[EventKey]] | None = None
    waiter: asyncio.Future[set[EventKey]] | None = None


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
    # SQLAlchemy wraps the driver's error; the writer's hot paths raise the driver's own (sqlite3, asyncpg).
    driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(driver_error, "sqlstate", None) or ""
    if sqlstate in _RETRY_SQLSTATES:
        return "retry"
    if isinstance(
        exc,
        OSError
        | OperationalError
        | InterfaceError
        | sqlite3.OperationalError
        | asyncpg.InterfaceError
        | asyncpg.PostgresConnectionError,
    ):
        # OSError covers refused connections and timeouts from the driver; SQLite reports locked, full and
        # unopenable databases as OperationalError (its own, where the hot path calls it directly).
        return "unavailable"
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or (
        sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate == "55P03"
    ):
        return "unavailable"
    return "error"


class EventWriter:
    def __init__(
        self,
        transactors: Transactor | Sequence[Transactor],
        *,
        max_batch: int,
        queue_limit: int,
        idle_work: IdleWork | None = None,
        idle_share: float = 0.02,
    ) -> None:
        # One thread per transactor, all serving the one queue: on PostgreSQL a second transaction can be
        # under way while the first waits for its commit; SQLite takes one writer at a time, so one thread.
        self._transactors = [transactors] if not isinstance(transactors, Sequence) else list(transactors)
        self._max_batch = max_batch
        self._queue_limit = queue_limit
        self._idle_work = idle_work
        assert 0 < idle_share <= 1
        self._idle_share = idle_share
        self._idle_pause_until = 0.0
        # Shared by the threads: while requests keep coming, one thread at a time does idle work, and the
        # share is of the writer's time, not of each thread's.
        self._idle_due = 0.0
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False
        self._stopped = False  # a writer thread has ended, whatever the reason
        self._writing = 0  # threads writing a group now
        # Requests the threads took, in windows of LIGHT_LOAD_WINDOW_S: how light the load is.
        self._window_started = 0.0
        self._window_requests = 0
        self._previous_window_requests = 0
        self._threads = [
            threading.Thread(target=self._run, args=(t,), name=f"calltrail-writer-{n}", daemon=True)
            for n, t in enumerate(self._transactors, start=1)
        ]
        self._local = threading.local()  # the transactor of the thread at hand

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    async def write(self, rows: Sequence[EventRow]) -> set[EventKey]:
        """Store rows in the next group commit; the keys that were newly stored.

        Raises ``StorageUnavailable`` (or its kinds) at once when the writer takes no work, or once the
        commit failed. Cancelling the caller does not withdraw the rows: they may still be stored, and a
        client that saw no answer sends them again and hears "duplicate".
        """
        waiter: asyncio.Future[set[EventKey]] = asyncio.get_running_loop().create_future()
        self._enqueue(_Job(rows, waiter=waiter))
        return await waiter

    def submit(self, rows: Sequence[EventRow]) -> Future[set[EventKey]]:
        """Queue rows for the next group commit from a thread; the future yields the newly stored keys.

        Cancelling the future while it is still queued withdraws the rows.
        """
        future: Future[set[EventKey]] = Future()
        self._enqueue(_Job(rows, future=future))
        return future

    def _enqueue(self, job: _Job) -> None:
        rows = job.rows
        with self._lock:
            if self._closed:
                metrics.WRITER_FAILURES.labels("closed").inc()
                raise WriterClosed("the server is shutting down")
            if self._stopped:
                raise StorageUnavailable("the writer has stopped")
            if self._pending + len(rows) > self._queue_limit and self._pending > 0:
                metrics.WRITER_FAILURES.labels("overloaded").inc()
                raise Overloaded(f"{self._pending} events are already waiting to be written")
            self._pending += len(rows)
            self._queue.put(job)
        metrics.WRITER_QUEUE_EVENTS.inc(len(rows))

    def close(self, timeout: float | None = None) -> None:
        """Stop taking work, finish what was queued, wait for the threads, release the transactors."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put(_STOP)  # each thread stops at the first it takes
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread, transactor in zip(self._threads, self._transactors, strict=True):
            if thread.ident is None:
                transactor.dispose()
            else:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _run(self, transactor: Transactor) -> None:
        self._local.transactor = transactor
        try:
            self._serve_queue()
        finally:
            self._stopped = True
            # The transactor belongs to this thread (asyncpg's connections are bound to its event loop).
            transactor.dispose()

    def _serve_queue(self) -> None:
        idle_pending = self._idle_work is not None  # work may be left from before this process started
        while True:
            if self._idle_work is None:
                first = self._queue.get()
            else:
                try:
                    first = self._queue.get(timeout=IDLE_GRACE_S if idle_pending else IDLE_POLL_S)
                except queue.Empty:
                    idle_pending = self._run_idle_work()
                    continue
            if first is _STOP:
                break
            assert isinstance(first, _Job)
            group = [first]
            size = len(first.rows)
            stopping = False
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
            with self._lock:
                self._writing += 1
                recent_requests = self._count_requests(len(group))
            stored = self._process(group, size)
            with self._lock:
                self._writing -= 1
                # With several threads the queue may be empty only because another thread took it all.
                others_writing = self._writing > 0
            if stored and self._idle_work is not None:
                idle_pending = True
            if stopping:
                break
            light_load = (
                recent_requests < LIGHT_LOAD_REQUESTS
                and len(group) <= LIGHT_LOAD_GROUP_REQUESTS
                and self._queue.empty()
                and not others_writing
            )
            if idle_pending and self._take_idle_turn(light_load):
                # Under light load, as much as the group stored: large batches must not outrun the projection.
                most = max(LIGHT_LOAD_IDLE_BATCH, size) if light_load else None
                idle_pending = self._run_idle_work(most)

    def _count_requests(self, count: int) -> int:
        """Count a group's requests; how many came in this window and the one before. Holds the lock."""
        now = time.monotonic()
        if now - self._window_started >= LIGHT_LOAD_WINDOW_S:
            # The window just ended counts if it was the last one; after a longer quiet, nothing before does.
            ended_now = now - self._window_started < 2 * LIGHT_LOAD_WINDOW_S
            self._previous_window_requests = self._window_requests if ended_now else 0
            self._window_started = now
            self._window_requests = 0
        self._window_requests += count
        return self._previous_window_requests + self._window_requests

    def _take_idle_turn(self, light_load: bool) -> bool:
        """Whether idle work may run now: under light load when no other thread is at it, else once requests
        may no longer hold it off. The thread that asks first takes the turn."""
        with self._lock:
            if self._idle_due == math.inf or (not light_load and time.monotonic() < self._idle_due):
                return False
            self._idle_due = math.inf  # until this turn ends
            return True

    def _run_idle_work(self, most: int | None = None) -> bool:
        """One piece of idle work, of at most ``most`` items; whether more may be waiting. Sets when requests
        may next hold it off no longer: after work that took t seconds, t x (1 - share) / share later."""
        assert self._idle_work is not None
        started = time.monotonic()
        if started < self._idle_pause_until:
            with self._lock:
                self._idle_due = self._idle_pause_until
            return False
        more = False
        try:
            more = self._idle_work(self._local.transactor, most) > 0
        except Exception as exc:
            # Nothing is lost: what the idle work did not finish stays queued in the database.
            kind = classify_failure(exc)
            log.error("projection paused for %.0f s (%s): %s", IDLE_BACKOFF_S, kind, _one_line(exc))
            self._idle_pause_until = time.monotonic() + IDLE_BACKOFF_S
        finished = time.monotonic()
        with self._lock:
            due = finished + (finished - started) * (1 - self._idle_share) / self._idle_share
            self._idle_due = max(due, self._idle_pause_until)
        return more

    def _process(self, group: list[_Job], size: int) -> bool:
        """Write a group and answer its requests; whether any event was newly stored."""
        # A thread's request cancelled while queued is dropped; from here on a cancellation can no longer
        # touch its future, so the answers below always land.
        live = [job for job in group if job.future is None or job.future.set_running_or_notify_cancel()]
        outcomes: list[Outcome] = []
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
            _answer(live, outcomes)
        return any(isinstance(outcome, set) and outcome for outcome in outcomes)

    def _attempt(self, group: list[_Job]) -> list[Outcome]:
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

    def _refuse(self, group: list[_Job], exc: Exception) -> list[Outcome]:
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

    def _isolate(self, group: list[_Job], exc: Exception) -> list[Outcome]:
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
        transactor: Transactor = self._local.transactor
        inserted = store_new(transactor, rows)
        outcomes: list[set[EventKey]] = [set() for _ in group]
        for key in inserted:
            outcomes[claimed[key]].add(key)
        return outcomes


def _answer(jobs: list[_Job], outcomes: list[Outcome]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[set[EventKey]], Outcome]]] = {}
    for job, outcome in zip(jobs, outcomes, strict=False):
        if job.waiter is not None:
            by_loop.setdefault(job.waiter.get_loop(), []).append((job.waiter, outcome))
        elif job.future is None:
            continue
        elif isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)
    for loop, answers in by_loop.items():
        # One wake-up of the event loop for the whole group: a wake-up per request (what wrapping a
        # concurrent future in an asyncio one does) cost about 50 us of the loop's time per request.
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, answers)


def _settle(answers: list[tuple[asyncio.Future[set[EventKey]], Outcome]]) -> None:
    for waiter, outcome in answers:
        if waiter.done():  # cancelled: that request's client saw no answer
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]
