"""The calltrail command, on both databases."""

from __future__ import annotations

import re

from click.testing import CliRunner, Result
from sqlalchemy import Engine

from service.admin import registry
from service.cli import cli
from tests import databases


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"CALLTRAIL_DATABASE_URL": db_url}, catch_exceptions=False)


def test_sites_add_prints_the_key_last(db_url: str, engine: Engine) -> None:
    result = run(
        db_url,
        "sites",
        "add",
        "crm",
        "--origin",
        "https://crm.example.com",
        "--origin",
        "http://localhost:3000",
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    (site,) = registry.list_sites(engine)
    assert site.site_key == key
    assert site.origins == {"https://crm.example.com", "http://localhost:3000"}

    listed = run(db_url, "sites", "list")
    assert key in listed.output
    assert "https://crm.example.com" in listed.output


def test_sites_add_refuses_a_bad_origin(db_url: str, engine: Engine) -> None:
    result = run(db_url, "sites", "add", "crm", "--origin", "crm.example.com")
    assert result.exit_code == 1
    assert "not an origin" in result.output
    assert registry.list_sites(engine) == []


def test_sites_remove_needs_confirmation(db_url: str, engine: Engine) -> None:
    run(db_url, "sites", "add", "crm", "--origin", "https://crm.example.com")
    assert run(db_url, "sites", "remove", "crm").exit_code == 1
    assert len(registry.list_sites(engine)) == 1
    assert run(db_url, "sites", "remove", "crm", "--yes").exit_code == 0
    assert registry.list_sites(engine) == []


def test_keys_create_list_revoke(db_url: str, engine: Engine) -> None:
    result = run(db_url, "keys", "create", "--scope", "read", "--name", "dashboard")
    assert result.exit_code == 0, result.output
    plaintext = result.output.strip().splitlines()[-1]
    key = registry.authenticate_key(engine, plaintext)
    assert key is not None
    assert key.scope == "read"

    listed = run(db_url, "keys", "list").output
    assert key.key_id in listed
    assert "active" in listed
    assert plaintext not in listed

    assert run(db_url, "keys", "revoke", key.key_id).exit_code == 0
    assert registry.authenticate_key(engine, plaintext) is None
    # The CLI's own form of an instant: to the millisecond, with +00:00.
    assert re.search(
        r"\trevoked \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}000)?\+00:00\t", run(db_url, "keys", "list").output
    )


def test_keys_create_needs_a_known_scope(db_url: str, engine: Engine) -> None:
    result = run(db_url, "keys", "create", "--scope", "write")
    assert result.exit_code == 2
    assert registry.list_keys(engine) == []


def test_serve_refuses_an_outdated_postgres_schema(pg_admin: Engine) -> None:
    # SQLite needs no such check: serve migrates it (tests/server/test_server.py).
    name = databases.pg_create_database(pg_admin, migrated=False)
    empty_db_url = databases.pg_url(name)
    try:
        check_serve_refuses_then_migrate(empty_db_url)
    finally:
        databases.pg_drop_database(pg_admin, name)


def check_serve_refuses_then_migrate(empty_db_url: str) -> None:
    result = run(empty_db_url, "serve", "--port", "1")
    assert result.exit_code == 1
    assert "calltrail migrate" in result.output

    assert run(empty_db_url, "migrate").exit_code == 0
    listed = run(empty_db_url, "sites", "list")
    assert listed.exit_code == 0
    assert "no sites yet" in listed.output


def test_invalid_setting_is_reported() -> None:
    result = CliRunner().invoke(cli, ["sites", "list"], env={"CALLTRAIL_WORKERS": "many"})
    assert result.exit_code == 1
    assert "CALLTRAIL_WORKERS" in result.output


def test_unsupported_database_url_is_reported() -> None:
    result = CliRunner().invoke(
        cli, ["sites", "list"], env={"CALLTRAIL_DATABASE_URL": "mysql://root@localhost/x"}
    )
    assert result.exit_code == 1
    assert "unsupported database URL" in result.output
