"""The seal of the raw logs, after the commit: sealing periods, recording removals, and verifying.

Ingestion never waits for the seal. A sealer (the server's idle work, or `calltrail seal`) takes the
committed rows of a log with ids above the last sealed period, up to an id no writer can still be filling,
and appends a *period* entry to the hash chain (``seals``): the rows' ids, their leaf hashes
(domain/seal.py) and the Merkle root, hashed with the previous entry's hash and signed with
CALLTRAIL_SEAL_KEY when set. Purges, quarantines, erasures and site removals delete rows through
``remove_rows``, which records each removed row's leaf (``seal_removed``) under a *removal* entry of the same
chain, so that ``verify`` can tell a row removed by CallTrail from one deleted behind its back.

Which ids are safe to seal: on SQLite writers are serialized and ids never come back (AUTOINCREMENT,
migration 0014), so every id up to the largest committed one is final. On PostgreSQL ids come from a
sequence and commit out of order: an insert may hold id 41 uncommitted while 42 is visible. The sealer
reads the sequence's last value L, then the transactions holding a write lock on the table (every insert
takes one before it draws an id, and keeps it to its end); once those have ended, no row with an id up to
L can still appear. The server's sealer notes (L, those transactions) and uses L at a later turn, when
they are gone; `calltrail seal` waits for them. Sealers take a transaction-level advisory lock (the
server's only tries it, so a long purge never holds up its thread), and ``seq`` is the primary key, so
two sealers cannot seal one period twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, bindparam, delete, func, insert, select, text

from service.domain import seal
from service.domain.instants import iso, now_ms
from service.storage.engine import Transactor
from service.storage.failures import one_line
from service.storage.schema import ccc_raw_records, events, seal_removed, seals

log = logging.getLogger("calltrail.seal")

# What is sealed of each log: every stored column of an event; of a raw CCC record what was received (its
# `session_id` and `problem` are read from the body again by a rebuild, so they may change lawfully).
LOG_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": tuple(column.name for column in events.columns),
    "ccc_raw_records": (
        "id",
        "sdk_app_id",
        "source",
        "action",
        "version",
        "push_uuid",
        "received_at",
        "body",
    ),
}
LOG_TABLES: dict[str, Table] = {"events": events, "ccc_raw_records": ccc_raw_records}
LOGS = tuple(LOG_COLUMNS)

PERIOD_MAX_ROWS = 10_000  # rows per sealed period at most (its leaves: 320 KB)
REMOVAL_MAX_ROWS = 50_000  # rows per removal entry at most
READ_CHUNK = 5_000
LOCK_KEY = int.from_bytes(hashlib.sha256(b"calltrail:seal").digest()[:8], "big", signed=True)
ENTRY_FIELDS = (
    "seq", "kind", "log", "first_id", "last_id", "row_count", "root", "ids_digest", "reason",
    "created_at", "prev_hash", "key_id",
)  # fmt: skip


class SealError(RuntimeError):
    """Sealing cannot go on safely (a sequence that caches values, a writer that never finishes)."""


# -- the chain ------------------------------------------------------------------------------------------


def take_lock(conn: Connection, *, wait: bool) -> bool:
    """The chain's lock for this transaction: on PostgreSQL an advisory lock (tried, or waited for); on
    SQLite the transaction's write lock is one already."""
    if conn.dialect.name != "postgresql":
        return True
    if wait:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar_one())


def chain_head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(seals.c.seq, seals.c.hash).order_by(seals.c.seq.desc()).limit(1)).first()
    return (0, seal.GENESIS) if row is None else (int(row.seq), str(row.hash))


def entry_values(entry: dict[str, Any]) -> list[Any]:
    """An entry's hashed fields, in ``ENTRY_FIELDS`` order."""
    return [seal.ids_digest(entry["ids"]) if name == "ids_digest" else entry[name] for name in ENTRY_FIELDS]


