"""The `calltrail` command: serve, migrate, sites, keys, CCC apps, and the maintenance commands."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson
from sqlalchemy import Engine, func, select

from service.admin import quarantine, registry, retention
from service.ccc import apps as ccc_apps
from service.ccc.console import console_lines, console_settings
from service.config import ConfigError, Settings
from service.domain import instants
from service.domain.instants import iso, iso_offset, parse_iso
from service.formats import FORMATS, Format, chunks
from service.http.deadlines import DeadlineProtocol
from service.logs import configure_logging, logging_config
from service.projection import dead_letters, queue, rollups
from service.projection.rebuild import rebuild as rebuild_from_log
from service.reports import records
from service.runtime import session_timeouts
from service.storage import schema
from service.storage.engine import Role, is_sqlite_url, make_engine, make_transactor, normalize_url
from service.storage.migrations import SchemaOutdated, check_current, upgrade
from service.telemetry import MULTIPROC_ENV

GRACEFUL_SHUTDOWN_TIMEOUT_S = 30


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def prepare_database(settings: Settings) -> None:
    """SQLite is migrated on the spot; PostgreSQL must already be at head (`calltrail migrate`)."""
    try:
        url = normalize_url(settings.database_url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if is_sqlite_url(url):
        upgrade(url)
        return
    engine = make_engine(settings)
    try:
        check_current(engine)
    except SchemaOutdated as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@contextmanager
def _engine(settings: Settings | None = None, role: Role = "read") -> Iterator[Engine]:
    settings = settings or _settings()
    prepare_database(settings)
    engine = make_engine(settings, role)
    try:
        yield engine
    except (registry.RegistryError, ccc_apps.CccAppError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@click.group()
@click.version_option(package_name="calltrail")
def cli() -> None:
    """CallTrail: event logging for Tencent Cloud Contact Center inbound-call pop-up pages.

    Settings come from CALLTRAIL_* environment variables (docs/configuration.md).
    """


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command()
@click.option("--host", help="Address to listen on [CALLTRAIL_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [CALLTRAIL_PORT, default 8000].")
@click.option("--workers", type=click.IntRange(1, 64), help="Processes [CALLTRAIL_WORKERS, default 1].")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP service (migrating SQLite first)."""
    import uvicorn

    settings = _settings()
    settings = settings.replace(
        host=host or settings.host, port=port or settings.port, workers=workers or settings.workers
    )
    configure_logging(settings)
    prepare_database(settings)
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Workers inherit the variable and pool their metrics there (service/telemetry.py).
        metrics_dir = tempfile.mkdtemp(prefix="calltrail-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    click.echo(
        f"calltrail serving on http://{settings.host}:{settings.port} with {settings.workers} worker(s)",
        err=True,
    )
    if settings.allowed_hosts.strip() == "*" and not _is_loopback(settings.host):
        click.echo(
            f"warning: listening on {settings.host} with CALLTRAIL_ALLOWED_HOSTS=*: any Host header is "
            "answered; set it to the names clients use (docs/security.md)",
            err=True,
        )
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=logging_config(settings),
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT_S,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        http=DeadlineProtocol,
    )
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)


@cli.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def migrate(revision: str) -> None:
    """Apply database migrations (needed before `serve` on PostgreSQL)."""
    settings = _settings()
    configure_logging(settings)
    upgrade(settings.database_url, revision)
    click.echo(f"database at revision {revision}")


@cli.group()
def sites() -> None:
    """Sites: a pop-up page's public key and the origins allowed to write with it."""


@sites.command("add")
@click.argument("name")
@click.option("--origin", "origins", multiple=True, required=True, help="Allowed page origin; repeatable.")
def sites_add(name: str, origins: tuple[str, ...]) -> None:
    """Create a site; prints its public site key as the last line."""
    with _engine() as engine:
        site = registry.add_site(engine, name, origins)
    click.echo(f"site {site.name!r} created for {', '.join(sorted(site.origins))}")
    click.echo("embed its public site key in the pop-up page (data-site); it can only write events:")
    click.echo(site.site_key)


@sites.command("list")
def sites_list() -> None:
    """List sites, their keys and origins."""
    with _engine() as engine:
        all_sites = registry.list_sites(engine)
    if not all_sites:
        click.echo("no sites yet: calltrail sites add NAME --origin https://crm.example.com")
    for site in all_sites:
        click.echo(f"{site.name}\t{site.site_key}\t{' '.join(sorted(site.origins))}")


