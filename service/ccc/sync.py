"""Reconciliation: CCC's records pulled from its API (ccc/pull.py) into the raw log, resumably.

``sync_range`` pulls DescribeTelCdr and DescribeIMCdrs of one app over a range (``calltrail ccc sync``);
``ScheduledSync.run_once`` pulls each registered app's recent past (the service's scheduled reconciliation,
``CALLTRAIL_CCC_SYNC_INTERVAL_S``), and ``SyncScheduler`` runs it every interval in a thread.

Each page is **one transaction**: its records into ``ccc_raw_records`` (``source`` ``pull``, ``action`` the
API action, ``version`` None, ``body`` the record as compact JSON with the customer's side protected under
the PII policy, as pushes are), the projection hook given by the caller (``project``: the connection, the
app, the SessionIds of the records this page stored new), and the state in ``ccc_sync_state``: for a range
sync the cursor to resume from, for a scheduled run the extended lease. A crash loses at most the page in
flight, and a range sync started again over the same range resumes from the cursor.

A pulled record's ``push_uuid`` is ``pull:`` and 40 hex digits of SHA-256 over the action and the record's
canonical JSON (sorted keys, compact) as it is stored, so the unique constraint on (app, push_uuid) stores a
record pulled twice once, and a record CCC changed since as a new row. Under ``raw`` that is the record as
received; under ``mask`` and ``hmac`` it is the protected record, because a digest of the unprotected one
would let anyone holding the table try every phone number against it.

The scheduled run takes a lease per (app, action) first: a conditional UPDATE that succeeds only while no
other holder's lease is unexpired, so of several workers (processes, hosts) exactly one pulls a window. The
lease outlasts a run's pages: each page's transaction extends it (and a run that finds it taken over stops);
the end of a run releases it and records the window's end, from which the next run starts, ``lookback``
earlier (records can appear late; what is pulled again is stored once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service import telemetry
from service.ccc.apps import list_apps
from service.ccc.pacing import PullStats, RequestPacer
from service.ccc.pull import IM_CDRS, TEL_CDR, Action, Page, PullCursor, PullOptions, iter_pages
from service.ccc.raw_log import RawRecordRow, store_record
from service.ccc.sdk import CccApi, CccSdk
from service.config import Settings
from service.domain.call_parsing import session_of
from service.domain.call_record_pii import protect_raw_record
from service.domain.instants import iso, now_ms
from service.domain.pii import PiiPolicy
from service.storage.engine import make_engine
from service.storage.schema import ccc_sync_state

log = logging.getLogger("calltrail.ccc")

Project = Callable[[Connection, int, Sequence[str]], None]
"""The projection of stored records into call records: called in each page's transaction, after the page's
records are stored, with the app and the SessionIds of the records the page stored new (never empty)."""

ACTIONS: tuple[Action, ...] = (TEL_CDR, IM_CDRS)
LEASE_MS = 10 * 60 * 1000  # a run's lease; each page extends it, so only a stalled holder loses it
SCHEDULE_MARGIN_MS = 60_000  # a scheduled window ends this long before now
FIRST_RUN_DELAY_S = 30.0  # after the service starts (or the interval, when shorter)


# --- what is stored -------------------------------------------------------------------------------------


def _json(document: object, *, sort_keys: bool = False) -> str:
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    except UnicodeEncodeError:  # pragma: no cover - a lone surrogate from a \\ud800 escape
        return json.dumps(document, separators=(",", ":"), sort_keys=sort_keys)


def stored_body(record: Mapping[str, object], policy: PiiPolicy) -> str:
    """The raw log's body of a pulled record: compact JSON, the customer's side protected under the policy."""
    return _json(protect_raw_record(dict(record), policy))


def pulled_push_uuid(action: str, record: Mapping[str, object], policy: PiiPolicy) -> str:
    """``pull:`` and 40 hex digits of SHA-256 over the action and the stored record's canonical JSON."""
    canonical = _json(protect_raw_record(dict(record), policy), sort_keys=True)
    return "pull:" + hashlib.sha256(f"{action}\n{canonical}".encode()).hexdigest()[:40]


