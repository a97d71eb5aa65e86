"""`calltrail ccc add | list | remove | rotate`, on both databases."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select

from service.admin.registry import Site
from service.ccc import apps
from service.ccc.tokens import app_of_token, issue_token
from service.cli import cli
from service.domain.instants import now_ms
from service.storage.schema import ccc_apps

PUBLIC_URL = "https://events.example.com/calltrail"


def run(db_url: str, *args: str, public_url: str | None = None) -> Result:
    env = {"CALLTRAIL_DATABASE_URL": db_url}
    if public_url is not None:
        env["CALLTRAIL_PUBLIC_URL"] = public_url
    return CliRunner().invoke(cli, ["ccc", *args], env=env, catch_exceptions=False)


def run_json(db_url: str, *args: str, public_url: str | None = None) -> Any:
    result = run(db_url, *args, "--json", public_url=public_url)
    assert result.exit_code == 0, result.output
    # Exactly one JSON document on stdout: a script reads it whole.
    return orjson.loads(result.stdout)


def login(engine: Engine, auth: apps.Auth, client_id: str, secret: str) -> apps.AppRef | None:
    with engine.connect() as conn:
        return apps.authenticate_client(conn, auth, client_id, secret)


def stored_text(engine: Engine) -> str:
    with engine.connect() as conn:
        return repr(conn.execute(select(ccc_apps)).all())


def test_add_basic_prints_exactly_the_console_fields_once(db_url: str, engine: Engine) -> None:
    found = run_json(db_url, "add", "1400000001", "--auth", "basic")

    assert set(found) == {"sdk_app_id", "push_path", "auth", "username", "password"}
    assert found["sdk_app_id"] == 1400000001
    assert found["push_path"] == "/v1/ccc/push"
    assert found["auth"] == "basic"
    assert login(engine, "basic", found["username"], found["password"]) is not None
    assert login(engine, "basic", found["username"], found["password"] + "x") is None
    # Only a hash of the password is kept.
    assert found["password"] not in stored_text(engine)
    assert found["username"] in stored_text(engine)


def test_add_with_a_public_url_adds_the_full_urls(db_url: str, engine: Engine) -> None:
    basic = run_json(db_url, "add", "1400000001", "--auth", "basic", public_url=PUBLIC_URL + "/")
    assert set(basic) == {"sdk_app_id", "push_path", "push_url", "auth", "username", "password"}
    assert basic["push_url"] == "https://events.example.com/calltrail/v1/ccc/push"

    oauth = run_json(db_url, "add", "1400000002", "--auth", "oauth2", public_url=PUBLIC_URL)
    assert set(oauth) == {
        "sdk_app_id", "push_path", "push_url", "auth",
        "client_id", "client_secret", "token_path", "token_url",
    }  # fmt: skip
    assert oauth["token_path"] == "/v1/ccc/oauth/token"
    assert oauth["token_url"] == "https://events.example.com/calltrail/v1/ccc/oauth/token"
    assert login(engine, "oauth2", oauth["client_id"], oauth["client_secret"]) is not None
    # A client id is not a basic-auth user name: each credential works in its own mode only.
    assert login(engine, "basic", oauth["client_id"], oauth["client_secret"]) is None


def test_add_oauth2_without_a_public_url_has_only_paths(db_url: str) -> None:
    found = run_json(db_url, "add", "1400000002", "--auth", "oauth2")
    assert set(found) == {"sdk_app_id", "push_path", "auth", "client_id", "client_secret", "token_path"}


def test_add_none_warns_on_stderr_and_prints_no_credential(db_url: str, engine: Engine) -> None:
    result = run(db_url, "add", "1400000003", "--auth", "none", "--json")
    assert result.exit_code == 0, result.output
    expected = {"sdk_app_id": 1400000003, "push_path": "/v1/ccc/push", "auth": "none"}
    assert orjson.loads(result.stdout) == expected
    assert "warning" in result.stderr
    assert "no authentication" in result.stderr
    with_url = run_json(db_url, "add", "1400000004", "--auth", "none", public_url=PUBLIC_URL)
    assert set(with_url) == {"sdk_app_id", "push_path", "push_url", "auth"}


def test_add_as_text_says_what_to_type_where(db_url: str) -> None:
    result = run(db_url, "add", "1400000001", "--auth", "basic", public_url=PUBLIC_URL)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Data Push" in text
    assert f"push address:   {PUBLIC_URL}/v1/ccc/push" in text
    assert "username:       ccc_" in text
    assert "password:       " in text
    assert "shown only now" in text

    without_url = run(db_url, "add", "1400000002", "--auth", "oauth2").stdout
    assert "CALLTRAIL_PUBLIC_URL" in without_url
    assert "/v1/ccc/oauth/token" in without_url
    assert "ClientSecret:" in without_url


def test_add_ties_the_app_to_existing_sites_only(db_url: str, engine: Engine, site: Site) -> None:
    refused = run(db_url, "add", "1400000001", "--auth", "basic", "--site", "crm", "--site", "nope")
    assert refused.exit_code == 1
    assert "no site named 'nope'" in refused.output
    assert apps.list_apps(engine) == []

    assert run(db_url, "add", "1400000001", "--auth", "basic", "--site", "crm").exit_code == 0
    (app,) = apps.list_apps(engine)
    assert app.sites == ("crm",)


def test_a_second_add_of_one_app_is_refused(db_url: str, engine: Engine) -> None:
    first = run_json(db_url, "add", "1400000001", "--auth", "basic")
    again = run(db_url, "add", "1400000001", "--auth", "oauth2")
    assert again.exit_code == 1
    assert "already registered" in again.output
    # The first registration is untouched.
    assert login(engine, "basic", first["username"], first["password"]) is not None


@pytest.mark.parametrize("bad", ["0", "-5", "abc", str(2**63)])
def test_add_refuses_what_is_not_an_sdk_app_id(db_url: str, bad: str) -> None:
    assert run(db_url, "add", bad, "--auth", "basic").exit_code == 2


def test_list_shows_apps_but_never_secrets(db_url: str, site: Site) -> None:
    basic = run_json(db_url, "add", "1400000001", "--auth", "basic", "--site", "crm")
    oauth = run_json(db_url, "add", "1400000002", "--auth", "oauth2")
    run_json(db_url, "add", "1400000003", "--auth", "none")

    text = run(db_url, "list").stdout
    listed = run_json(db_url, "list")
    for output in (text, orjson.dumps(listed).decode()):
        assert basic["username"] in output
        assert oauth["client_id"] in output
        assert basic["password"] not in output
        assert oauth["client_secret"] not in output
    assert [entry["sdk_app_id"] for entry in listed] == [1400000001, 1400000002, 1400000003]
    assert listed[0] == {
        "sdk_app_id": 1400000001,
        "auth": "basic",
        "username": basic["username"],
        "sites": ["crm"],
        "created_at": listed[0]["created_at"],
    }
    assert set(listed[1]) == {"sdk_app_id", "auth", "client_id", "sites", "created_at"}
    assert set(listed[2]) == {"sdk_app_id", "auth", "sites", "created_at"}
    assert isinstance(listed[0]["created_at"], int)


def test_remove_unregisters_and_an_unknown_app_is_an_error(db_url: str, engine: Engine) -> None:
    found = run_json(db_url, "add", "1400000001", "--auth", "basic")
    assert run(db_url, "remove", "1400000001").exit_code == 0
    assert apps.list_apps(engine) == []
    assert login(engine, "basic", found["username"], found["password"]) is None
    missing = run(db_url, "remove", "1400000001")
    assert missing.exit_code == 1
    assert "no CCC app 1400000001" in missing.output


def test_rotate_basic_replaces_the_password(db_url: str, engine: Engine) -> None:
    old = run_json(db_url, "add", "1400000001", "--auth", "basic")
    new = run_json(db_url, "rotate", "1400000001")
    assert set(new) == set(old)
    assert new["username"] == old["username"]
    assert new["password"] != old["password"]
    assert login(engine, "basic", old["username"], old["password"]) is None
    assert login(engine, "basic", new["username"], new["password"]) is not None
    text = run(db_url, "rotate", "1400000001").stdout
    assert "password:" in text
    assert "old one no longer works" in text


def test_rotate_oauth2_revokes_its_tokens(db_url: str, engine: Engine) -> None:
    old = run_json(db_url, "add", "1400000002", "--auth", "oauth2")
    app = apps.get_app(engine, 1400000002)
    assert app is not None
    with engine.begin() as conn:
        token = issue_token(conn, app.id, now_ms()).access_token
    with engine.connect() as conn:
        assert app_of_token(conn, token, now_ms()) is not None

    new = run_json(db_url, "rotate", "1400000002")
    assert new["client_id"] == old["client_id"]
    with engine.connect() as conn:
        assert app_of_token(conn, token, now_ms()) is None
    assert login(engine, "oauth2", old["client_id"], old["client_secret"]) is None
    assert login(engine, "oauth2", new["client_id"], new["client_secret"]) is not None


def test_rotate_refuses_an_app_without_a_secret_or_unknown(db_url: str) -> None:
    run_json(db_url, "add", "1400000003", "--auth", "none")
    result = run(db_url, "rotate", "1400000003")
    assert result.exit_code == 1
    assert "no secret to rotate" in result.output
    assert run(db_url, "rotate", "1400000009").exit_code == 1