@sites.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: this deletes the site's events too.")
def sites_remove(name: str, yes: bool) -> None:
    """Delete a site and every event stored for it."""
    if not yes:
        raise click.ClickException("this deletes the site and all its events; add --yes to confirm")
    with _engine() as engine:
        registry.delete_site(engine, name)
    click.echo(f"site {name!r} deleted")


@cli.group()
def keys() -> None:
    """Secret API keys for reading (read) or administering (admin)."""


@keys.command("create")
@click.option("--scope", type=click.Choice(["read", "admin"]), required=True)
@click.option("--name", help="A label to tell keys apart.")
def keys_create(scope: str, name: str | None) -> None:
    """Create a key; prints it once, as the last line. Only its hash is stored."""
    with _engine() as engine:
        created = registry.create_key(engine, scope, name)
    click.echo(f"{scope} key {created.key.key_id} created; it is shown only now, store it safely:")
    click.echo(created.plaintext)


@keys.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    with _engine() as engine:
        all_keys = registry.list_keys(engine)
    if not all_keys:
        click.echo("no keys yet: calltrail keys create --scope read")
    for key in all_keys:
        status = f"revoked {iso_offset(key.revoked_at)}" if key.revoked_at is not None else "active"
        click.echo(f"{key.key_id}\t{key.scope}\t{status}\t{key.name or ''}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after ctk_)."""
    with _engine() as engine:
        key = registry.revoke_key(engine, key_id)
    click.echo(f"key {key.key_id} revoked")


@cli.group()
def ccc() -> None:
    """CCC apps that push call records here (Data Push, docs/ccc.md), and what to type into the console."""


_SDK_APP_ID = click.IntRange(1, ccc_apps.MAX_SDK_APP_ID)
_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")


def _print_console_settings(credentials: ccc_apps.Credentials, settings: Settings, as_json: bool) -> None:
    found = console_settings(credentials, settings.public_url)
    if as_json:
        click.echo(orjson.dumps(found).decode())
        return
    app = credentials.app
    click.echo(
        f"In the TCCC console, open app {app.sdk_app_id}, its Data Push settings, Modify, turn Data Push on "
        "and enter:"
    )
    for line in console_lines(found):
        click.echo(f"  {line}")
    if credentials.secret is not None:
        click.echo(
            "The secret is shown only now and stored only hashed; "
            f"`calltrail ccc rotate {app.sdk_app_id}` makes a new one."
        )


@ccc.command("add")
@click.argument("sdk_app_id", type=_SDK_APP_ID)
@click.option(
    "--auth",
    type=click.Choice(ccc_apps.AUTH_MODES),
    required=True,
    help="The console's authentication mode: basic (account/password), oauth2, or none.",
)
@click.option(
    "--site", "site_names", multiple=True, help="A site (by name) its records belong to; repeatable."
)
@_JSON_OPTION
def ccc_add(sdk_app_id: int, auth: str, site_names: tuple[str, ...], as_json: bool) -> None:
    """Register the CCC app SDK_APP_ID; prints, once, what to type into the CCC console."""
    settings = _settings()
    with _engine(settings, "write") as engine:
        credentials = ccc_apps.add_app(engine, sdk_app_id, auth, site_names)
    if auth == "none":
        click.echo(
            f"warning: the CCC app {sdk_app_id} has no authentication: anyone who knows its SdkAppId can "
            "push records in its name; prefer --auth basic or --auth oauth2 (docs/ccc.md)",
            err=True,
        )
    if not as_json:
        sites_text = f", for site(s) {', '.join(credentials.app.sites)}" if credentials.app.sites else ""
        click.echo(f"CCC app {sdk_app_id} registered with {auth} authentication{sites_text}.")
    _print_console_settings(credentials, settings, as_json)


@ccc.command("list")
@_JSON_OPTION
def ccc_list(as_json: bool) -> None:
    """List the registered CCC apps (never their secrets)."""
    with _engine() as engine:
        found = ccc_apps.list_apps(engine)
    if as_json:
        listed = []
        for app in found:
            login = {"basic": "username", "oauth2": "client_id"}.get(app.auth)
            entry: dict[str, Any] = {"sdk_app_id": app.sdk_app_id, "auth": app.auth}
            if login is not None:
                entry[login] = app.client_id
            listed.append({**entry, "sites": list(app.sites), "created_at": app.created_at})
        click.echo(orjson.dumps(listed).decode())
        return
    if not found:
        click.echo("no CCC apps yet: calltrail ccc add SDKAPPID --auth basic")
    for app in found:
        click.echo(
            f"{app.sdk_app_id}\t{app.auth}\t{app.client_id or '-'}\t{','.join(app.sites) or '-'}\t"
            f"{iso(app.created_at)}"
        )


@ccc.command("remove")
@click.argument("sdk_app_id", type=_SDK_APP_ID)
def ccc_remove(sdk_app_id: int) -> None:
    """Unregister a CCC app: its pushes are refused from now on. The records it pushed are kept."""
    with _engine(role="write") as engine:
        ccc_apps.remove_app(engine, sdk_app_id)
    click.echo(f"CCC app {sdk_app_id} removed; the records it pushed are kept")


@ccc.command("rotate")
@click.argument("sdk_app_id", type=_SDK_APP_ID)
@_JSON_OPTION
def ccc_rotate(sdk_app_id: int, as_json: bool) -> None:
    """A new secret for a CCC app, shown once; the old one (and, for oauth2, every token) stops working."""
    settings = _settings()
    with _engine(settings, "write") as engine:
        credentials = ccc_apps.rotate_secret(engine, sdk_app_id)
    if not as_json:
        revoked = " and its tokens are revoked" if credentials.app.auth == "oauth2" else ""
        click.echo(f"CCC app {sdk_app_id}: new secret; the old one no longer works{revoked}.")
    _print_console_settings(credentials, settings, as_json)


@cli.command()
def rebuild() -> None:
    """Recompute every session and action from the raw events (after changing the session timeouts)."""
    settings = _settings()
    with _engine(settings, "write") as engine:
        count = rebuild_from_log(engine, session_timeouts(settings))
        with engine.connect() as conn:
            found = [
                conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (schema.sessions, schema.actions)
            ]
    click.echo(f"rebuilt from {count} events: {found[0]} sessions, {found[1]} actions")


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
    settings = _settings()
    prepare_database(settings)
    transactor = make_transactor(settings)
    started = time.monotonic()
    try:
        retried = transactor.run(dead_letters.requeue_failures) if retry_failed else 0
        count = queue.drain(transactor, session_timeouts(settings), settings.projection_batch)
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
    settings = _settings()
    with _engine(settings, "write") as engine:
        found = quarantine.quarantine(engine, session_timeouts(settings), dry_run=dry_run)
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
    with _engine(_settings(), "write") as engine:
        started = time.monotonic()
        days = rollups.refresh(engine, "day", 0, rollups.FAR_FUTURE_MS)
        hours = rollups.refresh(engine, "hour", 0, rollups.FAR_FUTURE_MS)
    click.echo(
        f"rebuilt the rollups of {days} days (with their hours) and {hours} other hours"
        f" in {time.monotonic() - started:.1f} s"
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
    settings = _settings()
    start_ms, end_ms = _instant(start, "--from"), _instant(end, "--to")
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise click.BadParameter("--from must be before --to")
    out = sys.stdout
    with _engine(settings) as engine, engine.connect() as conn:
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
    settings = _settings()
    with _engine(settings, "write") as engine:
        removed = retention.purge(engine, cutoff_ms, session_timeouts(settings))
    cutoff = iso_offset(cutoff_ms, timespec="seconds")
    summary = ", ".join(f"{n} {table}" for table, n in removed.items())
    click.echo(f"removed everything before {cutoff}: {summary}")


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65534),
    default=8100,
    show_default=True,
    help="The service's port; the demo pages take the next one. 0 picks free ports.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo database in this directory (by default it is deleted on exit).",
)
def demo(port: int, data_dir: Path | None) -> None:
    """Try CallTrail: the service, a workstation simulator and a CRM pop-up page, on a throwaway database."""
    from service import demo as demo_module

    try:
        demo_module.run(port, data_dir, click.echo)
    except demo_module.DemoError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        # Ctrl+C is how a demo ends: uvicorn has shut down cleanly and re-raised it.
        click.echo("demo stopped")


def _instant(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=option) from None


def main() -> None:
    cli(prog_name="calltrail")


if __name__ == "__main__":
    main()