def session_key(action: str, body: str, sdk_app_id: int) -> tuple[str | None, str | None]:
    """The stored record's SessionId as the call records read it (domain/call_parsing.py), and the problem
    when it cannot be read (it is stored all the same, and counted as unreadable)."""
    session_id, problem = session_of(sdk_app_id, "pull", action, body)
    if problem is not None:
        # The field's path only: the problem may quote the value, and the value may be a customer's number.
        field_path = problem.partition(":")[0]
        log.warning("CCC sync: a %s record of app %d is unreadable at %s", action, sdk_app_id, field_path)
    return session_id, problem


@dataclass
class ActionReport:
    """What a sync did for one action: records pulled, stored new, stored before, unreadable (stored, no
    SessionId), and the pull's requests and retries (``pull``)."""

    action: str
    pulled: int = 0
    stored: int = 0
    already: int = 0
    unreadable: int = 0
    pull: PullStats = field(default_factory=PullStats)
    resumed_from: PullCursor | None = None
    replaced_range: tuple[int, int] | None = None  # another range's interrupted sync, whose cursor is dropped
    complete: bool = False


def store_page(conn: Connection, page: Page, *, policy: PiiPolicy, project: Project) -> tuple[int, int, int]:
    """A page's records into the raw log, then the projection hook, in the caller's transaction; what it
    counted (stored new, already stored, unreadable), for the caller to add once the transaction commits."""
    received_at = now_ms()
    stored = already = unreadable = 0
    sessions: dict[str, None] = {}  # in order, once each
    for record in page.records:
        body = stored_body(record, policy)
        key, problem = session_key(page.action, body, page.sdk_app_id)
        unreadable += key is None
        row = RawRecordRow(
            sdk_app_id=page.sdk_app_id,
            source="pull",
            action=page.action,
            version=None,
            push_uuid=pulled_push_uuid(page.action, record, policy),
            received_at=received_at,
            body=body,
            session_id=key,
            problem=problem,
        )
        if store_record(conn, row):
            stored += 1
            if key is not None:
                sessions[key] = None
        else:
            already += 1
    if sessions:
        project(conn, page.sdk_app_id, tuple(sessions))
    return stored, already, unreadable


def _counted(report: ActionReport, page: Page, counts: tuple[int, int, int]) -> None:
    stored, already, unreadable = counts
    report.pulled += len(page.records)
    report.stored += stored
    report.already += already
    report.unreadable += unreadable
    telemetry.count_ccc_sync(page.action, stored, already, unreadable)


# --- the state: cursors, leases, marks ------------------------------------------------------------------


@dataclass(frozen=True)
class SyncState:
    sdk_app_id: int
    action: str
    range_start_ms: int | None
    range_end_ms: int | None
    cursor: PullCursor | None
    lease_holder: str | None
    lease_expires_at: int | None
    scheduled_end_ms: int | None


def sync_state(conn: Connection, sdk_app_id: int, action: str) -> SyncState | None:
    t = ccc_sync_state
    row = conn.execute(select(t).where(t.c.sdk_app_id == sdk_app_id, t.c.action == action)).first()
    if row is None:
        return None
    cursor = PullCursor.decode(row.cursor) if row.cursor is not None else None
    return SyncState(
        row.sdk_app_id,
        row.action,
        row.range_start_ms,
        row.range_end_ms,
        cursor,
        row.lease_holder,
        row.lease_expires_at,
        row.scheduled_end_ms,
    )


def _upsert(conn: Connection, sdk_app_id: int, action: str, changes: Mapping[str, object]) -> None:
    """The (app, action) row with ``changes``, made if missing (changes then only where it is new)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {"sdk_app_id": sdk_app_id, "action": action, "updated_at": now_ms(), **changes}
    statement = dialect.insert(ccc_sync_state).values(**values)
    update_set = {k: v for k, v in values.items() if k not in ("sdk_app_id", "action")}
    conn.execute(statement.on_conflict_do_update(index_elements=["sdk_app_id", "action"], set_=update_set))


def _ensure_row(conn: Connection, sdk_app_id: int, action: str) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ccc_sync_state).values(
        sdk_app_id=sdk_app_id, action=action, updated_at=now_ms()
    )
    conn.execute(statement.on_conflict_do_nothing(index_elements=["sdk_app_id", "action"]))


def save_cursor(
    conn: Connection, sdk_app_id: int, action: str, span: tuple[int, int], cursor: PullCursor | None
) -> None:
    """A range sync's cursor, or (None) the end of it: the range and cursor are cleared."""
    if cursor is None:
        _upsert(conn, sdk_app_id, action, {"range_start_ms": None, "range_end_ms": None, "cursor": None})
    else:
        _upsert(
            conn,
            sdk_app_id,
            action,
            {"range_start_ms": span[0], "range_end_ms": span[1], "cursor": cursor.encode()},
        )


