"""The seal of the raw logs and `calltrail verify`, on both databases: an untouched log passes; an altered,
inserted or deleted row, or a changed seal, is named; purges, quarantines, erasures and site removals are
accounted for; sealers never seal an id a writer may still commit, nor one period twice."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update

from service.admin import quarantine, retention
from service.admin.registry import Site, add_site
from service.ccc.raw_log import store_record
from service.cli import cli
from service.config import Settings
from service.domain import seal
from service.domain.call_parsing import session_of
from service.storage import seals
from service.storage.engine import make_engine, make_transactor
from service.storage.schema import ccc_raw_records, events, seal_removed
from service.storage.schema import seals as seals_table
from tests.ccc.pushes import APP_A, cdr
from tests.projection_helpers import T0, TIMEOUTS, hash_row, ingest, message_row

KEY = "k" * 32
T = TypeVar("T")


def run_cli(db_url: str, *args: str, key: str | None = KEY) -> Result:
    env = {"CALLTRAIL_DATABASE_URL": db_url, "CALLTRAIL_SEAL_KEY": key or ""}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def seal_now(settings: Settings, key: str | None = KEY) -> dict[str, int]:
    engine = make_engine(settings, "write")

    def run(work: Callable[[Connection], T]) -> T:
        with engine.begin() as conn:
            return work(conn)

    try:
        return seals.seal_all(run, key.encode() if key else None)
    finally:
        engine.dispose()


def calls(site: Site, count: int, mobile: str = "13800138000", start: int = 0) -> list[Any]:
    rows = []
    for n in range(start, start + count):
        page = f"page-{n}"
        rows.append(hash_row(site.id, page, 1, T0 + n * 1000, f"#?mobile={mobile}&status=100"))
        rows.append(message_row(site.id, page, 2, T0 + n * 1000 + 10, "callOut", {"phoneNumber": mobile}))
    return rows


def store_ccc(engine: Engine, document: dict[str, Any], received_at: int = T0) -> None:
    body = orjson.dumps(document).decode()
    session_id, problem = session_of(APP_A, "push", "cdr", body)
    with engine.begin() as conn:
        store_record(
            conn,
            {
                "sdk_app_id": APP_A,
                "source": "push",
                "action": "cdr",
                "version": "1",
                "push_uuid": str(uuid.uuid4()),
                "received_at": received_at,
                "body": body,
                "session_id": session_id,
                "problem": problem,
            },
        )


def sealed_log(settings: Settings, engine: Engine, site: Site) -> None:
    ingest(settings, [calls(site, 5), calls(site, 5, start=5)])
    store_ccc(engine, cdr(APP_A))
    seal_now(settings)
    ingest(settings, [calls(site, 3, start=10)])
    store_ccc(engine, cdr(APP_A))
    seal_now(settings)


def an_event_id(engine: Engine, nth: int = 7) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(events.c.id).order_by(events.c.id).offset(nth).limit(1)).scalar_one())


def test_seals_chain_and_an_untouched_log_verifies(settings: Settings, engine: Engine, site: Site) -> None:
    sealed_log(settings, engine, site)
    with engine.connect() as conn:
        rows = conn.execute(select(seals_table).order_by(seals_table.c.seq)).all()
        event_count = conn.execute(select(func.count()).select_from(events)).scalar_one()
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == seal.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert {r.log for r in rows} == {"events", "ccc_raw_records"}
    assert sum(r.row_count for r in rows if r.log == "events") == event_count == 26
    assert all(r.signature == seal.sign(KEY.encode(), r.hash) for r in rows)
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 0, result.output
    assert "not sealed yet: 0 rows of events" in result.output
    assert f"latest seal hash: {rows[-1].hash}" in result.output
    # Nothing new: sealing again adds nothing.
    assert seal_now(settings) == {"events": 0, "ccc_raw_records": 0}


def test_verify_reports_what_is_not_sealed_yet(settings: Settings, engine: Engine, site: Site) -> None:
    sealed_log(settings, engine, site)
    ingest(settings, [calls(site, 2, start=20)])
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 0, result.output
    assert "not sealed yet: 4 rows of events, received since" in result.output


@pytest.mark.parametrize(
    ("column", "value"), [("raw", '{"type":"hash"}'), ("page_url", "https://evil.example/"), ("ts_flag", "x")]
)
def test_an_updated_event_is_named(
    settings: Settings, engine: Engine, site: Site, column: str, value: str
) -> None:
    sealed_log(settings, engine, site)
    target = an_event_id(engine)
    with engine.begin() as conn:
        conn.execute(update(events).where(events.c.id == target).values({column: value}))
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 1, result.output
    assert "ALTERED: seal 1 (events ids 1-" in result.output
    assert f"event {target} (site {site.id}" in result.output
    assert "was altered" in result.output


def test_a_deleted_event_is_named(settings: Settings, engine: Engine, site: Site) -> None:
    sealed_log(settings, engine, site)
    target = an_event_id(engine, 20)
    with engine.begin() as conn:
        conn.execute(delete(events).where(events.c.id == target))
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 1, result.output
    assert f"event {target} was deleted" in result.output


def test_an_inserted_event_is_named(settings: Settings, engine: Engine, site: Site) -> None:
    sealed_log(settings, engine, site)
    # A gap in a sealed period: a row CallTrail removed (with its record), then a forged one at its id.
    target = an_event_id(engine, 3)
    with engine.begin() as conn:
        row = conn.execute(select(events).where(events.c.id == target)).mappings().one()
        seals.remove_ids(conn, "events", [target], "test", KEY.encode())
    assert run_cli(settings.database_url, "verify").exit_code == 0
    with engine.begin() as conn:
        conn.execute(insert(events).values({**row, "event_id": str(uuid.uuid4())}))
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 1, result.output
    assert f"event {target} (site {site.id}" in result.output
    assert "inserted after the seal" in result.output


def test_an_altered_raw_ccc_record_is_named_and_its_reparse_is_not(
    settings: Settings, engine: Engine, site: Site
) -> None:
    sealed_log(settings, engine, site)
    with engine.begin() as conn:
        first = conn.execute(select(func.min(ccc_raw_records.c.id))).scalar_one()
        # A rebuild may name a record's session again: not a sealed column.
        conn.execute(update(ccc_raw_records).values(session_id="other", problem="re-read"))
    assert run_cli(settings.database_url, "verify").exit_code == 0
    with engine.begin() as conn:
        conn.execute(update(ccc_raw_records).where(ccc_raw_records.c.id == first).values(body="{}"))
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 1, result.output
    assert f"raw CCC record {first} (SdkAppId {APP_A}" in result.output


@pytest.mark.parametrize("change", ["root", "row_count", "delete", "leaves"])
def test_a_tampered_seal_is_detected(settings: Settings, engine: Engine, site: Site, change: str) -> None:
    sealed_log(settings, engine, site)
    with engine.begin() as conn:
        where = seals_table.c.seq == 1
        if change == "delete":
            conn.execute(delete(seals_table).where(where))
        elif change == "leaves":
            leaves = conn.execute(select(seals_table.c.leaves).where(where)).scalar_one()
            conn.execute(update(seals_table).where(where).values(leaves=bytes(32) + bytes(leaves)[32:]))
        elif change == "root":
            conn.execute(update(seals_table).where(where).values(root="0" * 64))
        else:
            conn.execute(update(seals_table).where(where).values(row_count=1))
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 1, result.output
    assert "seal 1" in result.output or "seal 2" in result.output


def recompute_chain(conn: Connection, *, unsigned: bool = False) -> None:
    """What an attacker with write access but no key can do: recompute every leaf, root and hash."""
    rows = conn.execute(select(seals_table).order_by(seals_table.c.seq)).mappings().all()
    prev = seal.GENESIS
    for entry in rows:
        values = dict(entry)
        if entry["kind"] == "period" and entry["log"] == "events":
            ids = seal.unpack_ids(entry["ids"])
            stored = conn.execute(
                seals._select_columns("events").where(events.c.id.in_(ids)).order_by(events.c.id)
            ).all()
            leaves = [seals.leaf_of("events", r) for r in stored]
            values["leaves"] = b"".join(leaves)
            values["root"] = seal.merkle_root(leaves).hex()
        if unsigned:
            values["key_id"] = values["signature"] = None
        values["prev_hash"] = prev
        values["hash"] = seal.entry_hash(seals.entry_values(values))
        prev = values["hash"]
        conn.execute(update(seals_table).where(seals_table.c.seq == entry["seq"]).values(values))


def test_a_recomputed_chain_without_the_key_is_caught_by_the_signature(
    settings: Settings, engine: Engine, site: Site
) -> None:
    sealed_log(settings, engine, site)
    target = an_event_id(engine)
    with engine.begin() as conn:
        conn.execute(update(events).where(events.c.id == target).values(page_url="https://evil.example/"))
        recompute_chain(conn)
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 1, result.output
    assert "the signature does not match" in result.output
    # Unsigned, a recomputed chain passes: what signing adds (docs/security.md).
    with engine.begin() as conn:
        recompute_chain(conn, unsigned=True)
    assert run_cli(settings.database_url, "verify", key=None).exit_code == 0


def test_a_missing_or_wrong_key_cannot_check(settings: Settings, engine: Engine, site: Site) -> None:
    sealed_log(settings, engine, site)
    missing = run_cli(settings.database_url, "verify", key=None)
    assert missing.exit_code == 2, missing.output
    assert "CALLTRAIL_SEAL_KEY is not set" in missing.output
    wrong = run_cli(settings.database_url, "verify", key="w" * 32)
    assert wrong.exit_code == 2, wrong.output
    assert "signed with key" in wrong.output
    with engine.begin() as conn:
        conn.execute(update(seals_table).where(seals_table.c.seq == 2).values(signature="0" * 64))
    tampered = run_cli(settings.database_url, "verify")
    assert tampered.exit_code == 1, tampered.output
    assert "seal 2: the signature does not match" in tampered.output


def test_an_unsigned_seal_after_signed_ones_is_a_removed_signature(
    settings: Settings, engine: Engine, site: Site
) -> None:
    sealed_log(settings, engine, site)
    ingest(settings, [calls(site, 1, start=40)])
    seal_now(settings, key=None)
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 1, result.output
    assert "unsigned after signed seals" in result.output


def test_an_unreachable_database_cannot_check() -> None:
    result = run_cli("postgresql://nobody@127.0.0.1:1/none", "verify")
    assert result.exit_code == 2, result.output
    assert "cannot check" in result.output


def test_purge_leaves_a_record_and_verify_passes(settings: Settings, engine: Engine, site: Site) -> None:
    sealed_log(settings, engine, site)
    write = make_engine(settings, "write")
    try:
        removed = retention.purge(write, T0 + 4_500, TIMEOUTS, seal_key=KEY.encode())
    finally:
        write.dispose()
    assert removed["events"] == 10 and removed["CCC raw records"] == 2
    with engine.connect() as conn:
        records = conn.execute(select(seals_table).where(seals_table.c.kind == "removal")).all()
    assert {(r.log, r.row_count) for r in records} == {("events", 10), ("ccc_raw_records", 2)}
    assert all(r.reason.startswith("purge: older than") for r in records)
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 0, result.output
    assert "12 removed rows accounted for" in result.output
    # A removal record forged to cover a deletion does not match its root.
    target = an_event_id(engine, 0)
    with engine.begin() as conn:
        leaf = seals.leaf_of(
            "events", conn.execute(seals._select_columns("events").where(events.c.id == target)).one()
        )
        seq = records[0].seq
        conn.execute(delete(events).where(events.c.id == target))
        conn.execute(insert(seal_removed).values(log="events", row_id=target, leaf=leaf, seq=seq))
    forged = run_cli(settings.database_url, "verify")
    assert forged.exit_code == 1, forged.output
    assert "its recorded rows were changed" in forged.output


def test_quarantine_and_site_removal_leave_records(settings: Settings, engine: Engine, site: Site) -> None:
    deep = hash_row(site.id, "deep", 1, T0, "#?status=100")
    deep["raw"] = "[" * 40 + "]" * 40
    ingest(settings, [calls(site, 3), [deep]])
    other = add_site(engine, "other", ["https://other.example.com"])
    ingest(settings, [calls(other, 2)])
    seal_now(settings)
    write = make_engine(settings, "write")
    try:
        assert len(quarantine.quarantine(write, TIMEOUTS, seal_key=KEY.encode())) == 1
        assert run_cli(settings.database_url, "verify").exit_code == 0
        removed = run_cli(settings.database_url, "sites", "remove", "other", "--yes")
        assert removed.exit_code == 0, removed.output
    finally:
        write.dispose()
    with engine.connect() as conn:
        reasons = conn.execute(select(seals_table.c.reason).where(seals_table.c.kind == "removal")).scalars()
        assert sorted(reasons) == ["quarantine", "site 'other' removed"]
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 0, result.output


def test_the_server_seals_in_its_idle_time(settings: Settings, engine: Engine, site: Site) -> None:
    from service.runtime import make_writer

    settings = settings.replace(seal_interval_s=1, seal_key=KEY)
    writer = make_writer(settings, settings.is_sqlite)
    assert hasattr(writer, "submit") or not settings.is_sqlite
    if settings.is_sqlite:
        writer.start()
        try:
            writer.submit(calls(site, 4)).result(timeout=30)  # type: ignore[attr-defined]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    sealed = conn.execute(
                        select(func.coalesce(func.sum(seals_table.c.row_count), 0))
                    ).scalar()
                if sealed == 8:
                    break
                time.sleep(0.1)
        finally:
            writer.close()  # type: ignore[attr-defined]
    else:
        import asyncio

        async def main() -> int:
            writer.start()
            try:
                await writer.write(calls(site, 4))
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    with engine.connect() as conn:
                        found = conn.execute(
                            select(func.coalesce(func.sum(seals_table.c.row_count), 0))
                        ).scalar()
                    if found == 8:
                        return int(found)
                    await asyncio.sleep(0.1)
                return -1
            finally:
                await writer.shutdown(10)

        sealed = asyncio.run(main())
    assert sealed == 8
    assert run_cli(settings.database_url, "verify").exit_code == 0


# -- PostgreSQL: concurrency ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_commit_out_of_id_order_is_never_sealed_over(
    settings: Settings, engine: Engine, site: Site
) -> None:
    """Id N is drawn by a transaction that has not committed while N+1 is committed and visible: no
    sealer may seal past N-1 until N's transaction ends."""
    ingest(settings, [calls(site, 2)])
    sealer = seals.Sealer(KEY.encode(), interval_s=0.01)
    transactor = make_transactor(settings)
    slow = make_engine(settings, "write")
    holder = slow.connect()
    try:
        sealer(transactor)
        with engine.connect() as conn:
            assert seals.last_sealed(conn, "events") == 4
        transaction = holder.begin()
        late = calls(site, 1, start=50)[0]
        holder.execute(insert(events).values(late))
        late_id = holder.execute(select(func.max(events.c.id))).scalar_one()
        ingest(settings, [calls(site, 1, start=60)])  # ids past late_id, committed
        for _ in range(5):
            sealer(transactor)
            time.sleep(0.02)
        with engine.connect() as conn:
            assert seals.last_sealed(conn, "events") == 4 < late_id
            visible = conn.execute(select(func.count()).where(events.c.id > late_id)).scalar_one()
        assert visible == 2
        transaction.commit()
        for _ in range(5):
            sealer(transactor)
            time.sleep(0.02)
    finally:
        holder.close()
        transactor.dispose()
        slow.dispose()
    with engine.connect() as conn:
        assert seals.last_sealed(conn, "events") == late_id + 2
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("backend", ["postgresql"])
def test_sealing_while_writers_ingest_and_two_sealers_race(
    settings: Settings, engine: Engine, site: Site
) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        from service.ingest.writer import EventWriter

        writer = EventWriter([make_transactor(settings) for _ in range(2)], max_batch=50, queue_limit=100_000)
        writer.start()
        try:
            n = 0
            while not stop.is_set():
                futures = [
                    writer.submit(calls(site, 3, start=worker * 1_000_000 + n + k * 3)) for k in range(4)
                ]
                for future in futures:
                    future.result(timeout=60)
                n += 12
        except BaseException as exc:
            errors.append(exc)
        finally:
            writer.close()

    def seal_loop(use_cli_path: bool) -> None:
        sealer = seals.Sealer(KEY.encode(), interval_s=0.001)
        transactor = make_transactor(settings)
        try:
            while not stop.is_set():
                if use_cli_path:
                    seal_now(settings)
                else:
                    sealer(transactor, 200)
        except BaseException as exc:
            errors.append(exc)
        finally:
            transactor.dispose()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=seal_loop, args=(flag,)) for flag in (False, False, True)]
    for thread in threads:
        thread.start()
    time.sleep(6)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    seal_now(settings)
    with engine.connect() as conn:
        periods = conn.execute(
            select(seals_table.c.first_id, seals_table.c.last_id)
            .where(seals_table.c.kind == "period", seals_table.c.log == "events")
            .order_by(seals_table.c.first_id)
        ).all()
        total = conn.execute(select(func.count()).select_from(events)).scalar_one()
        in_progress = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'")
        ).scalar()
    assert len(periods) > 3 and in_progress is not None
    # One seal per period: contiguous, never overlapping.
    assert all(b.first_id == a.last_id + 1 for a, b in itertools.pairwise(periods))
    result = run_cli(settings.database_url, "verify")
    assert result.exit_code == 0, result.output
    assert f"{total} stored rows" in result.output
