"""`calltrail sites`, `calltrail keys` and `calltrail access-log`: who may write events, who may read them,
and who did. The commands call the operations the admin API calls (admin/access.py), as the CLI: a shell on
the server administers every site, and its changes go to the access log with no key id."""

from __future__ import annotations

import click
import orjson

from service.admin import access
from service.admin.access import CLI, AccessFilter
from service.cli.common import cli, engine_for, settings_from_env
from service.domain.instants import iso, iso_offset, now_ms, parse_duration_ms, parse_iso
from service.runtime import seal_key


@cli.group()
def sites() -> None:
    """Sites: a pop-up page's public key and the origins allowed to write with it."""


@sites.command("add")
@click.argument("name")
@click.option("--origin", "origins", multiple=True, required=True, help="Allowed page origin; repeatable.")
def sites_add(name: str, origins: tuple[str, ...]) -> None:
    """Create a site; prints its public site key as the last line."""
    with engine_for(role="write") as engine:
        site = access.create_site(engine, CLI, name, origins)
    click.echo(f"site {site.name!r} created for {', '.join(sorted(site.origins))}")
    click.echo("embed its public site key in the pop-up page (data-site); it can only write events:")
    click.echo(site.site_key)


@sites.command("list")
def sites_list() -> None:
    """List sites, their keys and origins."""
    with engine_for() as engine:
        all_sites = access.list_sites(engine, CLI)
    if not all_sites:
        click.echo("no sites yet: calltrail sites add NAME --origin https://crm.example.com")
    for site in all_sites:
        click.echo(f"{site.name}\t{site.site_key}\t{' '.join(sorted(site.origins))}")


@sites.command("origins")
@click.argument("name")
@click.option("--add", "added", multiple=True, help="An origin to allow; repeatable.")
@click.option("--remove", "removed", multiple=True, help="An origin to stop allowing; repeatable.")
@click.option("--replace", "replaced", multiple=True, help="The origins, all of them; repeatable.")
def sites_origins(
    name: str, added: tuple[str, ...], removed: tuple[str, ...], replaced: tuple[str, ...]
) -> None:
    """Change a site's allowed origins (one must remain)."""
    with engine_for(role="write") as engine:
        site = access.update_site(
            engine, CLI, name, add=added, remove=removed, replace=list(replaced) if replaced else None
        )
    click.echo(f"site {site.name!r} now allows {', '.join(sorted(site.origins))}")


@sites.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: this deletes the site's events too.")
def sites_remove(name: str, yes: bool) -> None:
    """Delete a site and every event stored for it."""
    if not yes:
        raise click.ClickException("this deletes the site and all its events; add --yes to confirm")
    settings = settings_from_env()
    with engine_for(settings, "write") as engine:
        access.delete_site(engine, CLI, name, seal_key=seal_key(settings))
    click.echo(f"site {name!r} deleted")


@cli.group()
def keys() -> None:
    """Secret API keys for reading (read) or administering (admin), for every site or some."""


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_duration_ms(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@keys.command("create")
@click.option("--scope", type=click.Choice(["read", "admin"]), required=True)
@click.option(
    "--site", "site_names", multiple=True, help="Only this site (by name); repeatable. Default: every site."
)
@click.option("--name", help="A label to tell keys apart.")
@click.option("--expires", callback=_duration, help="Lifetime, like 36h, 90d or 12w. Default: no expiry.")
def keys_create(scope: str, site_names: tuple[str, ...], name: str | None, expires: int | None) -> None:
    """Create a key; prints it once, as the last line. Only its hash is stored."""
    with engine_for(role="write") as engine:
        created = access.create_key(
            engine, CLI, scope, site_names=list(site_names) or None, name=name, expires_in_ms=expires
        )
    key = created.key
    sites_text = f" for site(s) {', '.join(key.site_names)}" if key.scoped else " for every site"
    expiry = f", expiring {iso_offset(key.expires_at)}" if key.expires_at is not None else ""
    click.echo(
        f"{scope} key {key.key_id} created{sites_text}{expiry}; it is shown only now, store it safely:"
    )
    click.echo(created.plaintext)


@keys.command("list")
def keys_list() -> None:
    """List keys (never their secrets): id, scope, status, sites, last used, name."""
    with engine_for() as engine:
        all_keys = access.list_keys(engine, CLI)
    if not all_keys:
        click.echo("no keys yet: calltrail keys create --scope read")
    now = now_ms()
    for key in all_keys:
        if key.revoked_at is not None:
            status = f"revoked {iso_offset(key.revoked_at)}"
        elif key.expires_at is not None:
            status = f"{'expired' if key.expired(now) else 'expires'} {iso_offset(key.expires_at)}"
        else:
            status = "active"
        scope_of_sites = ",".join(key.site_names) if key.scoped else "*"
        used = f"used {iso_offset(key.last_used_at)}" if key.last_used_at is not None else "never used"
        click.echo(f"{key.key_id}\t{key.scope}\t{status}\t{scope_of_sites or '-'}\t{used}\t{key.name or ''}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after ctk_)."""
    with engine_for(role="write") as engine:
        key = access.revoke_key(engine, CLI, key_id)
    click.echo(f"key {key.key_id} revoked")


def _instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from None


@cli.command("access-log")
@click.option("--key", "key_id", help="Only this key's entries (its id, the part after ctk_).")
@click.option("--from", "start", callback=_instant, help="From this time (ISO 8601; UTC without offset).")
@click.option("--to", "end", callback=_instant, help="Before this time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def access_log(key_id: str | None, start: int | None, end: int | None, limit: int, as_json: bool) -> None:
    """Who read customer data or administered what, newest first."""
    with engine_for() as engine:
        rows = list(
            access.access_page(engine, CLI, AccessFilter(key_id, start, end), after=None, limit=limit)
        )
    for row, _ in rows:
        if as_json:
            entry = {**row, "at": iso(row["at"]), "params": orjson.loads(row["params"])}
            click.echo(orjson.dumps(entry).decode())
            continue
        who = row["key_id"] or "cli"
        rows_text = "" if row["rows"] is None else f" rows={row['rows']}"
        status = "" if row["status"] is None else f" {row['status']}"
        click.echo(
            f"{iso_offset(row['at'])}\t{who}\t{row['client_ip'] or '-'}\t{row['kind']}\t{row['action']}"
            f"{status}{rows_text}\t{row['params']}"
        )
