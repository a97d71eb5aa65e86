"""Who is asking: the secret key of ``Authorization: Bearer``, checked (unknown, revoked and expired keys
are a 401), its last use noted at most once a minute, and kept on the request for what follows: the site
scope every report applies (reports/serving.py), the admin API's rights (http/admin.py) and the access log
(http/audit.py)."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from service.admin.access import Actor
from service.admin.registry import ApiKey, KeyCheck, check_key, note_use
from service.domain.instants import iso, now_ms
from service.http.errors import ApiError
from service.http.state import AppState, app_state

log = logging.getLogger("calltrail.http")
KEY_STATE = "calltrail_key"
RETRY_AFTER_S = 5


def _check(read_engine: Engine, write_engine: Engine, token: str) -> tuple[ApiKey | None, KeyCheck]:
    at = now_ms()
    key, outcome = check_key(read_engine, token, at)
    if key is not None and outcome == "ok":
        try:
            note_use(write_engine, key, at)
        except OperationalError:
            # A locked database must not refuse a read; the next request within the minute tries again.
            log.warning("could not note the key's last use", exc_info=True)
    return key, outcome


def busy() -> ApiError:
    return ApiError(
        503,
        "unavailable",
        f"the database is busy or unreachable; retry after {RETRY_AFTER_S} s",
        headers={"retry-after": str(RETRY_AFTER_S)},
    )


async def authenticated(request: HTTPConnection, state: AppState | None = None) -> ApiKey:
    """The caller's live key, or a 401 that says what to do."""
    state = state or app_state(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send a read or admin key as `Authorization: Bearer <key>` (see `calltrail keys create`)",
            headers={"www-authenticate": "Bearer"},
        )
    try:
        key, outcome = await run_in_threadpool(_check, state.read_engine, state.ccc_engine, token.strip())
    except OperationalError:
        log.warning("checking a key failed: the database is unreachable or locked", exc_info=True)
        raise busy() from None
    if key is None:
        raise ApiError(
            401, "unauthorized", "this key is unknown or revoked", headers={"www-authenticate": "Bearer"}
        )
    if outcome == "expired":
        raise ApiError(
            401,
            "unauthorized",
            f"this key expired at {iso(key.expires_at)}; ask an admin for a new one",
            headers={"www-authenticate": 'Bearer error="invalid_token"'},
        )
    request.scope.setdefault("state", {})[KEY_STATE] = key
    return key


def request_key(request: HTTPConnection) -> ApiKey | None:
    """The key ``authenticated`` accepted for this request, if it did."""
    found = request.scope.get("state", {}).get(KEY_STATE)
    return found if isinstance(found, ApiKey) else None


def client_ip(request: HTTPConnection) -> str | None:
    # uvicorn has already put the proxy's X-Forwarded-For here for the proxies it trusts.
    return request.client.host if request.client else None


def actor(request: HTTPConnection, key: ApiKey) -> Actor:
    return Actor.of_key(key, client_ip(request))