def _append(conn: Connection, seq: int, prev_hash: str, entry: dict[str, Any], key: bytes | None) -> None:
    entry = {**entry, "seq": seq, "prev_hash": prev_hash, "key_id": seal.key_id(key) if key else None}
    entry["hash"] = seal.entry_hash(entry_values(entry))
    entry["signature"] = seal.sign(key, entry["hash"]) if key else None
    conn.execute(insert(seals).values(**entry))


def leaf_of(log_name: str, row: Any) -> bytes:
    return seal.leaf(log_name, tuple(row))


def _select_columns(log_name: str) -> Any:
    table = LOG_TABLES[log_name]
    return select(*(table.c[name] for name in LOG_COLUMNS[log_name]))


# -- which ids are final ----------------------------------------------------------------------------------


@dataclass
class Watermark:
    """What a sealer knows of a log on PostgreSQL: the highest id known final, and a candidate (the
    sequence's value when read, and the transactions then writing the table) waiting to become final."""

    safe: int = 0
    candidate: tuple[int, tuple[str, ...]] | None = None


def _postgres_snapshot(conn: Connection, log_name: str) -> tuple[int, tuple[str, ...]]:
    sequence = conn.execute(
        text("SELECT pg_get_serial_sequence(CAST(:t AS text), 'id')"), {"t": log_name}
    ).scalar_one()
    # The sequence first, then who is writing: a transaction that drew an id up to `last` is writing now
    # (it took the table's lock before drawing) or has ended. (pg_sequences.last_value is NULL before the
    # first id is drawn.)
    cache, last = conn.execute(
        text(
            "SELECT cache_size, last_value FROM pg_sequences "
            "WHERE quote_ident(schemaname) || '.' || quote_ident(sequencename) = :s"
        ),
        {"s": sequence},
    ).one()
    if int(cache) > 1:
        raise SealError(f"{sequence} caches {cache} values per session: sealing needs CACHE 1")
    writing = conn.execute(
        text(
            "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE locktype = 'relation' "
            "AND relation = CAST(CAST(:t AS text) AS regclass) AND mode = 'RowExclusiveLock' "
            "AND pid <> pg_backend_pid()"
        ),
        {"t": log_name},
    ).scalars()
    return int(last or 0), tuple(sorted(str(v) for v in writing))


def _still_running(conn: Connection, transactions: Sequence[str]) -> bool:
    if not transactions:
        return False
    found = conn.execute(
        text("SELECT 1 FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid IN :v LIMIT 1").bindparams(
            bindparam("v", expanding=True)
        ),
        {"v": list(transactions)},
    ).first()
    return found is not None


def advance(conn: Connection, log_name: str, mark: Watermark) -> int:
    """The highest id of the log that no writer can still add a row at or below, as far as known now
    (without waiting)."""
    if conn.dialect.name != "postgresql":
        table = LOG_TABLES[log_name]
        mark.safe = max(mark.safe, int(conn.execute(select(func.max(table.c.id))).scalar() or 0))
        return mark.safe
    if mark.candidate is not None and not _still_running(conn, mark.candidate[1]):
        mark.safe = max(mark.safe, mark.candidate[0])
        mark.candidate = None
    last, writing = _postgres_snapshot(conn, log_name)
    if not writing:
        mark.safe = max(mark.safe, last)
        mark.candidate = None
    elif mark.candidate is None and last > mark.safe:
        mark.candidate = (last, writing)
    return mark.safe


def wait_until_final(conn: Connection, log_name: str, mark: Watermark, timeout_s: float) -> int:
    """``advance``, waiting (polling) for the writers under way when called; for `calltrail seal`."""
    safe = advance(conn, log_name, mark)
    deadline = time.monotonic() + timeout_s
    while mark.candidate is not None:
        if time.monotonic() > deadline:
            raise SealError(f"a transaction writing {log_name} has not ended in {timeout_s:.0f} s")
        time.sleep(0.02)
        if not _still_running(conn, mark.candidate[1]):
            mark.safe = max(mark.safe, mark.candidate[0])
            mark.candidate = None
            safe = mark.safe
    return safe


# -- sealing ------------------------------------------------------------------------------------------


