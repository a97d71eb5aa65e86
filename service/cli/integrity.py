"""The log's integrity: seal, verify, and erase a customer (docs/security.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import click
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from service.admin import erase as erasure
from service.cli.common import cli, engine_for, prepare_database, settings_from_env
from service.config import Settings
from service.domain.erasure import Customer
from service.domain.instants import iso_offset
from service.runtime import join_rules, seal_key, session_timeouts
from service.storage import seals
from service.storage.engine import make_engine

T = TypeVar("T")
EXIT_ALTERED = 1
EXIT_UNCHECKED = 2


@cli.command("seal")
def seal_command() -> None:
    """Seal every committed row of the raw logs that is not sealed yet (the server does it by itself every
    CALLTRAIL_SEAL_INTERVAL_S); prints the latest seal's hash, to keep somewhere else."""
    settings = settings_from_env()
    key = seal_key(settings)
    with engine_for(settings, "write") as engine:

        def run(work: Callable[[Connection], T]) -> T:
            with engine.begin() as conn:
                return work(conn)

        try:
            sealed = seals.seal_all(run, key)
        except seals.SealError as exc:
            raise click.ClickException(str(exc)) from None
        with engine.connect() as conn:
            head = seals.chain_head(conn)
    summary = ", ".join(f"{count} {log}" for log, count in sealed.items())
    click.echo(f"sealed {summary}; latest seal {head[0]}: {head[1]}{'' if key else ' (unsigned)'}")


@cli.command("verify")
@click.option("--max-problems", default=20, show_default=True, help="Problems to list at most.")
def verify_command(max_problems: int) -> None:
    """Check the seal of the raw logs: the chain of seals and its signatures, every removal record, and
    every sealed row against what is stored now.

    Exit 0: everything sealed is as sealed. Exit 1: a row was altered, inserted or deleted behind
    CallTrail's back, or a seal was (the first is named). Exit 2: it could not check (database
    unreachable, the seals are signed and CALLTRAIL_SEAL_KEY is missing or another key)."""
    try:
        settings = settings_from_env()
    except click.ClickException as exc:
        click.echo(f"calltrail verify: cannot check: {exc.message}", err=True)
        sys.exit(EXIT_UNCHECKED)
    try:
        report = _verify(settings, max_problems)
    except (SQLAlchemyError, OSError, click.ClickException) as exc:
        text = exc.message if isinstance(exc, click.ClickException) else str(exc).splitlines()[0]
        click.echo(f"calltrail verify: cannot check: {text}", err=True)
        sys.exit(EXIT_UNCHECKED)
    click.echo(
        f"checked {report.entries} seals ({report.periods} periods, {report.removals} removal records, "
        f"{report.signed} signed, {report.unsigned} unsigned): {report.rows_checked} stored rows, "
        f"{report.rows_removed} removed rows accounted for"
    )
    for log, (count, oldest) in report.unsealed.items():
        since = "" if oldest is None else f", received since {iso_offset(oldest, timespec='seconds')}"
        click.echo(f"not sealed yet: {count} rows of {log}{since}")
    click.echo(f"latest seal hash: {report.last_hash}")
    if report.problems:
        first = report.problems[0]
        click.echo(f"ALTERED: {first.message}", err=True)
        for problem in report.problems[1:]:
            click.echo(f"  also: {problem.message}", err=True)
        sys.exit(EXIT_ALTERED)
    if report.unchecked:
        for reason in report.unchecked:
            click.echo(f"cannot check: {reason}", err=True)
        sys.exit(EXIT_UNCHECKED)
    if settings.seal_key and report.unsigned:
        click.echo(f"note: {report.unsigned} seals are unsigned (made before CALLTRAIL_SEAL_KEY was set)")
    click.echo("OK: every sealed row is as it was sealed")


def _verify(settings: Settings, max_problems: int) -> seals.Report:
    prepare_database(settings)
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            return seals.verify(conn, seal_key(settings), max_problems=max_problems)
    finally:
        engine.dispose()


@cli.command("erase")
@click.option("--customer", required=True, help="The customer's phone number (any spelling) or user id.")
@click.option("--yes", is_flag=True, help="Remove it; without this, only show what would be removed.")
@click.option(
    "--include-masked",
    is_flag=True,
    help="Also remove rows holding a masked number that matches (another customer may share the mask).",
)
@click.option("--reason", default="erasure request", show_default=True, help="Why (a ticket id), kept in "
              "the seal's removal record; never put the customer's number here.")  # fmt: skip
def erase_command(customer: str, yes: bool, include_masked: bool, reason: str) -> None:
    """Remove one customer's data (PIPL, GDPR): their hash events and callOut messages, quarantined events
    and raw CCC records, and the sessions, actions and call records derived from them; says what it
    removed. A dry run without --yes."""
    settings = settings_from_env()
    try:
        who = Customer.of(customer, settings.pii_key.encode())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--customer") from None
    with engine_for(settings, "write") as engine:
        result = erasure.erase(
            engine,
            who,
            session_timeouts(settings),
            join_rules(settings),
            dry_run=not yes,
            with_masked=include_masked,
            seal_key=seal_key(settings),
            reason=reason,
        )
    summary = ", ".join(f"{n} {table}" for table, n in result.removed.items())
    if result.dry_run:
        click.echo(f"would remove: {summary} (sessions and call records: those derived from them)")
        click.echo("nothing removed: add --yes to remove it")
    else:
        click.echo(f"removed: {summary}; a signed removal record is in the seal's chain")
    masked = {table: n for table, n in result.masked_only.items() if n}
    if masked:
        left = ", ".join(f"{n} {table}" for table, n in masked.items())
        click.echo(f"left: {left} holding a matching masked number (another customer may share it; "
                   "--include-masked removes them)")  # fmt: skip
