"""`calltrail sites` and `calltrail keys`: who may write events and who may read them."""

from __future__ import annotations

import click

from service.admin import registry
from service.cli.common import cli, engine_for, settings_from_env
from service.domain.instants import iso_offset
from service.runtime import seal_key


@cli.group()
def sites() -> None:
    """Sites: a pop-up page's public key and the origins allowed to write with it."""


@sites.command("add")
@click.argument("name")
@click.option("--origin", "origins", multiple=True, required=True, help="Allowed page origin; repeatable.")
def sites_add(name: str, origins: tuple[str, ...]) -> None:
    """Create a site; prints its public site key as the last line."""
    with engine_for() as engine:
        site = registry.add_site(engine, name, origins)
    click.echo(f"site {site.name!r} created for {', '.join(sorted(site.origins))}")
    click.echo("embed its public site key in the pop-up page (data-site); it can only write events:")
    click.echo(site.site_key)


@sites.command("list")
def sites_list() -> None:
    """List sites, their keys and origins."""
    with engine_for() as engine:
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
    settings = settings_from_env()
    with engine_for(settings, "write") as engine:
        registry.delete_site(engine, name, seal_key=seal_key(settings))
    click.echo(f"site {name!r} deleted")


@cli.group()
def keys() -> None:
    """Secret API keys for reading (read) or administering (admin)."""


@keys.command("create")
@click.option("--scope", type=click.Choice(["read", "admin"]), required=True)
@click.option("--name", help="A label to tell keys apart.")
def keys_create(scope: str, name: str | None) -> None:
    """Create a key; prints it once, as the last line. Only its hash is stored."""
    with engine_for() as engine:
        created = registry.create_key(engine, scope, name)
    click.echo(f"{scope} key {created.key.key_id} created; it is shown only now, store it safely:")
    click.echo(created.plaintext)


@keys.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    with engine_for() as engine:
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
    with engine_for() as engine:
        key = registry.revoke_key(engine, key_id)
    click.echo(f"key {key.key_id} revoked")