def acquire_lease(
    engine: Engine, sdk_app_id: int, action: str, holder: str, *, now: int, lease_ms: int = LEASE_MS
) -> bool:
    """Take the (app, action) lease until ``now + lease_ms``, if nobody else holds an unexpired one; True
    when this holder has it. One conditional UPDATE decides: on PostgreSQL a second UPDATE waits for the
    first's commit and then finds the lease taken; SQLite runs one writer at a time."""
    t = ccc_sync_state
    with engine.begin() as conn:
        _ensure_row(conn, sdk_app_id, action)
        result = conn.execute(
            update(t)
            .where(
                t.c.sdk_app_id == sdk_app_id,
                t.c.action == action,
                or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at <= now, t.c.lease_holder == holder),
            )
            .values(lease_holder=holder, lease_expires_at=now + lease_ms, updated_at=now)
        )
        return result.rowcount == 1


def extend_lease(
    conn: Connection, sdk_app_id: int, action: str, holder: str, *, now: int, lease_ms: int = LEASE_MS
) -> bool:
    """Extend this holder's lease (in the caller's transaction); False when it is no longer this holder's."""
    t = ccc_sync_state
    result = conn.execute(
        update(t)
        .where(t.c.sdk_app_id == sdk_app_id, t.c.action == action, t.c.lease_holder == holder)
        .values(lease_expires_at=now + lease_ms, updated_at=now)
    )
    return result.rowcount == 1


def release_lease(
    conn: Connection, sdk_app_id: int, action: str, holder: str, *, completed_end_ms: int | None = None
) -> bool:
    """Give the lease up (and, for a completed run, record its window's end); False when it was not held."""
    t = ccc_sync_state
    values: dict[str, object] = {"lease_holder": None, "lease_expires_at": None, "updated_at": now_ms()}
    if completed_end_ms is not None:
        values["scheduled_end_ms"] = completed_end_ms
    result = conn.execute(
        update(t)
        .where(t.c.sdk_app_id == sdk_app_id, t.c.action == action, t.c.lease_holder == holder)
        .values(**values)
    )
    return result.rowcount == 1


class LeaseLost(RuntimeError):
    """The lease expired and another worker took it: this run stops, the other pulls."""


# --- a range, by hand -----------------------------------------------------------------------------------


def sync_range(
    engine: Engine,
    api: CccApi,
    sdk_app_id: int,
    start_ms: int,
    end_ms: int,
    *,
    policy: PiiPolicy,
    project: Project,
    now_ms: int,
    actions: Sequence[Action] = ACTIONS,
    clip: bool = False,
    restart: bool = False,
    on_page: Callable[[ActionReport, Page], None] | None = None,
    on_start: Callable[[ActionReport], None] | None = None,
    pull_options: PullOptions | None = None,
) -> list[ActionReport]:
    """Every record of [start_ms, end_ms) of each action into the raw log, one transaction per page. An
    interrupted sync of the same range (and action) resumes from its stored cursor unless ``restart``; one
    of another range is replaced (``ActionReport.replaced_range``). ``on_start`` and ``on_page`` (after each
    page's commit) report progress. Errors of the pull (``CccError``, ``CccRangeError``) propagate, with the
    cursor of the last committed page stored."""
    options = PullOptions(**pull_options) if pull_options else PullOptions()
    options.setdefault("pacer", RequestPacer())  # shared by the actions, which run one after the other
    span = (start_ms, end_ms)
    reports = []
    for action in actions:
        report = ActionReport(action)
        reports.append(report)
        with engine.connect() as conn:
            state = sync_state(conn, sdk_app_id, action)
        cursor = None
        if state is not None and state.cursor is not None:
            if (state.range_start_ms, state.range_end_ms) == span and not restart:
                cursor = report.resumed_from = state.cursor
            elif (state.range_start_ms, state.range_end_ms) != span:
                assert state.range_start_ms is not None and state.range_end_ms is not None
                report.replaced_range = (state.range_start_ms, state.range_end_ms)
        if on_start is not None:
            on_start(report)
        run_options: PullOptions = {**options, "cursor": cursor, "clip": clip, "stats": report.pull}
        pages = iter_pages(api, action, sdk_app_id, start_ms, end_ms, now_ms=now_ms, **run_options)
        seen = False
        for page in pages:
            seen = True
            with engine.begin() as conn:
                counts = store_page(conn, page, policy=policy, project=project)
                save_cursor(conn, sdk_app_id, action, span, page.next_cursor)
            _counted(report, page, counts)
            if on_page is not None:
                on_page(report, page)
        if not seen:  # an empty range: nothing to resume any more
            with engine.begin() as conn:
                save_cursor(conn, sdk_app_id, action, span, None)
        report.complete = True
    return reports


