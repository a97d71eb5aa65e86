"""Benchmark database drivers for CallTrail's event writer.

What it measures
----------------
The writer's hot path: one transaction per group of events, each group written with

    conn.execute(
        insert(events)
        .on_conflict_do_nothing(index_elements=[events.c.site_id, events.c.event_id])
        .returning(events.c.event_id),
        list_of_param_dicts,
    )

i.e. SQLAlchemy Core "insertmanyvalues" (multi-row VALUES + RETURNING), against:

* ``postgresql+psycopg`` (sync engine), ``postgresql+psycopg2`` (sync engine),
  ``postgresql+asyncpg`` (``create_async_engine``; skipped with a note if ``greenlet`` is not installed);
* SQLite stdlib driver (file in a temp dir, WAL, ``synchronous=FULL`` and ``NORMAL``) as a reference.

For each driver it runs group sizes 1, 50 and 500 rows per transaction with fresh, unique events, plus a
"half-dup" case at group size 50 where every other row already exists (ON CONFLICT / RETURNING path).

Alternative PostgreSQL write paths for a synchronous writer thread (group sizes 50 and 500 + half-dup at 50):

* ``psycopg3 unnest`` / ``psycopg2 unnest``: one ``text()`` statement per transaction,
  ``INSERT INTO events (...) SELECT * FROM unnest(CAST(:site_ids AS INTEGER[]), ...) ON CONFLICT (site_id,
  event_id) DO NOTHING RETURNING site_id, event_id`` with one list parameter per column;
* ``psycopg3 raw executemany``: the psycopg 3 DBAPI connection under the SQLAlchemy transaction
  (``conn.connection.driver_connection``), ``cursor.executemany(sql, rows, returning=True)`` (pipeline mode),
  RETURNING rows collected with ``cursor.nextset()``;
* ``asyncpg in a thread``: a dedicated thread owns a private event loop and an ``AsyncEngine``
  (``postgresql+asyncpg``) and runs each group with ``loop.run_until_complete(...)`` of
  ``async with engine.begin() as conn: await conn.run_sync(fn)``, ``fn`` executing the insertmanyvalues
  statement on the sync ``Connection`` facade;
* ``asyncpg loop-thread submit``: the same, but the event loop runs forever in a helper thread and the
  writer thread submits each group with ``asyncio.run_coroutine_threadsafe(...).result()``.

After the table, every PostgreSQL path is checked for duplicates *within one statement*: on a fresh table
holding row p, the group [a, b, a, c, b, p] must return exactly 3 rows and leave 4 rows in the table.
Each case uses a freshly created table and a fresh engine; engine connect, table creation, pre-existing
rows and a few warm-up transactions are not timed. Rows/s is offered rows divided by wall time of the
timed loop; ms/tx figures are per-transaction latencies (begin -> execute -> fetch RETURNING -> commit).
The number of rows returned by RETURNING is checked against the expected number of new rows.

PostgreSQL runs in a scratch database ``calltrail_bench_drivers`` that is created at start and
dropped at exit (server settings such as ``synchronous_commit`` are printed, not changed).

How to run (from the repository root)
-------------------------------------
    .venv/bin/python bench/drivers.py
    .venv/bin/python bench/drivers.py --pg-url postgresql://root@127.0.0.1:5432/ --rows 20000
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import shlex
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:  # sqlalchemy.ext.asyncio needs greenlet at import time; imported lazily at run time
    from sqlalchemy.ext.asyncio import AsyncEngine

DB_NAME = "calltrail_bench_drivers"
GROUP_SIZES = (1, 50, 500)
DUP_GROUP_SIZE = 50
WARMUP_GROUPS = 3
PRELOAD_GROUP_SIZE = 500
SITE_ID = 7
RAW_TARGET_BYTES = 300

Row = dict[str, Any]
T = TypeVar("T")
SyncWrite = Callable[[sa.Connection, list[Row]], int]  # writes one group inside an open transaction

metadata = sa.MetaData()
events = sa.Table(
    "events",
    metadata,
    # BIGSERIAL on PostgreSQL, INTEGER PRIMARY KEY (rowid alias) on SQLite
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("site_id", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("page_id", sa.String(36), nullable=False),
    sa.Column("page_url", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("client_ts", sa.BigInteger, nullable=False),
    sa.Column("sent_at", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.Column("event_at", sa.BigInteger, nullable=False),
    sa.Column("skew_ms", sa.BigInteger, nullable=False),
    sa.Column("ts_flag", sa.String(16), nullable=True),
    sa.Column("raw", sa.Text, nullable=False),
    sa.UniqueConstraint("site_id", "event_id", name="uq_events_site_event"),
)
CONFLICT_COLUMNS = [events.c.site_id, events.c.event_id]

PG_STMT: sa.Executable = (
    pg_dialect.insert(events)
    .on_conflict_do_nothing(index_elements=CONFLICT_COLUMNS)
    .returning(events.c.event_id)
)
SQLITE_STMT: sa.Executable = (
    sqlite_dialect.insert(events)
    .on_conflict_do_nothing(index_elements=CONFLICT_COLUMNS)
    .returning(events.c.event_id)
)

INSERT_COLUMNS = [c for c in events.c if c.name != "id"]
_INSERT_NAMES = ", ".join(c.name for c in INSERT_COLUMNS)
_PG = sa.create_engine("postgresql+psycopg://").dialect  # only to render column types; never connects

# one array parameter per column ("site_ids", "event_ids", ...); CAST(... AS t[]) rather than ":x::t[]", which
# SQLAlchemy's text() bind parser would not treat as a parameter
UNNEST_STMT = sa.text(
    f"INSERT INTO events ({_INSERT_NAMES}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c.name}s AS {c.type.compile(dialect=_PG)}[])" for c in INSERT_COLUMNS)
    + ") ON CONFLICT (site_id, event_id) DO NOTHING RETURNING site_id, event_id"
)
# psycopg 3 DBAPI statement (pyformat), executed once per row by cursor.executemany(..., returning=True)
RAW_EXECUTEMANY_SQL = (
    f"INSERT INTO events ({_INSERT_NAMES}) VALUES ("
    + ", ".join(f"%({c.name})s" for c in INSERT_COLUMNS)
    + ") ON CONFLICT (site_id, event_id) DO NOTHING RETURNING event_id"
)

EVENT_TYPES = ("page_open", "call_ringing", "call_answered", "form_change", "button_click", "call_ended")


# --------------------------------------------------------------------------------------------------- data


def make_rows(count: int, seed: int) -> list[Row]:
    """Deterministic event rows shaped like the writer's parameters, with a ~300-byte raw JSON."""
    rng = random.Random(seed)

    def new_uuid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    rows: list[Row] = []
    base_ms = 1_750_000_000_000
    page_id = new_uuid()
    seq = 0
    for i in range(count):
        if i % 20 == 0:
            page_id, seq = new_uuid(), 0
        seq += 1
        event_id = new_uuid()
        event_type = EVENT_TYPES[rng.randrange(len(EVENT_TYPES))]
        client_ts = base_ms + i * 37
        sent_at = client_ts + rng.randrange(0, 400)
        received_at = sent_at + rng.randrange(5, 80)
        skew_ms = received_at - sent_at
        page_url = f"https://ccc.example.com/popup/inbound?caller=1380013{i % 10000:04d}&queue={i % 13}"
        payload: dict[str, Any] = {
            "event_id": event_id,
            "page_id": page_id,
            "seq": seq,
            "type": event_type,
            "client_ts": client_ts,
            "sent_at": sent_at,
            "url": page_url,
            "data": {"session": f"s-{i % 997}", "agent": f"agent{i % 41}"},
        }
        size = len(orjson.dumps(payload))
        payload["data"]["note"] = "x" * max(0, RAW_TARGET_BYTES - size - 10)
        rows.append(
            {
                "site_id": SITE_ID,
                "event_id": event_id,
                "page_id": page_id,
                "page_url": page_url,
                "seq": seq,
                "type": event_type,
                "client_ts": client_ts,
                "sent_at": sent_at,
                "received_at": received_at,
                "event_at": client_ts,
                "skew_ms": skew_ms,
                "ts_flag": "clock_skew" if skew_ms > 60 else None,
                "raw": orjson.dumps(payload).decode(),
            }
        )
    return rows


