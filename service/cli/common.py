"""What every `calltrail` command shares: the click group, the settings read from the environment, and an
engine on a database at the current schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from service.admin import registry
from service.admin.access import AdminError
from service.ccc import apps as ccc_apps
from service.config import ConfigError, Settings
from service.storage.engine import Role, is_sqlite_url, make_engine, normalize_url
from service.storage.migrations import SchemaOutdated, check_current, upgrade


def settings_from_env() -> Settings:
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
def engine_for(settings: Settings | None = None, role: Role = "read") -> Iterator[Engine]:
    settings = settings or settings_from_env()
    prepare_database(settings)
    engine = make_engine(settings, role)
    try:
        yield engine
    except (registry.RegistryError, ccc_apps.CccAppError, AdminError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@click.group()
@click.version_option(package_name="calltrail")
def cli() -> None:
    """CallTrail: event logging for Tencent Cloud Contact Center inbound-call pop-up pages.

    Settings come from CALLTRAIL_* environment variables (docs/configuration.md).
    """
