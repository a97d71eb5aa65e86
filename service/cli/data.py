"""The maintenance commands: rebuild, project, quarantine, rollups, export and purge."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import click
from sqlalchemy import func, select

from service.admin import quarantine, retention
from service.cli.common import cli, engine_for, prepare_database, settings_from_env
from service.domain import instants
from service.domain.instants import iso_offset, parse_iso
from service.formats import FORMATS, Format, chunks
from service.projection import call_rollups, dead_letters, queue, rollups
from service.projection.rebuild import rebuild as rebuild_from_log
from service.reports import records
from service.runtime import join_rules, seal_key, session_timeouts
from service.storage import schema
from service.storage.engine import make_transactor


@cli.command()
def rebuild() -> None:
    """Recompute every session and action from the raw events (after changing the session timeouts)."""
    settings = settings_from_env()
    with engine_for(settings, "write") as engine:
        count = rebuild_from_log(engine, session_timeouts(settings), join_rules(settings))
        with engine.connect() as conn:
            found = [
                conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (schema.sessions, schema.actions, schema.call_records, schema.ccc_raw_records)
            ]
    click.echo(
        f"rebuilt from {count} events: {found[0]} sessions, {found[1]} actions; "
        f"from {found[3]} raw CCC records: {found[2]} call records"
    )


@cli.command()
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Queue the events whose projection failed (dead letters) again first.",
)
def project(retry_failed: bool) -> None:
    """Project every queued event now (sessions, actions, rollups), then exit.

    The server projects in idle time and, under sustained load, only with its share of time
    (CALLTRAIL_PROJECTION_SHARE), so a long burst can leave a backlog (calltrail_projection_backlog_events).
    Safe while servers run: on PostgreSQL each batch claims its events with SKIP LOCKED; on SQLite each batch
    waits its turn for the write lock. Events that still fail stay dead letters (the quality report counts
    them)."""
    settings = settings_from_env()
    prepare_database(settings)
    transactor = make_transactor(settings)
    started = time.monotonic()
    try:
        retried = transactor.run(dead_letters.requeue_failures) if retry_failed else 0
        count = queue.drain(
            transactor, session_timeouts(settings), settings.projection_batch, join_rules(settings)
        )
        failed = transactor.run(dead_letters.failure_count)
    finally:
        transactor.dispose()
    elapsed = time.monotonic() - started
    retried_text = f" ({retried} of them dead letters retried)" if retry_failed else ""
    click.echo(
        f"projected {count} queued events{retried_text} in {elapsed:.1f} s; {failed} dead letters left"
    )


@cli.command("quarantine")
@click.option("--dry-run", is_flag=True, help="Only list what would be quarantined.")
def quarantine_command(dry_run: bool) -> None:
    """Move stored events that break the protocol's limits (stored before the limits existed) out of the log.

    Their bytes are kept in the quarantine (`calltrail export quarantined` lists them); sessions and actions
    are then derived again from the rest of the log, so no read path or report includes them."""
    settings = settings_from_env()
    with engine_for(settings, "write") as engine:
        found = quarantine.quarantine(
            engine,
            session_timeouts(settings),
            join_rules(settings),
            dry_run=dry_run,
            seal_key=seal_key(settings),
        )
    for suspect in found:
        click.echo(
            f"event {suspect.event_id} (site {suspect.site}, {suspect.size} characters): {suspect.reason}"
        )
    verb = "would quarantine" if dry_run else "quarantined"
    rebuilt = "" if dry_run or not found else "; sessions and actions rebuilt from the rest of the log"
    click.echo(f"{verb} {len(found)} events{rebuilt}")


@cli.command("rollups")
def rollups_command() -> None:
    """Build every report rollup that is out of date now, rather than in the first report that needs it
    (after migrating or loading a large history)."""
    with engine_for(settings_from_env(), "write") as engine:
        started = time.monotonic()
        days = rollups.refresh(engine, "day", 0, rollups.FAR_FUTURE_MS)
        hours = rollups.refresh(engine, "hour", 0, rollups.FAR_FUTURE_MS)
        call_days = call_rollups.refresh(engine, "day", 0, call_rollups.FAR_FUTURE_MS)
        call_hours = call_rollups.refresh(engine, "hour", 0, call_rollups.FAR_FUTURE_MS)
    click.echo(
        f"rebuilt the rollups of {days} days (with their hours) and {hours} other hours"
        f" in {time.monotonic() - started:.1f} s"
    )
    click.echo(
        f"calls report: {call_days} days (with their hours) and {call_hours} other hours,"
        " of each app and of all apps"
    )


EXPORT_FIELDS: dict[str, tuple[str, ...]] = {
    "sessions": records.SESSION_FIELDS,
    "actions": records.ACTION_FIELDS,
    "events": records.EVENT_FIELDS,
    "quarantined": quarantine.QUARANTINE_FIELDS,
}


@cli.command()
@click.argument("kind", type=click.Choice(sorted(EXPORT_FIELDS)))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="ndjson", show_default=True)
@click.option("--from", "start", help="Start, ISO 8601 (a time without offset is UTC), inclusive.")
@click.option("--to", "end", help="End, ISO 8601, exclusive.")
@click.option("--site", help="Only this site (by name).")
def export(kind: str, fmt: Format, start: str | None, end: str | None, site: str | None) -> None:
    """Stream sessions, actions, raw events or quarantined events to stdout, in constant memory.

    Sessions are selected by when they were first heard of, actions and events by their corrected time; the
    quarantine is listed whole.
    """
    settings = settings_from_env()
    start_ms, end_ms = _instant(start, "--from"), _instant(end, "--to")
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise click.BadParameter("--from must be before --to")
    out = sys.stdout
    with engine_for(settings) as engine, engine.connect() as conn:
        found: Iterator[dict[str, Any]]
        if kind == "sessions":
            now_ms = instants.now_ms()
            timeouts = session_timeouts(settings)
            found = records.session_records(
                conn, timeouts=timeouts, now_ms=now_ms, site=site, start_ms=start_ms, end_ms=end_ms
            )
        elif kind == "actions":
            found = records.action_records(conn, site=site, start_ms=start_ms, end_ms=end_ms)
        elif kind == "quarantined":
            found = quarantine.quarantined_records(conn)
        else:
            found = records.event_records(conn, site=site, start_ms=start_ms, end_ms=end_ms)
        for chunk in chunks(found, EXPORT_FIELDS[kind], fmt, records.PHONE_FIELDS):
            out.write(chunk)


@cli.command()
@click.option("--older-than", "older_than", required=True, help="Age like 90d, 12w or 36h.")
def purge(older_than: str) -> None:
    """Delete raw events and derived records older than the given age, and say what was removed."""
    match = re.fullmatch(r"(\d+)([hdw])", older_than.strip())
    if match is None:
        raise click.BadParameter("use a number and h, d or w, like 90d", param_hint="--older-than")
    hours = int(match.group(1)) * {"h": 1, "d": 24, "w": 168}[match.group(2)]
    cutoff_ms = instants.now_ms() - hours * 3_600_000
    settings = settings_from_env()
    with engine_for(settings, "write") as engine:
        removed = retention.purge(
            engine, cutoff_ms, session_timeouts(settings), join_rules(settings), seal_key=seal_key(settings)
        )
    cutoff = iso_offset(cutoff_ms, timespec="seconds")
    summary = ", ".join(f"{n} {table}" for table, n in removed.items())
    click.echo(f"removed everything before {cutoff}: {summary}")


def _instant(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=option) from None
