"""PostgreSQL's group commit on the serving event loop: no writer thread, so no GIL hand-off per commit.

asyncpg is asynchronous, so the commits need no thread of their own: a few committer tasks on the loop that
serves requests each keep one connection and take whatever requests queued while the previous commit was
under way (group commit, as ingest/writer.py does in a thread for SQLite). A request is answered only after
the transaction holding its rows has committed. The projection, which is synchronous SQLAlchemy code, still
runs in a thread of its own (``ProjectionThread``), when the loop's ``IdleSchedule`` gives it a turn.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

import asyncpg
import orjson

from service import telemetry
from service.ingest.idle import IDLE_GRACE_S, IDLE_POLL_S, IdleSchedule, IdleWork
from service.ingest.writer import admit, claim_rows, outcomes_by_request
from service.storage.engine import CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_S, Transactor
from service.storage.events import POSTGRES_INSERT, EventKey, EventRow, keys_from_arrays
from service.storage.failures import (
    TRANSIENT_RETRIES,
    Outcome,
    StorageUnavailable,
    WriterClosed,
    failed_alone,
    next_step,
    one_line,
    refusals,
)

log = logging.getLogger("calltrail.writer")


class _LoopJob:
    __slots__ = ("rows", "waiter")

    def __init__(self, rows: Sequence[EventRow], waiter: asyncio.Future[set[EventKey]]) -> None:
        self.rows = rows
        self.waiter = waiter


_STOP = object()


class ProjectionThread:
    """The idle work (the projection) in a thread of its own, for a writer that commits on an event loop.

    The writer gives it turns (``run_turn``) after its groups, as the schedule allows; the thread also takes
    turns of its own when no request has come for ``IDLE_GRACE_S``. It owns its transactor (asyncpg's
    connections are bound to the thread's private event loop)."""

    def __init__(self, transactor: Transactor, work: IdleWork, share: float) -> None:
        self.schedule = IdleSchedule(work, share)
        self._transactor = transactor
        self._turns: queue.SimpleQueue[int | object | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="calltrail-projection", daemon=True)
        # Set by the writer: whether requests are queued or being committed. Quiet alone is no sign of idle
        # time: requests may be piling up behind long commits, and no group has started for a while.
        self.busy: Callable[[], bool] = lambda: False
        self.more_waiting = True  # the last piece of work left more behind it

    def start(self) -> None:
        self._thread.start()

    def run_turn(self, most: int | None) -> None:
        """Run a turn the caller took from the schedule (``IdleSchedule.take_turn``)."""
        self._turns.put(most)

    def stop(self, timeout: float | None = None) -> None:
        if self._thread.ident is None:
            self._transactor.dispose()
            return
        self._turns.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            pending = True  # work may be left from before this process started
            while True:
                try:
                    turn = self._turns.get(timeout=IDLE_GRACE_S if pending else IDLE_POLL_S)
                except queue.Empty:
                    # Idle: no turn came, no request either for a while, and none is waiting.
                    idle = self.schedule.quiet_for(IDLE_GRACE_S) and not self.busy()
                    if idle and self.schedule.take_turn(light_load=True):
                        pending = self.more_waiting = self.schedule.run(self._transactor)
                    continue
                if turn is _STOP:
                    return
                assert turn is None or isinstance(turn, int)
                pending = self.more_waiting = self.schedule.run(self._transactor, turn)
        finally:
            self._transactor.dispose()


class _HeldConnection:
    """A committer's connection, kept between groups; where a cancelled commit cannot lose it."""

    def __init__(self) -> None:
        self.connection: asyncpg.Connection | None = None

    async def get(self, dsn: str) -> asyncpg.Connection:
        if self.connection is None or self.connection.is_closed():
            self.connection = await asyncpg.connect(
                dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=STATEMENT_TIMEOUT_S
            )
        return self.connection

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                await connection.close(timeout=CONNECT_TIMEOUT_S)
            except Exception:  # the server went away: nothing to say goodbye to
                connection.terminate()

    def drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.terminate()


class LoopEventWriter:
    """``write`` as EventWriter has it, for PostgreSQL, with commits made on the calling event loop."""

    def __init__(
        self,
        dsn: str,
        *,
        connections: int,
        max_batch: int,
        queue_limit: int,
        projection: ProjectionThread | None = None,
    ) -> None:
        self._dsn = dsn
        self._projection = projection
        if projection is not None:
            projection.busy = lambda: self._pending > 0
        self._writing = 0  # committers writing a group now
        self._connection_count = connections
        self._max_batch = max_batch
        self._queue_limit = queue_limit
        self._jobs: collections.deque[_LoopJob] = collections.deque()
        self._pending = 0
        self._ready: asyncio.Event | None = None
        self._committers: list[asyncio.Task[None]] = []
        self._closed = False
        self._stopped = False

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        """Start the committers on the running loop (the one that will call ``write``)."""
        self._ready = asyncio.Event()
        if self._projection is not None:
            self._projection.start()
        loop = asyncio.get_running_loop()
        self._committers = [
            loop.create_task(self._commit_forever(), name=f"calltrail-committer-{n}")
            for n in range(1, self._connection_count + 1)
        ]
        for task in self._committers:
            task.add_done_callback(self._committer_ended)

    def _committer_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self._stopped = True
        log.error(
            "a committer stopped: %s", one_line(task.exception() or Exception()), exc_info=task.exception()
        )
        if all(t.done() for t in self._committers):
            self._refuse_queued(StorageUnavailable("the writer has stopped"))

    def _refuse_queued(self, refusal: StorageUnavailable) -> None:
        """Answer every queued request with ``refusal``: never silently dropped, never left waiting."""
        while self._jobs:
            job = self._jobs.popleft()
            self._pending -= len(job.rows)
            telemetry.WRITER_QUEUE_EVENTS.dec(len(job.rows))
            telemetry.WRITER_FAILURES.labels("closed").inc()
            if not job.waiter.done():
                job.waiter.set_exception(refusal)

    async def write(self, rows: Sequence[EventRow]) -> set[EventKey]:
        """Store rows in the next group commit; the keys that were newly stored (see EventWriter.write)."""
        admit(len(rows), self._pending, self._queue_limit, closed=self._closed, stopped=self._stopped)
        assert self._ready is not None, "start() first"
        waiter: asyncio.Future[set[EventKey]] = asyncio.get_running_loop().create_future()
        self._pending += len(rows)
        self._jobs.append(_LoopJob(rows, waiter))
        telemetry.WRITER_QUEUE_EVENTS.inc(len(rows))
        self._ready.set()
        return await waiter

    async def shutdown(self, timeout: float | None) -> None:
        await self.close(timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Stop taking work, commit what was queued, close the connections."""
        if self._closed or self._ready is None:
            self._closed = True
            if self._projection is not None:
                self._projection.stop(0)
            return
        self._closed = True
        self._ready.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        _done, late = await asyncio.wait(self._committers, timeout=timeout)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._refuse_queued(WriterClosed("the server shut down before this was written"))
        if self._projection is not None:
            # A projection batch under way finishes (or fails and stays queued in the database).
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            await asyncio.to_thread(self._projection.stop, left)

    async def _commit_forever(self) -> None:
        assert self._ready is not None
        held = _HeldConnection()
        try:
            while True:
                if not self._jobs:
                    if self._closed:
                        await held.close()
                        return
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                group: list[_LoopJob] = []
                size = 0
                while self._jobs and size < self._max_batch:
                    job = self._jobs.popleft()
                    group.append(job)
                    size += len(job.rows)
                if self._jobs:
                    self._ready.set()  # another committer may take the rest meanwhile
                await self._commit(held, group, size)
        except BaseException:
            self._stopped = True
            raise
        finally:
            held.drop()

    async def _commit(self, held: _HeldConnection, group: list[_LoopJob], size: int) -> None:
        schedule = None if self._projection is None else self._projection.schedule
        recent_requests = 0 if schedule is None else schedule.count_requests(len(group))
        outcomes: list[Outcome] = []
        self._writing += 1
        try:
            started = time.perf_counter()
            outcomes = await self._attempt(held, group)
            telemetry.observe_commit(time.perf_counter() - started, size, len(group))
        except Exception as exc:  # never leave a request waiting, whatever went wrong here
            log.error("writer failure: %s", one_line(exc), exc_info=exc)
            outcomes = [exc] * len(group)
        finally:
            telemetry.WRITER_QUEUE_EVENTS.dec(size)
            self._pending -= size
            self._writing -= 1
            for job, outcome in zip(group, outcomes or [WriterClosed("stopped")] * len(group), strict=True):
                if job.waiter.done():  # cancelled: that request's client saw no answer
                    continue
                if isinstance(outcome, BaseException):
                    job.waiter.set_exception(outcome)
                else:
                    job.waiter.set_result(outcome)
        stored = any(isinstance(outcome, set) and outcome for outcome in outcomes)
        if schedule is not None and (stored or self._projection_more_waiting()):
            nothing_behind = not self._jobs and self._writing == 0
            turn = schedule.turn_after_group(recent_requests, len(group), size, nothing_behind)
            if turn is not None:
                assert self._projection is not None
                self._projection.run_turn(turn.most)

    def _projection_more_waiting(self) -> bool:
        return self._projection is not None and self._projection.more_waiting

    async def _attempt(self, held: _HeldConnection, group: list[_LoopJob]) -> list[Outcome]:
        for attempt in range(1, TRANSIENT_RETRIES + 2):
            try:
                connection = await held.get(self._dsn)
            except Exception as exc:
                # Whatever stops a connection (refused, a wrong password, no such database) is no fault of
                # the rows: 503, and the next group tries again.
                return refusals(len(group), exc)
            try:
                return await self._write(connection, group)
            except Exception as exc:
                step = next_step(exc, attempt)
                if step == "retry":
                    continue
                if step == "refuse":
                    # The connection may be broken (a restarted server): the next group connects afresh.
                    held.drop()
                    return refusals(len(group), exc)
                if len(group) == 1:
                    return failed_alone(exc)
                outcomes: list[Outcome] = []
                for job in group:  # isolate the request at fault
                    outcomes += await self._attempt(held, [job])
                return outcomes
        raise AssertionError("unreachable")

    async def _write(self, connection: asyncpg.Connection, group: list[_LoopJob]) -> list[Outcome]:
        rows, claimed = claim_rows([job.rows for job in group])
        # One statement, so one round trip with no BEGIN and COMMIT of its own: it is a transaction.
        record = await connection.fetchrow(POSTGRES_INSERT["asyncpg"], orjson.dumps(rows).decode())
        assert record is not None
        return outcomes_by_request(keys_from_arrays(record[0], record[1]), claimed, len(group))