def last_sealed(conn: Connection, log_name: str) -> int:
    found = conn.execute(
        select(func.max(seals.c.last_id)).where(seals.c.log == log_name, seals.c.kind == "period")
    ).scalar()
    return int(found or 0)


def seal_next(conn: Connection, log_name: str, safe: int, key: bytes | None, most: int) -> int:
    """Seal the next period of the log (at most ``most`` rows, none past ``safe``) in this transaction,
    which holds the chain's lock; how many rows it sealed (0: nothing new)."""
    after = last_sealed(conn, log_name)
    if safe <= after:
        return 0
    table = LOG_TABLES[log_name]
    rows = conn.execute(
        _select_columns(log_name)
        .where(table.c.id > after, table.c.id <= safe)
        .order_by(table.c.id)
        .limit(most)
    ).all()
    if not rows:
        return 0
    last_id = rows[-1][0] if len(rows) == most else safe
    ids = [int(row[0]) for row in rows]
    leaves = [leaf_of(log_name, row) for row in rows]
    seq, prev_hash = chain_head(conn)
    entry = {
        "kind": "period",
        "log": log_name,
        "first_id": after + 1,
        "last_id": last_id,
        "row_count": len(rows),
        "root": seal.merkle_root(leaves).hex(),
        "ids": seal.pack_ids(ids),
        "leaves": b"".join(leaves),
        "reason": None,
        "created_at": now_ms(),
    }
    _append(conn, seq + 1, prev_hash, entry, key)
    return len(rows)


@dataclass
class Sealer:
    """The server's sealer, as idle work (ingest/idle.py): at most every ``interval_s``, and while a
    backlog is left, one period per turn, of each log in turn. Owned by one thread."""

    key: bytes | None
    interval_s: float
    marks: dict[str, Watermark] = field(default_factory=lambda: {name: Watermark() for name in LOGS})
    _next_at: float = field(default_factory=time.monotonic)
    _last_turn_at: float = field(default_factory=time.monotonic)
    _more: bool = True  # a backlog may be left (from before this process started)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self) -> bool:
        return self.interval_s > 0 and (self._more or time.monotonic() >= self._next_at)

    def overdue(self) -> bool:
        """Due, and no turn for a whole interval (the projection has had every turn meanwhile): under a
        lasting load the seal still gets a period in each interval, and the projection the other turns."""
        return self.due() and time.monotonic() >= self._last_turn_at + self.interval_s

    def __call__(self, transactor: Transactor, most: int | None = None) -> int:
        """Seal one period of each log that has rows final and unsealed; the rows sealed."""
        limit = PERIOD_MAX_ROWS if most is None else max(1, min(PERIOD_MAX_ROWS, most * 20))
        with self._lock:
            try:
                sealed = transactor.run(lambda conn: self._turn(conn, limit))
            except Exception as exc:
                log.error("sealing paused for %.0f s: %s", self.interval_s, one_line(exc))
                sealed = 0
            self._more = sealed > 0
            self._last_turn_at = time.monotonic()
            if not self._more:
                self._next_at = time.monotonic() + self.interval_s
            return sealed

    def _turn(self, conn: Connection, limit: int) -> int:
        if not take_lock(conn, wait=False):
            return 0  # another worker is sealing, or a removal is under way
        return sum(
            seal_next(conn, name, advance(conn, name, self.marks[name]), self.key, limit) for name in LOGS
        )


def seal_all(
    run: Callable[[Callable[[Connection], int]], int], key: bytes | None, *, wait_s: float = 120.0
) -> dict[str, int]:
    """Seal every log up to what is final now (waiting for the writers under way), period by period, each
    in a transaction of its own (``run``); the rows sealed per log. For `calltrail seal` and tests."""
    marks = {name: Watermark() for name in LOGS}
    totals = dict.fromkeys(LOGS, 0)
    for name in LOGS:
        safe = run(lambda conn, name=name: wait_until_final(conn, name, marks[name], wait_s))  # type: ignore[misc]
        while True:

            def one(conn: Connection, name: str = name, safe: int = safe) -> int:
                take_lock(conn, wait=True)
                return seal_next(conn, name, safe, key, PERIOD_MAX_ROWS)

            sealed = run(one)
            if sealed == 0:
                break
            totals[name] += sealed
    return totals


