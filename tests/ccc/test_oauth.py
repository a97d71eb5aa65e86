"""POST /v1/ccc/oauth/token (client-credentials grant) and pushes with its bearer tokens, on both
databases."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine

from service.ccc.apps import Credentials, add_app, rotate_secret
from service.ccc.tokens import TOKEN_LIFETIME_S, issue_token
from service.config import Settings
from service.domain.instants import now_ms
from tests.ccc.pushes import (
    APP_A,
    APP_B,
    OK,
    TOKEN,
    assert_ccc_error,
    basic,
    bearer,
    cdr,
    everything_stored,
    push,
    stored,
)
from tests.conftest import running_app

pytestmark = pytest.mark.anyio

FORM = {"content-type": "application/x-www-form-urlencoded"}
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def client(engine: Engine) -> Credentials:
    return add_app(engine, APP_A, "oauth2")


def ids(credentials: Credentials) -> tuple[str, str]:
    assert credentials.app.client_id is not None and credentials.secret is not None
    return credentials.app.client_id, credentials.secret


def client_basic(client_id: str, secret: str) -> dict[str, str]:
    # RFC 6749 §2.3.1: each part form-urlencoded, then Basic.
    encoded = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"authorization": "Basic " + base64.b64encode(encoded).decode()}


async def token_request(
    api: httpx.AsyncClient,
    parameters: dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    as_json: bool = False,
) -> httpx.Response:
    if as_json:
        return await api.post(TOKEN, json=parameters, headers=headers or {})
    return await api.post(TOKEN, data=parameters, headers={**FORM, **(headers or {})})


def assert_token(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"access_token", "token_type", "expires_in"}
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == TOKEN_LIFETIME_S
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    token: str = answer["access_token"]
    return token


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error", "error_description"}
    assert answer["error"] == error
    assert answer["error_description"]
    assert response.headers["cache-control"] == "no-store"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_client_secret_basic_form_gets_a_token_that_pushes(
    api: httpx.AsyncClient, client: Credentials, engine: Engine
) -> None:
    token = assert_token(await token_request(api, GRANT, client_basic(*ids(client))))
    response = await push(api, cdr(APP_A), bearer(token), push_uuid="p1")
    assert response.json() == OK
    (row,) = stored(engine)
    assert row.sdk_app_id == APP_A
    # Neither the client secret nor the token is kept in the clear.
    assert token not in everything_stored(engine)
    assert ids(client)[1] not in everything_stored(engine)


async def test_client_secret_post_and_json_bodies_get_tokens(
    api: httpx.AsyncClient, client: Credentials
) -> None:
    client_id, secret = ids(client)
    in_body = {**GRANT, "client_id": client_id, "client_secret": secret}
    tokens = [
        assert_token(await token_request(api, in_body)),
        assert_token(await token_request(api, in_body, as_json=True)),
        assert_token(await token_request(api, GRANT, client_basic(client_id, secret), as_json=True)),
        # A scope is accepted and ignored; a client id in the body beside the header is the same client.
        assert_token(await token_request(api, {**GRANT, "scope": "push"}, client_basic(client_id, secret))),
        assert_token(
            await token_request(api, {**GRANT, "client_id": client_id}, client_basic(client_id, secret))
        ),
    ]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert (await push(api, cdr(APP_A), bearer(token))).json() == OK


async def test_a_wrong_client_is_401_invalid_client(
    api: httpx.AsyncClient, client: Credentials, engine: Engine
) -> None:
    client_id, secret = ids(client)
    basic_app = add_app(engine, APP_B, "basic")
    for headers, parameters in [
        (client_basic(client_id, secret + "x"), GRANT),
        (client_basic("ccc_0000000000000000", secret), GRANT),
        ({}, {**GRANT, "client_id": client_id, "client_secret": "wrong"}),
        ({}, {**GRANT, "client_id": client_id}),
        ({}, GRANT),
        ({"authorization": "Bearer something"}, GRANT),
        ({"authorization": "Basic !!!"}, GRANT),
        # A basic app's user name and password are no OAuth2 client.
        (client_basic(*ids(basic_app)), GRANT),
    ]:
        assert_oauth_error(await token_request(api, parameters, headers), 401, "invalid_client")


async def test_bad_requests_are_400_with_rfc_6749_codes(api: httpx.AsyncClient, client: Credentials) -> None:
    client_id, secret = ids(client)
    auth = client_basic(client_id, secret)
    assert_oauth_error(
        await token_request(api, {"grant_type": "password"}, auth), 400, "unsupported_grant_type"
    )
    assert_oauth_error(await token_request(api, {}, auth), 400, "invalid_request")
    both = {**GRANT, "client_id": client_id, "client_secret": secret}
    assert_oauth_error(await token_request(api, both, auth), 400, "invalid_request")
    twice = b"grant_type=client_credentials&grant_type=client_credentials"
    repeated = await api.post(TOKEN, content=twice, headers={**FORM, **auth})
    assert_oauth_error(repeated, 400, "invalid_request")
    xml = await api.post(TOKEN, content=b"<grant/>", headers={"content-type": "text/xml", **auth})
    assert_oauth_error(xml, 400, "invalid_request")
    for content in (b"[1]", b"{", b'{"grant_type": 5}'):
        answer = await api.post(TOKEN, content=content, headers={"content-type": "application/json", **auth})
        assert_oauth_error(answer, 400, "invalid_request")
    large = await api.post(TOKEN, content=b"grant_type=" + b"x" * 70_000, headers={**FORM, **auth})
    assert_oauth_error(large, 413, "invalid_request")


async def test_an_expired_token_is_401(api: httpx.AsyncClient, client: Credentials, engine: Engine) -> None:
    issued_long_ago = now_ms() - (TOKEN_LIFETIME_S + 1) * 1000
    with engine.begin() as conn:
        expired = issue_token(conn, client.app.id, issued_long_ago).access_token
    response = await push(api, cdr(APP_A), bearer(expired))
    assert_ccc_error(response, 401, "token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert stored(engine) == []


async def test_rotation_revokes_tokens_and_the_old_secret(
    api: httpx.AsyncClient, client: Credentials, engine: Engine
) -> None:
    client_id, old_secret = ids(client)
    token = assert_token(await token_request(api, GRANT, client_basic(client_id, old_secret)))
    assert (await push(api, cdr(APP_A), bearer(token))).json() == OK

    rotated = rotate_secret(engine, APP_A)
    assert_ccc_error(await push(api, cdr(APP_A), bearer(token)), 401)
    old = await token_request(api, GRANT, client_basic(client_id, old_secret))
    assert_oauth_error(old, 401, "invalid_client")
    fresh = assert_token(await token_request(api, GRANT, client_basic(*ids(rotated))))
    assert (await push(api, cdr(APP_A), bearer(fresh))).json() == OK


async def test_a_token_pushes_only_for_its_app_and_client_ids_are_not_basic_users(
    api: httpx.AsyncClient, client: Credentials, engine: Engine
) -> None:
    add_app(engine, APP_B, "oauth2")
    token = assert_token(await token_request(api, GRANT, client_basic(*ids(client))))
    assert_ccc_error(await push(api, cdr(APP_B), bearer(token)), 403, str(APP_B))
    # An oauth2 app's client id and secret, sent straight to the push as Basic, are not a credential there.
    assert_ccc_error(await push(api, cdr(APP_A), basic(*ids(client))), 401)
    assert stored(engine) == []


async def test_the_token_endpoints_database_failure_is_503(
    api: httpx.AsyncClient, client: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    def locked(*_args: Any) -> None:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr("service.http.ccc.issue_token_for_client", locked)
    answer = await token_request(api, GRANT, client_basic(*ids(client)))
    assert_oauth_error(answer, 503, "temporarily_unavailable")
    assert answer.headers["retry-after"] == "5"


async def test_token_requests_spend_the_apps_budget_and_wrong_secrets_none(
    db_url: str, engine: Engine
) -> None:
    client = add_app(engine, APP_A, "oauth2")
    client_id, secret = ids(client)
    async with running_app(Settings(database_url=db_url, ccc_push_rate="2/minute")) as api:
        for _ in range(3):  # wrong secrets are refused before the budget is charged
            assert (await token_request(api, GRANT, client_basic(client_id, "wrong"))).status_code == 401
        for _ in range(2):
            assert (await token_request(api, GRANT, client_basic(client_id, secret))).status_code == 200
        limited = await token_request(api, GRANT, client_basic(client_id, secret))
    assert limited.status_code == 429
    assert limited.json()["error"] == "temporarily_unavailable"
    assert "CALLTRAIL_CCC_PUSH_RATE" in limited.json()["error_description"]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
