"""The event writer: one thread per process that commits the events of many requests in one transaction.

Requests hand their rows to ``write`` (a coroutine) or ``submit`` (a future, for threads) and wait; the
answer comes only after the transaction holding their rows has committed, so an answer of 2xx always means
durable. While one transaction commits, the next requests queue up and go together into the following one
(group commit). The pending work is bounded: past ``queue_limit`` events, both refuse at once with
``Overloaded``.

The same thread does the projection of stored events (projection/queue.py) as its *idle work*, when
ingest/idle.py's ``IdleSchedule`` gives it a turn: requests come first, and a batch of idle work is bounded,
so a request arriving during one waits for it at most.

SQLite's writer is this thread (the sqlite3 module lets go of the GIL while SQLite works). The server's
PostgreSQL writer commits on the serving event loop instead (ingest/loop_writer.py); this one serves
PostgreSQL too, for tools and tests that write from threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from service import telemetry
from service.ingest.idle import IDLE_GRACE_S, IDLE_POLL_S, IdleSchedule, IdleWork
from service.storage.engine import Transactor
from service.storage.events import EventKey, EventRow, store_new
from service.storage.failures import (
    TRANSIENT_RETRIES,
    Outcome,
    Overloaded,
    StorageUnavailable,
    WriterClosed,
    failed_alone,
    next_step,
    one_line,
    refusals,
)

log = logging.getLogger("calltrail.writer")


@dataclass(slots=True)
class _Job:
    rows: Sequence[EventRow]
    # Exactly one of the two: a thread waits on ``future`` (submit), a coroutine on ``waiter`` (write).
    future: Future[set[EventKey]] | None = None
    waiter: asyncio.Future[set[EventKey]] | None = None


_STOP = object()


class IngestWriter(Protocol):
    """What the ingestion endpoint and the runtime need of an event writer, whichever driver commits: this
    module's thread (SQLite; tools and tests on either database) or ``loop_writer`` on the event loop
    (PostgreSQL in the server). Both admit work with this module's ``admit`` (backpressure), claim and
    answer a group with ``claim_rows`` and ``outcomes_by_request``; only how they commit differs."""

    @property
    def pending(self) -> int: ...

    def start(self) -> None: ...

    async def write(self, rows: Sequence[EventRow]) -> set[EventKey]: ...

    async def shutdown(self, timeout: float | None) -> None:
        """Stop taking work and commit what was queued, for at most ``timeout`` seconds."""
        ...


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
        self._schedule = None if idle_work is None else IdleSchedule(idle_work, idle_share)
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False
        self._stopped = False  # a writer thread has ended, whatever the reason
        self._writing = 0  # threads writing a group now
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
            admit(len(rows), self._pending, self._queue_limit, closed=self._closed, stopped=self._stopped)
            self._pending += len(rows)
            self._queue.put(job)
        telemetry.WRITER_QUEUE_EVENTS.inc(len(rows))

    async def shutdown(self, timeout: float | None) -> None:
        # On the serving loop, as before: the last requests' answers wait for the loop, not the other way.
        self.close(timeout)

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
        schedule = self._schedule
        transactor: Transactor = self._local.transactor
        idle_pending = schedule is not None  # work may be left from before this process started
        while True:
            if schedule is None:
                first = self._queue.get()
            else:
                try:
                    first = self._queue.get(timeout=IDLE_GRACE_S if idle_pending else IDLE_POLL_S)
                except queue.Empty:
                    idle_pending = schedule.run(transactor)
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
            recent_requests = schedule.count_requests(len(group)) if schedule is not None else 0
            stored = self._process(group, size)
            with self._lock:
                self._writing -= 1
                # With several threads the queue may be empty only because another thread took it all.
                others_writing = self._writing > 0
            if stopping or schedule is None:
                if stopping:
                    break
                continue
            idle_pending = idle_pending or stored
            if not idle_pending:
                continue
            nothing_behind = self._queue.empty() and not others_writing
            turn = schedule.turn_after_group(recent_requests, len(group), size, nothing_behind)
            if turn is not None:
                idle_pending = schedule.run(transactor, turn.most)

    def _process(self, group: list[_Job], size: int) -> bool:
        """Write a group and answer its requests; whether any event was newly stored."""
        # A thread's request cancelled while queued is dropped; from here on a cancellation can no longer
        # touch its future, so the answers below always land.
        live = [job for job in group if job.future is None or job.future.set_running_or_notify_cancel()]
        outcomes: list[Outcome] = []
        try:
            started = time.perf_counter()
            outcomes = self._attempt(live) if live else []
            telemetry.observe_commit(time.perf_counter() - started, size, len(live))
        except BaseException as exc:  # never leave a request waiting, whatever went wrong here
            log.error("writer failure: %s", one_line(exc), exc_info=exc)
            outcomes = [exc] * len(live)
        finally:
            # Account before answering: a client may act on its answer at once (and read /metrics).
            telemetry.WRITER_QUEUE_EVENTS.dec(size)
            with self._lock:
                self._pending -= size
            _answer(live, outcomes)
        return any(isinstance(outcome, set) and outcome for outcome in outcomes)

    def _attempt(self, group: list[_Job]) -> list[Outcome]:
        """Write the group in one transaction; each job's stored keys, or the error that refused it."""
        for attempt in range(1, TRANSIENT_RETRIES + 2):
            try:
                return self._write(group)
            except Exception as exc:
                step = next_step(exc, attempt)
                if step == "retry":
                    continue
                if step == "refuse":
                    return refusals(len(group), exc)
                if len(group) == 1:
                    return failed_alone(exc)
                return [outcome for job in group for outcome in self._attempt([job])]
        raise AssertionError("unreachable")

    def _write(self, group: list[_Job]) -> list[Outcome]:
        rows, claimed = claim_rows([job.rows for job in group])
        transactor: Transactor = self._local.transactor
        return outcomes_by_request(store_new(transactor, rows), claimed, len(group))


