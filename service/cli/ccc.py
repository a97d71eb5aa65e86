"""`calltrail ccc`: the CCC apps that push call records here, what to type into the CCC console, and the
reconciliation with CCC's API (`calltrail ccc sync`)."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from service.admin import access
from service.admin.access import CLI
from service.ccc import apps as ccc_apps
from service.ccc.console import console_lines, console_settings
from service.ccc.pull import PAGE_SIZE, CccRangeError, Page
from service.ccc.sdk import CccAuthError, CccError
from service.ccc.sync import ActionReport, sdk_from_settings, sync_range
from service.cli.common import cli, engine_for, settings_from_env
from service.config import Settings
from service.domain.instants import iso, iso_offset, now_ms, parse_iso
from service.domain.pii import PiiPolicy
from service.runtime import ccc_projection


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
    settings = settings_from_env()
    with engine_for(settings, "write") as engine:
        credentials = access.add_app(engine, CLI, sdk_app_id, auth, site_names)
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
    with engine_for() as engine:
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
    with engine_for(role="write") as engine:
        access.remove_app(engine, CLI, sdk_app_id)
    click.echo(f"CCC app {sdk_app_id} removed; the records it pushed are kept")


@ccc.command("rotate")
@click.argument("sdk_app_id", type=_SDK_APP_ID)
@_JSON_OPTION
def ccc_rotate(sdk_app_id: int, as_json: bool) -> None:
    """A new secret for a CCC app, shown once; the old one (and, for oauth2, every token) stops working."""
    settings = settings_from_env()
    with engine_for(settings, "write") as engine:
        credentials = ccc_apps.rotate_secret(engine, sdk_app_id)
    if not as_json:
        revoked = " and its tokens are revoked" if credentials.app.auth == "oauth2" else ""
        click.echo(f"CCC app {sdk_app_id}: new secret; the old one no longer works{revoked}.")
    _print_console_settings(credentials, settings, as_json)


def _instant(option: str, text: str) -> int:
    try:
        return parse_iso(text)
    except ValueError:
        raise click.BadParameter(
            f"expected ISO 8601 like 2026-11-01T08:00:00Z, got {text!r}", param_hint=option
        ) from None


class _Progress:
    """A progress bar per action, on stderr: records pulled of CCC's TotalCount (summed over the windows)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done_windows = 0  # records of the windows finished before this one

    def start(self, report: ActionReport) -> None:
        self.close()
        if report.resumed_from is not None:
            click.echo(
                f"{report.action}: resuming the interrupted sync of this range at "
                f"{iso_offset(report.resumed_from.window_start_ms)}, page {report.resumed_from.page}",
                err=True,
            )
        if report.replaced_range is not None:
            first, last = report.replaced_range
            click.echo(
                f"{report.action}: the interrupted sync of {iso_offset(first)} to {iso_offset(last)} is "
                "not resumed (another range was asked for); its records stay stored",
                err=True,
            )
        self._done_windows = 0
        self._bar = click.progressbar(length=1, label=report.action, show_pos=True, file=sys.stderr)
        self._bar.__enter__()

    def page(self, report: ActionReport, page: Page) -> None:
        bar = self._bar
        expected = self._done_windows + page.total_count
        position = min(expected, self._done_windows + page.page * PAGE_SIZE + len(page.records))
        bar.length = max(expected, 1)
        bar.update(max(0, position - bar.pos))
        if page.next_cursor is None or page.next_cursor.window_start_ms != page.window_start_ms:
            self._done_windows = expected

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@ccc.command("sync")
@click.argument("sdk_app_id", type=_SDK_APP_ID)
@click.option("--from", "start", required=True, help="Start of the range, ISO 8601 (UTC without an offset).")
@click.option("--to", "end", required=True, help="End of the range (exclusive), ISO 8601; at most now.")
@click.option("--clip", is_flag=True, help="Start a range older than CCC's 180 days where they begin.")
@click.option(
    "--restart", is_flag=True, help="Start from the beginning, not from an interrupted sync's cursor."
)
def ccc_sync(sdk_app_id: int, start: str, end: str, clip: bool, restart: bool) -> None:
    """Pull the app's call records (DescribeTelCdr) and chats (DescribeIMCdrs) of a range from CCC's API
    into the raw log; what is stored already is stored once. An interrupted sync of the same range resumes
    from where it stopped. Needs CALLTRAIL_CCC_SECRET_ID and CALLTRAIL_CCC_SECRET_KEY (docs/ccc.md)."""
    start_ms, end_ms = _instant("--from", start), _instant("--to", end)
    if end_ms <= start_ms:
        raise click.BadParameter("must be after --from", param_hint="--to")
    settings = settings_from_env()
    if not settings.has_ccc_api_key:
        raise click.ClickException(
            "the CCC API key is not set: set CALLTRAIL_CCC_SECRET_ID and CALLTRAIL_CCC_SECRET_KEY "
            "(a Tencent Cloud API key with read access to CCC; docs/ccc.md, Reconciliation)"
        )
    progress = _Progress()
    with engine_for(settings, "write") as engine:
        if ccc_apps.get_app(engine, sdk_app_id) is None:
            raise click.ClickException(
                f"no CCC app {sdk_app_id} is registered: calltrail ccc add {sdk_app_id} --auth basic"
            )
        try:
            reports = sync_range(
                engine,
                sdk_from_settings(settings),
                sdk_app_id,
                start_ms,
                end_ms,
                policy=PiiPolicy(settings.pii_mode, settings.pii_key.encode()),
                project=ccc_projection(settings),
                now_ms=now_ms(),
                clip=clip,
                restart=restart,
                on_start=progress.start,
                on_page=progress.page,
            )
        except CccAuthError as error:
            raise click.ClickException(
                f"CCC refused the API key ({error.code}: {error.message}); check CALLTRAIL_CCC_SECRET_ID "
                "and CALLTRAIL_CCC_SECRET_KEY, and that the key may read CCC"
            ) from None
        except CccRangeError as error:
            raise click.ClickException(str(error).replace("pass clip=True", "pass --clip")) from None
        except CccError as error:
            raise click.ClickException(
                f"CCC's API failed: {error}. The pages pulled so far are stored; run the same command "
                "again to resume"
            ) from None
        finally:
            progress.close()
    _print_summary(reports)


def _print_summary(reports: list[ActionReport]) -> None:
    click.echo("action\tpulled\tnew\talready stored\tunreadable\trequests\tthrottled retries")
    for r in reports:
        click.echo(
            f"{r.action}\t{r.pulled}\t{r.stored}\t{r.already}\t{r.unreadable}\t{r.pull.requests}\t"
            f"{r.pull.throttled}"
        )
    total = sum(r.pulled for r in reports)
    new = sum(r.stored for r in reports)
    unreadable = sum(r.unreadable for r in reports)
    click.echo(
        f"{total} records pulled, {new} stored new, {total - new} already stored"
        + (f", {unreadable} unreadable (stored raw, without a SessionId)" if unreadable else "")
    )