# -- removals -------------------------------------------------------------------------------------------


def remove_rows(
    conn: Connection,
    log_name: str,
    where: ColumnElement[bool],
    reason: str,
    key: bytes | None,
    *,
    before_delete: Callable[[list[int]], None] | None = None,
) -> int:
    """Delete the log's rows matching ``where`` in this transaction, recording each one's leaf under a
    removal entry of the chain (one per ``REMOVAL_MAX_ROWS``), so that verify accounts for them. Takes the
    chain's lock (waiting for a sealer). ``before_delete`` sees each chunk's ids before they go (to copy
    or delete what refers to them). Returns how many rows were removed."""
    table = LOG_TABLES[log_name]

    def chunks() -> Iterator[list[Any]]:
        last = 0
        while rows := conn.execute(
            _select_columns(log_name).where(where, table.c.id > last).order_by(table.c.id).limit(READ_CHUNK)
        ).all():
            yield list(rows)
            last = rows[-1][0]

    return _remove(conn, log_name, chunks(), reason, key, before_delete)


def remove_ids(
    conn: Connection,
    log_name: str,
    ids: Sequence[int],
    reason: str,
    key: bytes | None,
    *,
    before_delete: Callable[[list[int]], None] | None = None,
) -> int:
    """``remove_rows`` of the rows with these ids (ascending)."""
    table = LOG_TABLES[log_name]

    def chunks() -> Iterator[list[Any]]:
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            rows = conn.execute(
                _select_columns(log_name).where(table.c.id.in_(part)).order_by(table.c.id)
            ).all()
            if rows:
                yield list(rows)

    return _remove(conn, log_name, chunks(), reason, key, before_delete)


def _remove(
    conn: Connection,
    log_name: str,
    chunks: Iterator[list[Any]],
    reason: str,
    key: bytes | None,
    before_delete: Callable[[list[int]], None] | None,
) -> int:
    take_lock(conn, wait=True)
    table = LOG_TABLES[log_name]
    seq, prev_hash = chain_head(conn)
    total = 0
    entry_leaves: list[bytes] = []
    entry_ids: list[int] = []

    def close_entry() -> None:
        nonlocal seq, prev_hash
        if not entry_ids:
            return
        entry = {
            "kind": "removal",
            "log": log_name,
            "first_id": entry_ids[0],
            "last_id": entry_ids[-1],
            "row_count": len(entry_ids),
            "root": seal.merkle_root(entry_leaves).hex(),
            "ids": None,
            "leaves": None,
            "reason": reason,
            "created_at": now_ms(),
        }
        _append(conn, seq + 1, prev_hash, entry, key)
        seq, prev_hash = chain_head(conn)
        entry_ids.clear()
        entry_leaves.clear()

    for rows in chunks:
        ids = [int(row[0]) for row in rows]
        leaves = [leaf_of(log_name, row) for row in rows]
        conn.execute(
            insert(seal_removed),
            [
                {"log": log_name, "row_id": i, "leaf": lf, "seq": seq + 1}
                for i, lf in zip(ids, leaves, strict=True)
            ],
        )
        if before_delete is not None:
            before_delete(ids)
        conn.execute(delete(table).where(table.c.id.in_(ids)))
        entry_ids.extend(ids)
        entry_leaves.extend(leaves)
        total += len(ids)
        if len(entry_ids) >= REMOVAL_MAX_ROWS:
            close_entry()
    close_entry()
    return total


# -- verifying ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    kind: str  # altered, inserted, deleted, chain, signature, removal
    message: str
    seq: int | None = None
    log: str | None = None
    row_id: int | None = None


@dataclass
class Report:
    entries: int = 0
    periods: int = 0
    removals: int = 0
    rows_checked: int = 0
    rows_removed: int = 0
    signed: int = 0
    unsigned: int = 0
    unsealed: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # log: (rows, oldest ms)
    last_hash: str = seal.GENESIS
    problems: list[Problem] = field(default_factory=list)
    # Why a part could not be checked (exit 2 when nothing was found altered).
    unchecked: list[str] = field(default_factory=list)