def admit(rows: int, pending: int, queue_limit: int, *, closed: bool, stopped: bool) -> None:
    """Backpressure, the same for both drivers: whether a request's rows may join the queue. Refused, it
    raises what the endpoint answers (503 with Retry-After): closed, stopped, or over the queue limit. A
    request is always taken when nothing waits, however large, so no batch can be refused for ever."""
    if closed:
        telemetry.WRITER_FAILURES.labels("closed").inc()
        raise WriterClosed("the server is shutting down")
    if stopped:
        raise StorageUnavailable("the writer has stopped")
    if pending + rows > queue_limit and pending > 0:
        telemetry.WRITER_FAILURES.labels("overloaded").inc()
        raise Overloaded(f"{pending} events are already waiting to be written")


def claim_rows(requests: Sequence[Sequence[EventRow]]) -> tuple[list[EventRow], dict[EventKey, int]]:
    """The rows of a group's requests to insert, in key order, and which request claims each key."""
    # The same event may come in two requests of one group (a client retrying while its first try is still
    # queued): only the first request claims it, so exactly one of them answers "accepted".
    claimed: dict[EventKey, int] = {}
    rows: list[EventRow] = []
    for index, request_rows in enumerate(requests):
        for row in request_rows:
            key = (row["site_id"], row["event_id"])
            if key not in claimed:
                claimed[key] = index
                rows.append(row)
    # Two writers inserting overlapping keys in different orders can deadlock on PostgreSQL's unique index;
    # inserting in key order makes every writer take those locks in the same order.
    rows.sort(key=lambda r: (r["site_id"], r["event_id"]))
    return rows, claimed


def outcomes_by_request(inserted: set[EventKey], claimed: dict[EventKey, int], count: int) -> list[Outcome]:
    """Each of a group's ``count`` requests' newly stored keys, given which request claimed each key."""
    outcomes: list[set[EventKey]] = [set() for _ in range(count)]
    for key in inserted:
        outcomes[claimed[key]].add(key)
    return list(outcomes)


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
