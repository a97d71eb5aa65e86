"""What can go wrong when writing events, and what the caller is told: refused (503) or failed (isolated)."""

from __future__ import annotations

import logging
import sqlite3
from typing import Literal

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from service import telemetry
from service.storage.events import EventKey

log = logging.getLogger("calltrail.writer")


class StorageUnavailable(RuntimeError):
    """The database could not take the write (down, locked, full); nothing of the request was stored."""


class Overloaded(StorageUnavailable):
    """Too much work is already waiting; try again shortly."""


class WriterClosed(StorageUnavailable):
    """The process is shutting down and takes no new work."""


Outcome = set[EventKey] | BaseException


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


def next_step(exc: Exception, attempt: int) -> Literal["retry", "refuse", "isolate"]:
    """What a writer does after its ``attempt``-th try of a group failed with ``exc``: try the group again
    (a transient abort), refuse it (503: the database cannot take it now), or write its requests one by one
    so that the one at fault fails alone."""
    kind = classify_failure(exc)
    if kind == "retry" and attempt <= TRANSIENT_RETRIES:
        log.warning("transaction aborted (%s); retrying", one_line(exc))
        return "retry"
    return "refuse" if kind in ("retry", "unavailable") else "isolate"


def failed_alone(exc: Exception) -> list[Outcome]:
    """The outcome of a request whose rows fail on their own: logged, counted, answered 500."""
    log.error("write failed: %s", one_line(exc), exc_info=exc)
    telemetry.WRITER_FAILURES.labels("error").inc()
    return [exc]


def refusals(count: int, exc: Exception) -> list[Outcome]:
    """The outcomes of a group of ``count`` requests the database could not take: logged, counted, 503."""
    reason = one_line(exc)
    if "database or disk is full" in reason.lower():
        log.error(
            "the SQLite database is full (disk space, or CALLTRAIL_SQLITE_MAX_SIZE_MB); "
            "%d requests refused with 503 until there is room: %s",
            count,
            reason,
        )
    else:
        log.error("the database cannot take writes; %d requests refused with 503: %s", count, reason)
    telemetry.WRITER_FAILURES.labels("unavailable").inc(count)
    return [StorageUnavailable(reason) for _ in range(count)]


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]
