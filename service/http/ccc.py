"""The CCC receiver: ``POST /v1/ccc/push`` (CCC's Data Push) and ``POST /v1/ccc/oauth/token`` (the OAuth2
token endpoint of apps that push with bearer tokens). docs/ccc.md describes both.

Their answers are the two exceptions to the service's one error shape (http/errors.py), because their
clients are not ours: CCC reads ``{"ErrCode", "ErrMsg"}`` and counts a push delivered only when ``ErrCode`` is
0 (it pushes again otherwise), so every push answer has that shape, with the HTTP status as ``ErrCode``; and
an OAuth2 client reads RFC 6749 §5.1 tokens and §5.2 errors (``{"error", "error_description"}``).

Durability: a push is answered ``ErrCode 0`` only once its raw record is committed. Each push is one
synchronous transaction on the CCC engine (a write-role engine: ``BEGIN IMMEDIATE`` on SQLite), run in the
thread pool, rather than a request to the event writer: that writer's group commit is built for the events
table and its projection queue, and pushes come a few per call, so one commit each costs little and keeps
this path simple. A push repeating an X-TCCC-PUSH-UUID is answered success and stored once (raw_log.py).
The same transaction projects the push's session into its call record and joins its legs to page sessions
(projection/call_records.py), in a savepoint: a projection that fails still leaves the record stored.

The app comes from the credential (a user name and password, or a token), so the body's ``SdkAppId`` must
then name that app (403 otherwise); only an app registered without authentication is found by the body's
``SdkAppId``. Each app's pushes are rate-limited once the app is known, so nobody else can spend its budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from service.ccc.apps import AppRef, app_by_sdk_app_id, authenticate_client
from service.ccc.console import PUSH_PATH, TOKEN_PATH
from service.ccc.oauth import OAuthError, parse_token_request
from service.ccc.push import (
    BadCredential,
    BearerCredential,
    PushRefused,
    authenticate,
    parse_authorization,
    parse_body,
    push_meta,
    stored_text,
)
from service.ccc.raw_log import RawRecordRow, store_record
from service.ccc.tokens import issue_token_for_client
from service.domain.call_parsing import session_of
from service.domain.instants import now_ms
from service.http.responses import JSONResponse
from service.http.state import AppState, app_state
from service.projection.call_records import project_call_sessions
from service.storage.failures import classify_failure

log = logging.getLogger("calltrail.ccc")
T = TypeVar("T")
UNAVAILABLE_RETRY_AFTER_S = 5
_REALM = 'realm="CallTrail CCC push"'


class _Unavailable(Exception):
    """The database cannot answer now (down, locked, full); nothing was stored."""


class _TooLarge(Exception):
    pass


async def _in_thread(function: Callable[[], T]) -> T:
    """Blocking database work off the event loop; a database that cannot answer now is ``_Unavailable``,
    other failures propagate (a bug: logged, answered 500)."""
    try:
        return await run_in_threadpool(function)
    except Exception as exc:
        if classify_failure(exc) == "error":
            raise
        log.warning("CCC receiver: the database cannot answer now", exc_info=True)
        raise _Unavailable from None


async def _read(engine: Engine, work: Callable[[Connection], T]) -> T:
    def run() -> T:
        with engine.connect() as conn:
            return work(conn)

    return await _in_thread(run)


COMMIT_ATTEMPTS = 3


async def _commit(engine: Engine, work: Callable[[Connection], T]) -> T:
    def run() -> T:
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                # The transaction has committed when the block is left: only then may the answer say stored.
                with engine.begin() as conn:
                    return work(conn)
            except Exception as exc:
                # A deadlock or serialization failure rolled the whole transaction back: run it again
                # rather than answer 503 and spend one of CCC's three retries.
                if classify_failure(exc) != "retry" or attempt == COMMIT_ATTEMPTS:
                    raise
                log.info("CCC receiver: transaction retried after %s", type(exc).__name__)
        raise AssertionError("unreachable")

    return await _in_thread(run)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _ccc_answer(status: int, message: str = "", headers: Mapping[str, str] | None = None) -> Response:
    code = 0 if status == 200 else status
    return JSONResponse({"ErrCode": code, "ErrMsg": message}, status_code=status, headers=dict(headers or {}))


def _challenge(scheme: str | None = None) -> dict[str, str]:
    """The WWW-Authenticate of a 401: for a wrong token, Bearer's ``invalid_token`` (RFC 6750 §3.1); for a
    wrong password, or an app that needs one of the two, that scheme; else both."""
    basic = f'Basic {_REALM}, charset="UTF-8"'
    if scheme == "invalid_token":
        return {"WWW-Authenticate": f'Bearer {_REALM}, error="invalid_token"'}
    if scheme == "oauth2":
        return {"WWW-Authenticate": f"Bearer {_REALM}"}
    if scheme == "basic":
        return {"WWW-Authenticate": basic}
    return {"WWW-Authenticate": f"{basic}, Bearer {_REALM}"}


async def push(request: Request) -> Response:
    try:
        return await _push(request, app_state(request))
    except PushRefused as exc:
        if exc.status != 429:
            # CCC retries three times and then drops the record: a refusal that will repeat (a wrong
            # credential, a body it cannot fix) must be visible to the operator. The message holds no secret.
            log.warning("CCC push refused with %d: %s", exc.status, exc.message)
        return _ccc_answer(exc.status, exc.message, exc.headers)
    except _TooLarge:
        limit = app_state(request).settings.max_body_bytes
        return _ccc_answer(413, f"the body is over the limit of {limit} bytes (CALLTRAIL_MAX_BODY_BYTES)")
    except _Unavailable:
        return _ccc_answer(
            503,
            f"the database cannot take the record now; retry after {UNAVAILABLE_RETRY_AFTER_S} s",
            {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    except ClientDisconnect:
        return _ccc_answer(400, "the client closed the connection before the body arrived")
    except Exception:
        log.exception("unhandled error on POST %s", PUSH_PATH)
        return _ccc_answer(500, "the server failed; the error is logged")


async def _push(request: Request, state: AppState) -> Response:
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        # Refused rather than inflated: a few kilobytes could expand past the body limit.
        raise PushRefused(415, f"send the body uncompressed, without Content-Encoding {encoding!r}")
    body = await _read_body(request, state.settings.max_body_bytes)
    received_at = now_ms()
    app = await _app_of_credential(request.headers.get("authorization"), state, received_at)
    parsed = parse_body(body)
    meta = push_meta(
        request.query_params.getlist("action"),
        request.query_params.getlist("version"),
        request.headers.getlist("x-tccc-push-uuid"),
    )
    if app is None:
        app = await _read(state.read_engine, lambda conn: app_by_sdk_app_id(conn, parsed.sdk_app_id))
        if app is None:
            raise PushRefused(
                401,
                f"no CCC app {parsed.sdk_app_id} is registered here (calltrail ccc add)",
                _challenge(),
            )
        if app.auth != "none":
            raise PushRefused(
                401,
                f"the CCC app {app.sdk_app_id} pushes with {app.auth} authentication; no credential was sent",
                _challenge(app.auth),
            )
    elif parsed.sdk_app_id != app.sdk_app_id:
        raise PushRefused(
            403, f"this credential is for the CCC app {app.sdk_app_id}, not for SdkAppId {parsed.sdk_app_id}"
        )
    wait = state.rate_limits.ccc_app_wait(app.sdk_app_id)
    if wait is not None:
        limit, retry_after = wait
        raise PushRefused(
            429,
            f"too many pushes for this app ({limit}, CALLTRAIL_CCC_PUSH_RATE); retry after {retry_after} s",
            {"Retry-After": str(retry_after)},
        )
    text = stored_text(parsed, state.pii)
    session_id, problem = session_of(app.sdk_app_id, "push", meta.action, text)
    if problem is not None:
        # Kept (CCC would only push it again): the operator sees it here, and in the raw log's problem.
        log.warning(
            "CCC push %s of app %s cannot be read as a record: %s", meta.push_uuid, app.sdk_app_id, problem
        )
    row: RawRecordRow = {
        "sdk_app_id": app.sdk_app_id,
        "source": "push",
        "action": meta.action,
        "version": meta.version,
        "push_uuid": meta.push_uuid,
        "received_at": received_at,
        "body": text,
        "session_id": session_id,
        "problem": problem,
    }

    def store_and_project(conn: Connection) -> bool:
        stored = store_record(conn, row)
        if stored and session_id is not None:
            try:
                with conn.begin_nested():
                    project_call_sessions(conn, [(app.sdk_app_id, session_id)], state.join_rules)
            except Exception as exc:
                if classify_failure(exc) != "error":
                    raise
                # A projection bug must not lose the record: it is kept, and `calltrail rebuild` projects
                # it once the bug is fixed.
                log.exception(
                    "CCC push %s of app %s stored but not projected", meta.push_uuid, app.sdk_app_id
                )
        return stored

    stored = await _commit(state.ccc_engine, store_and_project)
    if not stored:
        log.info("CCC push %s of app %s repeated; already stored", meta.push_uuid, app.sdk_app_id)
    return _ccc_answer(200)


async def _app_of_credential(header: str | None, state: AppState, at_ms: int) -> AppRef | None:
    """The app a credential proves, None when there is no credential; 401 for a wrong one."""
    if header is None or not header.strip():
        return None
    try:
        credential = parse_authorization(header)
    except BadCredential as exc:
        raise PushRefused(401, str(exc), _challenge()) from None
    app = await _read(state.read_engine, lambda conn: authenticate(conn, credential, at_ms))
    if app is None:
        bearer = isinstance(credential, BearerCredential)
        what = "token is unknown, expired or revoked" if bearer else "user name or password is wrong"
        scheme = "invalid_token" if bearer else "basic"
        raise PushRefused(401, f"the {what} (calltrail ccc list / rotate)", _challenge(scheme))
    return app


def _oauth_error(exc: OAuthError) -> Response:
    headers = {"Pragma": "no-cache"}
    if exc.status == 401:
        # RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
        headers["WWW-Authenticate"] = 'Basic realm="CallTrail CCC token", charset="UTF-8"'
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description}, status_code=exc.status, headers=headers
    )


async def token(request: Request) -> Response:
    try:
        return await _token(request, app_state(request))
    except OAuthError as exc:
        return _oauth_error(exc)
    except _TooLarge:
        return _oauth_error(OAuthError("invalid_request", "the body is too large", 413))
    except _Unavailable:
        message = f"the database cannot answer now; retry after {UNAVAILABLE_RETRY_AFTER_S} s"
        return _oauth_error(OAuthError("temporarily_unavailable", message, 503, UNAVAILABLE_RETRY_AFTER_S))
    except ClientDisconnect:
        return _oauth_error(OAuthError("invalid_request", "the connection closed before the body arrived"))
    except Exception:
        log.exception("unhandled error on POST %s", TOKEN_PATH)
        return _oauth_error(OAuthError("server_error", "the server failed; the error is logged", 500))


async def _token(request: Request, state: AppState) -> Response:
    body = await _read_body(request, state.settings.max_body_bytes)
    headers = request.headers
    asked = parse_token_request(headers.get("authorization"), headers.get("content-type"), body)
    client_id, secret = asked.client_id, asked.client_secret
    # Checked on the read engine first, so that wrong credentials never take a write transaction (on SQLite
    # the database's write lock); checked again, locked, where the token is written (tokens.py says why).
    app = await _read(state.read_engine, lambda conn: authenticate_client(conn, "oauth2", client_id, secret))
    at_ms = now_ms()
    issued = None
    if app is not None:
        # A token is a write: the app's push budget bounds how often it may ask, as it bounds its pushes.
        wait = state.rate_limits.ccc_app_wait(app.sdk_app_id)
        if wait is not None:
            limit, retry_after = wait
            message = f"too many requests for this app ({limit}, CALLTRAIL_CCC_PUSH_RATE)"
            raise OAuthError("temporarily_unavailable", message, 429, retry_after)
        issued = await _commit(
            state.ccc_engine, lambda conn: issue_token_for_client(conn, client_id, secret, at_ms)
        )
    if issued is None:
        raise OAuthError("invalid_client", "unknown client id or wrong client secret")
    return JSONResponse(
        {"access_token": issued.access_token, "token_type": "Bearer", "expires_in": issued.expires_in},
        # RFC 6749 §5.1: a token answer must not be cached.
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


routes = [Route(PUSH_PATH, push, methods=["POST"]), Route(TOKEN_PATH, token, methods=["POST"])]