# --- the schedule ---------------------------------------------------------------------------------------


def lease_holder_id() -> str:
    """This worker's name in a lease: host, process and a random part (a restarted process is another)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class ScheduledResult:
    sdk_app_id: int
    action: str
    outcome: str  # ok, failed or skipped (another holder has the lease)
    window: tuple[int, int] | None = None
    report: ActionReport | None = None
    error: str | None = None


class _Stopped(Exception):
    pass


class ScheduledSync:
    """One scheduled reconciliation, for every registered app and both actions: the window from the last
    completed window's end less ``lookback_ms`` (or now less it, the first time) to now less a margin,
    pulled under the (app, action) lease with the start clipped to CCC's 180 days."""

    def __init__(
        self,
        engine: Engine,
        api: CccApi,
        *,
        policy: PiiPolicy,
        project: Project,
        lookback_ms: int,
        holder: str | None = None,
        lease_ms: int = LEASE_MS,
        margin_ms: int = SCHEDULE_MARGIN_MS,
        clock: Callable[[], int] = now_ms,
        pull_options: PullOptions | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.engine = engine
        self.api = api
        self.policy = policy
        self.project = project
        self.lookback_ms = lookback_ms
        self.holder = holder or lease_holder_id()
        self.lease_ms = lease_ms
        self.margin_ms = margin_ms
        self.clock = clock
        self.pull_options = PullOptions(**pull_options) if pull_options else PullOptions()
        self.pull_options.setdefault("pacer", RequestPacer())
        self.should_stop = should_stop

    def run_once(self) -> list[ScheduledResult]:
        results: list[ScheduledResult] = []
        for app in list_apps(self.engine):
            for action in ACTIONS:
                if self.should_stop():
                    return results
                result = self._run(app.sdk_app_id, action)
                telemetry.CCC_SYNC_RUNS.labels(action, result.outcome).inc()
                results.append(result)
        return results

    def window(self, sdk_app_id: int, action: str, now: int) -> tuple[int, int]:
        with self.engine.connect() as conn:
            state = sync_state(conn, sdk_app_id, action)
        end = now - self.margin_ms
        mark = state.scheduled_end_ms if state is not None and state.scheduled_end_ms is not None else end
        return min(mark - self.lookback_ms, end), end

    def _run(self, sdk_app_id: int, action: Action) -> ScheduledResult:
        now = self.clock()
        try:
            leased = acquire_lease(
                self.engine, sdk_app_id, action, self.holder, now=now, lease_ms=self.lease_ms
            )
            window = self.window(sdk_app_id, action, now)
        except Exception as error:  # the database is away, say: the next app may fare no better, but try
            text = _error_text(error)
            log.warning("CCC scheduled sync of app %d %s failed: %s", sdk_app_id, action, text)
            return ScheduledResult(sdk_app_id, action, "failed", error=text)
        if not leased:
            log.debug("CCC scheduled sync: app %d %s is leased by another worker", sdk_app_id, action)
            return ScheduledResult(sdk_app_id, action, "skipped")
        report = ActionReport(action)
        try:
            options: PullOptions = {**self.pull_options, "clip": True, "stats": report.pull}
            for page in iter_pages(self.api, action, sdk_app_id, *window, now_ms=now, **options):
                with self.engine.begin() as conn:
                    counts = store_page(conn, page, policy=self.policy, project=self.project)
                    held = extend_lease(
                        conn, sdk_app_id, action, self.holder, now=self.clock(), lease_ms=self.lease_ms
                    )
                    if not held:
                        raise LeaseLost(f"the lease of app {sdk_app_id} {action} was taken over")
                _counted(report, page, counts)
                if page.next_cursor is not None and self.should_stop():
                    raise _Stopped
            with self.engine.begin() as conn:
                release_lease(conn, sdk_app_id, action, self.holder, completed_end_ms=window[1])
            report.complete = True
            log.info(
                "CCC scheduled sync: app %d %s from %s to %s: %d pulled, %d new, %d already stored, "
                "%d unreadable, %d requests",
                sdk_app_id,
                action,
                iso(window[0]),
                iso(window[1]),
                report.pulled,
                report.stored,
                report.already,
                report.unreadable,
                report.pull.requests,
            )
            return ScheduledResult(sdk_app_id, action, "ok", window, report)
        except _Stopped:
            self._release(sdk_app_id, action)
            return ScheduledResult(sdk_app_id, action, "failed", window, report, "stopped")
        except Exception as error:  # logged (_error_text holds no secret); the next interval tries again
            text = _error_text(error)
            log.warning("CCC scheduled sync of app %d %s failed: %s", sdk_app_id, action, text)
            self._release(sdk_app_id, action)
            return ScheduledResult(sdk_app_id, action, "failed", window, report, text)

    def _release(self, sdk_app_id: int, action: str) -> None:
        try:
            with self.engine.begin() as conn:
                release_lease(conn, sdk_app_id, action, self.holder)
        except Exception:  # the lease then expires by itself
            log.warning("CCC scheduled sync: could not release the lease of app %d %s", sdk_app_id, action)


def _error_text(error: Exception) -> str:
    """What the log says of a failure: a CccError's text is the API's code, message and RequestId, a database
    error's has no parameters (the engines hide them); neither holds the API key."""
    return f"{type(error).__name__}: {error}"[:500]


def sdk_from_settings(settings: Settings) -> CccSdk:
    """The SDK adapter with the settings' API key, endpoint and protocol."""
    return CccSdk(
        settings.ccc_secret_id,
        settings.ccc_secret_key,
        endpoint=settings.ccc_api_endpoint,
        protocol=settings.ccc_api_protocol,
    )


class SyncScheduler:
    """``ScheduledSync.run_once`` every ``interval_s`` in a daemon thread, with its own write engine; any
    failure is logged and the next interval tries again. ``stop`` ends it between two pages."""

    def __init__(self, settings: Settings, policy: PiiPolicy, project: Project) -> None:
        self.interval_s = float(settings.ccc_sync_interval_s)
        self._stop = threading.Event()
        self._engine = make_engine(settings, "write")
        self.sync = ScheduledSync(
            self._engine,
            sdk_from_settings(settings),
            policy=policy,
            project=project,
            lookback_ms=settings.ccc_sync_lookback_s * 1000,
            should_stop=self._stop.is_set,
        )
        self._thread = threading.Thread(target=self._loop, name="calltrail-ccc-sync", daemon=True)

    @classmethod
    def from_settings(cls, settings: Settings, policy: PiiPolicy, project: Project) -> SyncScheduler | None:
        """A scheduler when ``CALLTRAIL_CCC_SYNC_INTERVAL_S`` is set and the API key is; None otherwise."""
        if settings.ccc_sync_interval_s <= 0:
            return None
        if not settings.has_ccc_api_key:
            log.warning(
                "CALLTRAIL_CCC_SYNC_INTERVAL_S is set but CALLTRAIL_CCC_SECRET_ID and "
                "CALLTRAIL_CCC_SECRET_KEY are not: the scheduled reconciliation with CCC is off"
            )
            return None
        return cls(settings, policy, project)

    def start(self) -> None:
        log.info("CCC scheduled sync every %d s", self.interval_s)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._engine.dispose()

    def _loop(self) -> None:
        delay = min(FIRST_RUN_DELAY_S, self.interval_s)
        while not self._stop.wait(delay):
            try:
                self.sync.run_once()
            except Exception as error:  # listing the apps failed: the database is away, say
                log.warning("CCC scheduled sync failed: %s", _error_text(error))
            delay = self.interval_s
