"""When the writer's idle work (the projection) may run, so that requests come first and it still progresses.

Idle work runs:
* whenever no request has come for a moment (``IDLE_GRACE_S``), a full batch;
* under light load (a low rate of requests, a small group, nothing queued or being written behind it), right
  after the group, a small batch (at least ``LIGHT_LOAD_IDLE_BATCH`` items, as many as the group stored), so
  that a server that is never quiet for long still projects as events come;
* and under heavy load, for at least ``share`` of the writer's time (measured: after a batch that took
  t seconds, the next one may wait t x (1 - share) / share), so that a saturated server still makes progress.

``IdleSchedule`` keeps that account for the writers of one process, whichever thread or loop commits.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

from service.storage.engine import Transactor
from service.storage.failures import classify_failure, one_line

log = logging.getLogger("calltrail.writer")

# Work for the writer's idle time, given a transactor and at most how many items to take (None: the work's
# own batch size): one bounded piece of it per call, returning how much it did (0: nothing to do).
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


class IdleTurn(NamedTuple):
    most: int | None  # items at most (None: the work's own batch size)


class IdleSchedule:
    """The account of requests and idle work turns; safe to use from any thread."""

    def __init__(self, work: IdleWork, share: float) -> None:
        assert 0 < share <= 1
        self.work = work
        self._share = share
        self._lock = threading.Lock()
        self._pause_until = 0.0
        self._due = 0.0  # when requests may no longer hold idle work off; inf while a turn is under way
        # Requests committed, in windows of LIGHT_LOAD_WINDOW_S: how light the load is.
        self._window_started = 0.0
        self._window_requests = 0
        self._previous_window_requests = 0
        self._last_request_at = 0.0

    def count_requests(self, count: int) -> int:
        """Count a group's requests; how many came in this window and the one before."""
        with self._lock:
            now = time.monotonic()
            self._last_request_at = now
            if now - self._window_started >= LIGHT_LOAD_WINDOW_S:
                # The window just ended counts if it was the last; after a longer quiet, nothing before does.
                ended_now = now - self._window_started < 2 * LIGHT_LOAD_WINDOW_S
                self._previous_window_requests = self._window_requests if ended_now else 0
                self._window_started = now
                self._window_requests = 0
            self._window_requests += count
            return self._previous_window_requests + self._window_requests

    def quiet_for(self, seconds: float) -> bool:
        """Whether no request has been counted for ``seconds``."""
        return time.monotonic() - self._last_request_at >= seconds

    @staticmethod
    def light_load(recent_requests: int, group_requests: int, nothing_behind: bool) -> bool:
        return (
            recent_requests < LIGHT_LOAD_REQUESTS
            and group_requests <= LIGHT_LOAD_GROUP_REQUESTS
            and nothing_behind
        )

    def turn_after_group(
        self, recent_requests: int, group_requests: int, group_events: int, nothing_behind: bool
    ) -> IdleTurn | None:
        """The turn a writer takes right after committing a group, if idle work may run now (``take_turn``);
        the writer must then ``run`` it with ``most``."""
        light_load = self.light_load(recent_requests, group_requests, nothing_behind)
        if not self.take_turn(light_load):
            return None
        # Under light load, as much as the group stored: large batches must not outrun the projection.
        return IdleTurn(max(LIGHT_LOAD_IDLE_BATCH, group_events) if light_load else None)

    def take_turn(self, light_load: bool) -> bool:
        """Whether idle work may run now: under light load when no other turn is under way, else once requests
        may no longer hold it off. Whoever asks first takes the turn, and must then ``run`` it."""
        with self._lock:
            if self._due == math.inf or (not light_load and time.monotonic() < self._due):
                return False
            self._due = math.inf  # until this turn ends
            return True

    def run(self, transactor: Transactor, most: int | None = None) -> bool:
        """One piece of idle work (a turn taken, or idle time), of at most ``most`` items; whether more may be
        waiting. Sets when requests may next hold it off no longer: after work that took t seconds,
        t x (1 - share) / share later."""
        started = time.monotonic()
        if started < self._pause_until:
            with self._lock:
                self._due = self._pause_until
            return False
        more = False
        try:
            more = self.work(transactor, most) > 0
        except Exception as exc:
            # Nothing is lost: what the idle work did not finish stays queued in the database.
            kind = classify_failure(exc)
            log.error("projection paused for %.0f s (%s): %s", IDLE_BACKOFF_S, kind, one_line(exc))
            self._pause_until = time.monotonic() + IDLE_BACKOFF_S
        finished = time.monotonic()
        with self._lock:
            due = finished + (finished - started) * (1 - self._share) / self._share
            self._due = max(due, self._pause_until)
        return more


class SealingWork(Protocol):
    """The sealer (storage/seals.py, ``Sealer``) as idle work: whether it is due (or long overdue), and one
    turn of it."""

    def due(self) -> bool: ...

    def overdue(self) -> bool: ...

    def __call__(self, transactor: Transactor, most: int | None = None) -> int: ...


class ProjectionAndSeal:
    """The projection, and the seal of the raw logs when it is due: one piece of either per turn.

    The projection comes first (reports wait for it; the seal only has to happen eventually): the sealer
    takes a turn the projection found nothing to do in, or, once it has had no turn for a whole interval (a
    projection backlog that lasts), one turn first, so a lasting load cannot starve the seal: it then
    seals one period an interval, and catches up with the projection once the load falls. The sealer
    keeps its own failures (it logs them and waits its interval), so they never pause the projection."""

    def __init__(self, projection: IdleWork, sealer: SealingWork) -> None:
        self.projection = projection
        self.sealer = sealer
        self._sealed_last = False

    def __call__(self, transactor: Transactor, most: int | None = None) -> int:
        if not self._sealed_last and self.sealer.overdue():
            self._sealed_last = True
            sealed = self.sealer(transactor, most)
            if sealed:
                return sealed
        self._sealed_last = False
        projected = self.projection(transactor, most)
        if projected or not self.sealer.due():
            return projected
        self._sealed_last = True
        return self.sealer(transactor, most)