def chunks(rows: Sequence[Row], size: int) -> Iterator[list[Row]]:
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])


@dataclass(frozen=True)
class Case:
    """One measured configuration of the workload (independent of the driver)."""

    label: str
    group_size: int
    rows: list[Row]  # timed rows, offered in groups of group_size
    preexisting: list[Row]  # inserted (untimed) before the timed loop
    warmup: list[Row]  # untimed warm-up rows, disjoint from everything else

    def expected_new(self, offered: int) -> int:
        # half-dup rows are interleaved new/existing starting with a new row at index 0
        return (offered + 1) // 2 if self.preexisting else offered


def build_cases(rows: int) -> list[Case]:
    data = make_rows(rows, seed=1)
    warmup = make_rows(WARMUP_GROUPS * max(GROUP_SIZES), seed=2)
    single_rows = max(50, rows // 10)
    cases = [
        Case("new", size, data[:single_rows] if size == 1 else data, [], warmup[: WARMUP_GROUPS * size])
        for size in GROUP_SIZES
    ]
    warm = warmup[: WARMUP_GROUPS * DUP_GROUP_SIZE]
    cases.append(Case("half-dup", DUP_GROUP_SIZE, data, data[1::2], warm))
    return cases


# ------------------------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class Measurement:
    driver: str
    case: Case
    txs: int
    rows: int
    returned: int
    seconds: float
    tx_ms: list[float]
    capped: bool

    @property
    def ok(self) -> bool:
        return self.returned == self.case.expected_new(self.rows)


def write_insertmanyvalues(stmt: sa.Executable) -> SyncWrite:
    def write(conn: sa.Connection, group: list[Row]) -> int:
        return len(conn.execute(stmt, group).all())

    return write


write_pg_insertmanyvalues = write_insertmanyvalues(PG_STMT)


def write_unnest(conn: sa.Connection, group: list[Row]) -> int:
    params = {f"{c.name}s": [row[c.name] for row in group] for c in INSERT_COLUMNS}
    return len(conn.execute(UNNEST_STMT, params).all())


def write_psycopg_raw_executemany(conn: sa.Connection, group: list[Row]) -> int:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    returned = 0
    with raw.cursor() as cur:
        cur.executemany(RAW_EXECUTEMANY_SQL, group, returning=True)  # pipeline mode, one result per row
        while True:
            returned += len(cur.fetchall())  # 0 rows when the row conflicted
            if not cur.nextset():
                break
    return returned


def run_case(
    driver: str,
    case: Case,
    cap_s: float,
    write: Callable[[list[Row]], int],
    after_preload: Callable[[], None],
) -> Measurement:
    """Untimed preload and warm-up, then the timed loop; ``write`` commits a group, returns RETURNING rows."""
    for group in chunks(case.preexisting, PRELOAD_GROUP_SIZE):
        write(group)
    after_preload()
    for group in chunks(case.warmup, case.group_size):
        write(group)

    tx_s: list[float] = []
    returned = offered = 0
    capped = False
    start = time.perf_counter()
    for group in chunks(case.rows, case.group_size):
        t0 = time.perf_counter()
        returned += write(group)
        tx_s.append(time.perf_counter() - t0)
        offered += len(group)
        if t0 - start > cap_s:
            capped = True
            break
    elapsed = time.perf_counter() - start
    return Measurement(driver, case, len(tx_s), offered, returned, elapsed, [t * 1e3 for t in tx_s], capped)


def sync_transaction(engine: sa.Engine, write: SyncWrite) -> Callable[[list[Row]], int]:
    def write_tx(group: list[Row]) -> int:
        with engine.begin() as conn:
            return write(conn, group)

    return write_tx


def measure_sync(
    driver: str, make_engine: Callable[[], sa.Engine], write: SyncWrite, case: Case, cap_s: float
) -> Measurement:
    engine = make_engine()
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        after_preload = partial(checkpoint, engine) if engine.dialect.name == "postgresql" else noop
        return run_case(driver, case, cap_s, sync_transaction(engine, write), after_preload)
    finally:
        engine.dispose()


def noop() -> None:
    pass


async def measure_async(driver: str, url: URL, stmt: sa.Executable, case: Case, cap_s: float) -> Measurement:
    from sqlalchemy.ext.asyncio import create_async_engine  # needs greenlet (sqlalchemy[asyncio])

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)

        async def write(group: list[Row]) -> int:
            async with engine.begin() as conn:
                return len((await conn.execute(stmt, group)).scalars().all())

        for group in chunks(case.preexisting, PRELOAD_GROUP_SIZE):
            await write(group)
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("CHECKPOINT"))
                await conn.commit()
        except sa.exc.DBAPIError:
            pass
        for group in chunks(case.warmup, case.group_size):
            await write(group)

        tx_s: list[float] = []
        returned = offered = 0
        capped = False
        start = time.perf_counter()
        for group in chunks(case.rows, case.group_size):
            t0 = time.perf_counter()
            returned += await write(group)
            tx_s.append(time.perf_counter() - t0)
            offered += len(group)
            if t0 - start > cap_s:
                capped = True
                break
        elapsed = time.perf_counter() - start
    finally:
        await engine.dispose()
    return Measurement(driver, case, len(tx_s), offered, returned, elapsed, [t * 1e3 for t in tx_s], capped)


