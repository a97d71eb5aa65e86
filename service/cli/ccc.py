"""`calltrail ccc`: the CCC apps that push call records here, and what to type into the CCC console."""

from __future__ import annotations

from typing import Any

import click
import orjson

from service.admin import access
from service.admin.access import CLI
from service.ccc import apps as ccc_apps
from service.ccc.console import console_lines, console_settings
from service.cli.common import cli, engine_for, settings_from_env
from service.config import Settings
from service.domain.instants import iso


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