def _entries(conn: Connection) -> Iterator[Any]:
    after = 0
    columns = [c for c in seals.columns if c.name not in ("ids", "leaves")]
    while True:
        rows = conn.execute(
            select(*columns).where(seals.c.seq > after).order_by(seals.c.seq).limit(1000)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify(conn: Connection, key: bytes | None, *, max_problems: int = 20) -> Report:
    """Check the chain (order, links, hashes, signatures), every removal entry against its recorded
    leaves, and every sealed period against the rows stored now; count what is not sealed yet."""
    report = Report()

    def problem(p: Problem) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(p)

    expected_seq, prev_hash = 1, seal.GENESIS
    seen_signed = False
    own_key_id = seal.key_id(key) if key else None
    periods: dict[str, list[Any]] = {name: [] for name in LOGS}
    removals: list[Any] = []
    for entry in _entries(conn):
        report.entries += 1
        where = f"seal {entry.seq}"
        if entry.seq != expected_seq:
            problem(
                Problem("chain", f"{where}: expected seal {expected_seq} here (seals missing)", entry.seq)
            )
        if entry.prev_hash != prev_hash:
            problem(Problem("chain", f"{where}: does not follow the previous seal's hash", entry.seq))
        ids_blob = None
        if entry.kind == "period":
            ids_blob = conn.execute(select(seals.c.ids).where(seals.c.seq == entry.seq)).scalar()
        values = {**entry._mapping, "ids": ids_blob}
        if seal.entry_hash(entry_values(values)) != entry.hash:
            problem(Problem("chain", f"{where}: its fields were changed (hash mismatch)", entry.seq))
        if entry.signature is None:
            report.unsigned += 1
            if key and seen_signed:
                problem(
                    Problem(
                        "signature", f"{where}: unsigned after signed seals (signature removed)", entry.seq
                    )
                )
        else:
            seen_signed = True
            report.signed += 1
            if key is None:
                if "signed" not in " ".join(report.unchecked):
                    report.unchecked.append("seals are signed but CALLTRAIL_SEAL_KEY is not set")
            elif entry.key_id != own_key_id:
                note = f"seals signed with key {entry.key_id}, CALLTRAIL_SEAL_KEY is key {own_key_id}"
                if note not in report.unchecked:
                    report.unchecked.append(note)
            elif not seal.signature_matches(key, entry.hash, entry.signature):
                problem(Problem("signature", f"{where}: the signature does not match", entry.seq))
        if entry.log not in LOG_COLUMNS:
            problem(Problem("chain", f"{where}: names no known log ({entry.log!r})", entry.seq))
        elif entry.kind == "period":
            periods[entry.log].append(entry)
        else:
            removals.append(entry)
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    report.last_hash = prev_hash
    report.periods = sum(len(p) for p in periods.values())
    report.removals = len(removals)
    _check_removals(conn, removals, report, problem)
    for name in LOGS:
        _check_periods(conn, name, periods[name], report, problem)
    return report


def _check_removals(
    conn: Connection, removals: list[Any], report: Report, problem: Callable[[Problem], None]
) -> None:
    known = set()
    for entry in removals:
        known.add(entry.seq)
        rows = conn.execute(
            select(seal_removed.c.row_id, seal_removed.c.leaf, seal_removed.c.log)
            .where(seal_removed.c.seq == entry.seq)
            .order_by(seal_removed.c.row_id)
        ).all()
        leaves = [bytes(r.leaf) for r in rows]
        report.rows_removed += len(rows)
        intact = (
            len(rows) == entry.row_count
            and all(r.log == entry.log for r in rows)
            and seal.merkle_root(leaves).hex() == entry.root
            and (not rows or (rows[0].row_id == entry.first_id and rows[-1].row_id == entry.last_id))
        )
        if not intact:
            problem(
                Problem(
                    "removal",
                    f"seal {entry.seq} (removal of {entry.row_count} {entry.log} rows, {entry.reason}): "
                    f"its recorded rows were changed ({len(rows)} found)",
                    entry.seq,
                    entry.log,
                )
            )
    for seq, count in conn.execute(
        select(seal_removed.c.seq, func.count()).group_by(seal_removed.c.seq).order_by(seal_removed.c.seq)
    ):
        if seq not in known:
            problem(
                Problem(
                    "removal", f"{count} removed-row records name seal {seq}, which records no removal", seq
                )
            )


def _check_periods(
    conn: Connection, log_name: str, periods: list[Any], report: Report, problem: Callable[[Problem], None]
) -> None:
    table = LOG_TABLES[log_name]
    noun = "event" if log_name == "events" else "raw CCC record"
    expected_first = 1
    for entry in periods:
        sealed_at = iso(entry.created_at)
        where = f"seal {entry.seq} ({log_name} ids {entry.first_id}-{entry.last_id}, sealed {sealed_at})"
        if entry.first_id != expected_first:
            problem(
                Problem("chain", f"{where}: expected to start at id {expected_first}", entry.seq, log_name)
            )
        expected_first = entry.last_id + 1
        blobs = conn.execute(select(seals.c.ids, seals.c.leaves).where(seals.c.seq == entry.seq)).one()
        try:
            sealed_ids = seal.unpack_ids(bytes(blobs.ids))
            sealed_leaves = seal.split_leaves(bytes(blobs.leaves))
        except Exception:
            problem(Problem("chain", f"{where}: its stored leaves cannot be read", entry.seq, log_name))
            continue
        if (
            len(sealed_ids) != len(sealed_leaves)
            or len(sealed_ids) != entry.row_count
            or seal.merkle_root(sealed_leaves).hex() != entry.root
        ):
            problem(Problem("chain", f"{where}: its stored leaves do not give its root", entry.seq, log_name))
            continue
        sealed = dict(zip(sealed_ids, sealed_leaves, strict=True))
        removed = {
            int(r.row_id): bytes(r.leaf)
            for r in conn.execute(
                select(seal_removed.c.row_id, seal_removed.c.leaf).where(
                    seal_removed.c.log == log_name,
                    seal_removed.c.row_id >= entry.first_id,
                    seal_removed.c.row_id <= entry.last_id,
                )
            )
        }
        stored: dict[int, Any] = {}
        for found in conn.execute(
            _select_columns(log_name)
            .where(table.c.id >= entry.first_id, table.c.id <= entry.last_id)
            .order_by(table.c.id)
        ):
            stored[int(found[0])] = found
        report.rows_checked += len(stored)
        for row_id in sorted(set(sealed) | set(stored)):
            row = stored.get(row_id)
            named = f"{noun} {row_id}" + ("" if row is None else _describe(log_name, row))
            if row is None:
                if row_id not in removed:
                    problem(Problem("deleted", f"{where}: {named} was deleted", entry.seq, log_name, row_id))
                elif removed[row_id] != sealed[row_id]:
                    problem(
                        Problem(
                            "altered",
                            f"{where}: {named} was altered before it was removed",
                            entry.seq,
                            log_name,
                            row_id,
                        )
                    )
            elif row_id not in sealed or row_id in removed:
                again = " (at the id of a row removed by CallTrail)" if row_id in removed else ""
                problem(
                    Problem(
                        "inserted",
                        f"{where}: {named} was inserted after the seal{again}",
                        entry.seq,
                        log_name,
                        row_id,
                    )
                )
            elif leaf_of(log_name, row) != sealed[row_id]:
                problem(Problem("altered", f"{where}: {named} was altered", entry.seq, log_name, row_id))
    received = table.c.received_at
    count, oldest = conn.execute(
        select(func.count(), func.min(received)).where(table.c.id >= expected_first)
    ).one()
    report.unsealed[log_name] = (int(count), None if oldest is None else int(oldest))


def _describe(log_name: str, row: Any) -> str:
    if log_name == "events":
        return f" (site {row.site_id}, event id {row.event_id}, type {row.type})"
    return f" (SdkAppId {row.sdk_app_id}, {row.source} {row.action or ''})".replace(" )", ")")