def checkpoint(engine: sa.Engine) -> None:
    """Flush dirty buffers before timing so a background checkpoint is less likely mid-run (best effort)."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("CHECKPOINT"))
            conn.commit()
    except sa.exc.DBAPIError:
        pass


class AsyncpgWriter:
    """An AsyncEngine (``postgresql+asyncpg``) driven from synchronous code, one transaction per call.

    ``own_loop=True``: the thread that creates the writer owns a private event loop and runs every
    transaction with ``loop.run_until_complete`` (use it from that thread only). ``own_loop=False``: the loop
    runs forever in a helper thread; callers submit with ``asyncio.run_coroutine_threadsafe(...).result()``.
    ``via_run_sync=True`` executes the statement through ``await conn.run_sync(fn)`` on the sync facade,
    otherwise with ``await conn.execute(...)``.
    """

    def __init__(self, url: URL, *, own_loop: bool, via_run_sync: bool = True) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine  # needs greenlet (sqlalchemy[asyncio])

        self._via_run_sync = via_run_sync
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        if not own_loop:
            self._thread = threading.Thread(target=self._loop.run_forever, name="asyncpg-loop", daemon=True)
            self._thread.start()
        self.engine: AsyncEngine = create_async_engine(url)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._thread is None:
            return self._loop.run_until_complete(coro)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _write(self, group: list[Row]) -> int:
        async with self.engine.begin() as conn:
            if self._via_run_sync:
                return await conn.run_sync(write_pg_insertmanyvalues, group)
            return len((await conn.execute(PG_STMT, group)).all())

    async def _reset_table(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)

    async def _checkpoint(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("CHECKPOINT"))
                await conn.commit()
        except sa.exc.DBAPIError:
            pass

    async def _count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(events))).scalar_one())

    def write(self, group: list[Row]) -> int:
        return self._call(self._write(group))

    def reset_table(self) -> None:
        self._call(self._reset_table())

    def checkpoint(self) -> None:
        self._call(self._checkpoint())

    def count(self) -> int:
        return self._call(self._count())

    def close(self) -> None:
        try:
            self._call(self.engine.dispose())
        finally:
            if self._thread is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join()
            self._loop.close()


def in_new_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread (no running event loop there, like the service's writer thread)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    thread = threading.Thread(target=target, name="writer")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def with_asyncpg_writer(url: URL, own_loop: bool, via_run_sync: bool, fn: Callable[[AsyncpgWriter], T]) -> T:
    def body() -> T:
        writer = AsyncpgWriter(url, own_loop=own_loop, via_run_sync=via_run_sync)
        try:
            writer.reset_table()
            return fn(writer)
        finally:
            writer.close()

    return in_new_thread(body) if own_loop else body()


def measure_asyncpg_writer(driver: str, url: URL, own_loop: bool, case: Case, cap_s: float) -> Measurement:
    return with_asyncpg_writer(
        url, own_loop, True, lambda w: run_case(driver, case, cap_s, w.write, w.checkpoint)
    )


DUP_CHECK_EXPECTED = (3, 4)  # (RETURNING rows, rows in table)


def dup_check(write: Callable[[list[Row]], int], count: Callable[[], int]) -> tuple[int, int]:
    """On a fresh table: insert p, then the group [a, b, a, c, b, p] in one transaction/statement."""
    a, b, c, p = make_rows(4, seed=3)
    write([p])
    returned = write([a, b, a, c, b, p])
    return returned, count()


def dup_check_sync(make_engine: Callable[[], sa.Engine], write: SyncWrite) -> tuple[int, int]:
    engine = make_engine()
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)

        def count() -> int:
            with engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())

        return dup_check(sync_transaction(engine, write), count)
    finally:
        engine.dispose()


def format_dup_check(name: str, result: tuple[int, int]) -> str:
    (ret, total), (exp_ret, exp_total) = result, DUP_CHECK_EXPECTED
    verdict = "OK" if result == DUP_CHECK_EXPECTED else "MISMATCH"
    return f"# {name:<28} ret {ret} (expect {exp_ret}), table rows {total} (expect {exp_total})  {verdict}"


# -------------------------------------------------------------------------------------------- postgres


def pg_url(base: URL, driver: str, database: str) -> URL:
    return base.set(drivername=f"postgresql+{driver}", database=database)


def admin_conninfo(base: URL) -> str:
    return base.set(drivername="postgresql", database=base.database or "postgres").render_as_string(
        hide_password=False
    )


def create_scratch_db(base: URL) -> None:
    with psycopg.connect(admin_conninfo(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_scratch_db(base: URL) -> None:
    with psycopg.connect(admin_conninfo(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def pg_settings(base: URL) -> str:
    with psycopg.connect(admin_conninfo(base), autocommit=True) as conn:
        server = conn.execute("SELECT split_part(version(), ' on ', 1)").fetchone()
        names = ("synchronous_commit", "fsync", "wal_sync_method", "shared_buffers")
        values = [conn.execute(f"SHOW {name}").fetchone() for name in names]
    settings = " ".join(f"{n}={v[0] if v else '?'}" for n, v in zip(names, values, strict=True))
    return f"{server[0] if server else '?'}; {settings}"


# ---------------------------------------------------------------------------------------------- sqlite


def sqlite_engine_factory(tmp: Path, synchronous: str) -> Callable[[], sa.Engine]:
    counter = iter(range(1_000_000))

    def make() -> sa.Engine:
        engine = sa.create_engine(f"sqlite:///{tmp / f'bench_{synchronous.lower()}_{next(counter)}.db'}")

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.close()

        return engine

    return make


# ---------------------------------------------------------------------------------------------- output

HEADER = (
    f"{'driver':<26} {'case':<8} {'group':>5} {'txs':>6} {'rows':>6} {'ret':>6} "
    f"{'rows/s':>9} {'ms/tx':>8} {'p50':>7} {'p99':>7}"
)


def format_row(m: Measurement) -> str:
    mean_ms = m.seconds * 1e3 / m.txs if m.txs else float("nan")
    p50 = statistics.median(m.tx_ms) if m.tx_ms else float("nan")
    p99 = statistics.quantiles(m.tx_ms, n=100)[98] if len(m.tx_ms) >= 2 else float("nan")
    flags = "" if m.ok else f"  RETURNED!={m.case.expected_new(m.rows)}"
    if m.capped:
        flags += "  (time-capped)"
    return (
        f"{m.driver:<26} {m.case.label:<8} {m.case.group_size:>5} {m.txs:>6} {m.rows:>6} {m.returned:>6} "
        f"{m.rows / m.seconds:>9,.0f} {mean_ms:>8.3f} {p50:>7.3f} {p99:>7.3f}{flags}"
    )


def emit(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pg-url",
        default="postgresql://root@127.0.0.1:5432/",
        help="base PostgreSQL URL; driver and database are replaced (default: %(default)s)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=20_000,
        help="rows per case for group sizes >= 50; group size 1 uses rows/10 (default: %(default)s)",
    )
    parser.add_argument(
        "--cap-seconds",
        type=float,
        default=5.0,
        help="stop a case's timed loop after this many seconds to bound the run (default: %(default)s)",
    )
    parser.add_argument("--skip-sqlite", action="store_true", help="only measure PostgreSQL drivers")
    args = parser.parse_args(argv)
    if args.rows < DUP_GROUP_SIZE * 2:
        parser.error(f"--rows must be at least {DUP_GROUP_SIZE * 2}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = make_url(args.pg_url)
    cap: float = args.cap_seconds
    cases = build_cases(args.rows)
    has_greenlet = importlib.util.find_spec("greenlet") is not None
    raw_avg = statistics.fmean(len(r["raw"].encode()) for r in cases[-1].rows)

    env = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} " if os.environ.get("PYTHONPATH") else ""
    emit(f"$ {env}{shlex.join(sys.orig_argv)}")
    emit(
        f"# python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}, psycopg {version('psycopg')}, "
        f"psycopg2 {version('psycopg2-binary')}, asyncpg {version('asyncpg')}, "
        f"sqlite {sqlite3.sqlite_version}"
    )
    emit(f"# postgres: {pg_settings(base)}")
    emit(
        f"# rows={args.rows} (group 1: {len(cases[0].rows)}), raw avg {raw_avg:.0f} B, "
        f"warm-up {WARMUP_GROUPS} tx/case untimed, fresh table + engine per case, cap {cap:g}s/case"
    )
    if not has_greenlet:
        emit("# postgresql+asyncpg SKIPPED: greenlet missing (SQLAlchemy asyncio needs sqlalchemy[asyncio])")
    emit("# rows/s = offered rows / wall time; ms/tx = mean, p50, p99 per transaction; ret = RETURNING rows")
    emit("")
    emit(HEADER)
    emit("-" * len(HEADER))

    results: list[Measurement] = []
    dup_checks: list[tuple[str, tuple[int, int]]] = []
    started = time.perf_counter()
    create_scratch_db(base)
    try:
        sync_drivers = ("psycopg", "psycopg2")
        for driver in (*sync_drivers, *(("asyncpg",) if has_greenlet else ())):
            url = pg_url(base, driver, DB_NAME)
            name = f"postgresql+{driver}" + ("" if driver in sync_drivers else " (async)")
            for case in cases:
                if driver in sync_drivers:
                    m = measure_sync(
                        name, partial(sa.create_engine, url), write_pg_insertmanyvalues, case, cap
                    )
                else:
                    m = asyncio.run(measure_async(name, url, PG_STMT, case, cap))
                results.append(m)
                emit(format_row(m))

        # alternative write paths for a synchronous writer thread: group sizes >= 50 only
        grouped = [case for case in cases if case.group_size > 1]
        sync_paths: list[tuple[str, str, SyncWrite]] = [
            ("psycopg3 unnest", "psycopg", write_unnest),
            ("psycopg2 unnest", "psycopg2", write_unnest),
            ("psycopg3 raw executemany", "psycopg", write_psycopg_raw_executemany),
        ]
        for name, driver, write in sync_paths:
            make_engine = partial(sa.create_engine, pg_url(base, driver, DB_NAME))
            for case in grouped:
                m = measure_sync(name, make_engine, write, case, cap)
                results.append(m)
                emit(format_row(m))
        asyncpg_url = pg_url(base, "asyncpg", DB_NAME)
        asyncpg_paths = (("asyncpg in a thread", True), ("asyncpg loop-thread submit", False))
        if has_greenlet:
            for name, own_loop in asyncpg_paths:
                for case in grouped:
                    m = measure_asyncpg_writer(name, asyncpg_url, own_loop, case, cap)
                    results.append(m)
                    emit(format_row(m))

        # within-statement duplicates, every PostgreSQL path (untimed)
        for driver in sync_drivers:
            make_engine = partial(sa.create_engine, pg_url(base, driver, DB_NAME))
            dup_checks.append(
                (f"postgresql+{driver}", dup_check_sync(make_engine, write_pg_insertmanyvalues))
            )
        for name, driver, write in sync_paths:
            make_engine = partial(sa.create_engine, pg_url(base, driver, DB_NAME))
            dup_checks.append((name, dup_check_sync(make_engine, write)))
        if has_greenlet:
            for name, own_loop, via_run_sync in (
                ("postgresql+asyncpg (async)", True, False),
                *((name, own_loop, True) for name, own_loop in asyncpg_paths),
            ):
                result = with_asyncpg_writer(
                    asyncpg_url, own_loop, via_run_sync, lambda w: dup_check(w.write, w.count)
                )
                dup_checks.append((name, result))
    finally:
        drop_scratch_db(base)

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="calltrail_bench_") as tmp:
            for synchronous in ("FULL", "NORMAL"):
                factory = sqlite_engine_factory(Path(tmp), synchronous)
                sqlite_write = write_insertmanyvalues(SQLITE_STMT)
                for case in cases:
                    m = measure_sync(f"sqlite WAL sync={synchronous}", factory, sqlite_write, case, cap)
                    results.append(m)
                    emit(format_row(m))

    emit("")
    emit("# duplicates within one statement: table holds p, then group [a, b, a, c, b, p] in one transaction")
    for name, result in dup_checks:
        emit(format_dup_check(name, result))
    emit("")
    emit(f"# total wall time {time.perf_counter() - started:.1f}s; scratch database {DB_NAME} dropped")
    dups_ok = all(result == DUP_CHECK_EXPECTED for _, result in dup_checks)
    return 0 if dups_ok and all(m.ok for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
