"""CCC apps (contact-center instances, by SdkAppId) allowed to push records here, with their credentials.

Each app has one authentication mode, as configured in the CCC console's Data Push settings: ``basic`` (a
user name and password, sent as ``Authorization: Basic``), ``oauth2`` (a client id and secret, exchanged at
the token endpoint for bearer tokens: service/ccc/tokens.py) or ``none``. The user name or client id is
generated, not secret, and unique: it is what finds the app from a credential. The secret is 256 random
bits, shown once and stored as SHA-256, checked in constant time, exactly as secret API keys are
(service/domain/keys.py says why a slow password hash would buy nothing here).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.domain.instants import now_ms
from service.domain.keys import hash_secret, secret_matches
from service.storage.schema import ccc_app_sites, ccc_apps, ccc_tokens, sites

Auth = Literal["basic", "oauth2", "none"]
AUTH_MODES: tuple[Auth, ...] = ("basic", "oauth2", "none")
CLIENT_ID_PREFIX = "ccc_"
_CLIENT_ID_RE = re.compile(r"ccc_[0-9a-f]{16}")
# SdkAppIds are positive and fit the BIGINT columns.
MAX_SDK_APP_ID = 2**63 - 1
# Compared against when no app has the client id, so that an unknown id costs the time a wrong secret does.
_NO_SUCH_HASH = hash_secret(secrets.token_urlsafe(32))


class CccAppError(ValueError):
    """An app operation that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class AppRef:
    """What a request needs to know of the app it came from."""

    id: int
    sdk_app_id: int
    auth: Auth


@dataclass(frozen=True)
class CccApp:
    id: int
    sdk_app_id: int
    auth: Auth
    client_id: str | None
    sites: tuple[str, ...]  # site names, sorted
    created_at: int  # ms since the epoch


@dataclass(frozen=True)
class Credentials:
    """An app with its secret in the clear: what the operator types into the console, shown only once."""

    app: CccApp
    secret: str | None = field(repr=False)  # never in a log line or a traceback's locals


def check_sdk_app_id(sdk_app_id: int) -> int:
    if not 0 < sdk_app_id <= MAX_SDK_APP_ID:
        raise CccAppError(f"{sdk_app_id} is not an SdkAppId: expected a positive integer like 1400000000")
    return sdk_app_id


def _check_auth(auth: str) -> Auth:
    if auth not in AUTH_MODES:
        raise CccAppError(f"auth must be one of {', '.join(AUTH_MODES)}")
    return auth


def _new_login(auth: Auth) -> tuple[str | None, str | None]:
    """(client id, secret) for a new app or a rotation; none for an app without authentication."""
    if auth == "none":
        return None, None
    # 64 random bits: enough to be unique; the id is no secret (the password or client secret is).
    return CLIENT_ID_PREFIX + secrets.token_hex(8), secrets.token_urlsafe(32)


def _site_ids(conn: Connection, names: Iterable[str]) -> list[int]:
    wanted = sorted({name.strip() for name in names})
    if not wanted:
        return []
    rows = conn.execute(select(sites.c.name, sites.c.id).where(sites.c.name.in_(wanted)))
    found = {name: site_id for name, site_id in rows}
    missing = [name for name in wanted if name not in found]
    if missing:
        raise CccAppError(f"no site named {', '.join(map(repr, missing))} (see `calltrail sites list`)")
    return [found[name] for name in wanted]


def add_app(engine: Engine, sdk_app_id: int, auth: str, site_names: Iterable[str] = ()) -> Credentials:
    """Register an app; its secret (for ``basic`` and ``oauth2``) is in the answer and nowhere else."""
    try:
        with engine.begin() as conn:
            return insert_app(conn, sdk_app_id, auth, site_names)
    except IntegrityError:
        raise CccAppError(already_registered(sdk_app_id)) from None


def already_registered(sdk_app_id: int) -> str:
    return (
        f"the CCC app {sdk_app_id} is already registered (`calltrail ccc rotate {sdk_app_id}` gives it a "
        "new secret; `calltrail ccc remove` unregisters it)"
    )


def insert_app(conn: Connection, sdk_app_id: int, auth: str, site_names: Iterable[str] = ()) -> Credentials:
    """``add_app`` within the caller's transaction; a registered SdkAppId raises IntegrityError."""
    check_sdk_app_id(sdk_app_id)
    mode = _check_auth(auth)
    client_id, secret = _new_login(mode)
    created_at = now_ms()
    site_ids = _site_ids(conn, site_names)
    app_id = conn.execute(
        insert(ccc_apps)
        .values(
            sdk_app_id=sdk_app_id,
            auth=mode,
            client_id=client_id,
            secret_hash=hash_secret(secret) if secret is not None else None,
            created_at=created_at,
        )
        .returning(ccc_apps.c.id)
    ).scalar_one()
    if site_ids:
        conn.execute(insert(ccc_app_sites), [{"app_id": app_id, "site_id": s} for s in site_ids])
    names = _sites_of(conn, app_id)
    return Credentials(CccApp(app_id, sdk_app_id, mode, client_id, names, created_at), secret)


def _sites_of(conn: Connection, app_id: int) -> tuple[str, ...]:
    rows = conn.execute(
        select(sites.c.name)
        .join(ccc_app_sites, ccc_app_sites.c.site_id == sites.c.id)
        .where(ccc_app_sites.c.app_id == app_id)
        .order_by(sites.c.name)
    ).scalars()
    return tuple(rows)


def _app(row: Row[Any], site_names: tuple[str, ...]) -> CccApp:
    return CccApp(row.id, row.sdk_app_id, row.auth, row.client_id, site_names, row.created_at)


def list_apps(engine: Engine) -> list[CccApp]:
    with engine.connect() as conn:
        return apps_in(conn)


def apps_in(conn: Connection) -> list[CccApp]:
    site_rows = conn.execute(
        select(ccc_app_sites.c.app_id, sites.c.name)
        .join(sites, sites.c.id == ccc_app_sites.c.site_id)
        .order_by(sites.c.name)
    )
    by_app: dict[int, list[str]] = {}
    for app_id, name in site_rows:
        by_app.setdefault(app_id, []).append(name)
    rows = conn.execute(select(ccc_apps).order_by(ccc_apps.c.sdk_app_id)).all()
    return [_app(r, tuple(by_app.get(r.id, ()))) for r in rows]


def get_app(engine: Engine, sdk_app_id: int) -> CccApp | None:
    with engine.connect() as conn:
        row = conn.execute(select(ccc_apps).where(ccc_apps.c.sdk_app_id == sdk_app_id)).first()
        if row is None:
            return None
        return _app(row, _sites_of(conn, row.id))


def remove_app(engine: Engine, sdk_app_id: int) -> None:
    """Unregister an app: its credentials and tokens stop working at once. Its raw records stay."""
    with engine.begin() as conn:
        delete_app(conn, sdk_app_id)


def delete_app(conn: Connection, sdk_app_id: int) -> None:
    if conn.execute(delete(ccc_apps).where(ccc_apps.c.sdk_app_id == sdk_app_id)).rowcount == 0:
        raise CccAppError(f"no CCC app {sdk_app_id} is registered (see `calltrail ccc list`)")


def rotate_secret(engine: Engine, sdk_app_id: int) -> Credentials:
    """A new secret for the app, shown once; the old one stops working at once, and so does every token
    issued with it. The user name or client id stays, so the console only needs the new secret."""
    with engine.begin() as conn:
        row = conn.execute(select(ccc_apps).where(ccc_apps.c.sdk_app_id == sdk_app_id)).first()
        if row is None:
            raise CccAppError(f"no CCC app {sdk_app_id} is registered (see `calltrail ccc list`)")
        if row.auth == "none":
            raise CccAppError(f"the CCC app {sdk_app_id} has no authentication, so no secret to rotate")
        secret = secrets.token_urlsafe(32)
        conn.execute(update(ccc_apps).where(ccc_apps.c.id == row.id).values(secret_hash=hash_secret(secret)))
        conn.execute(delete(ccc_tokens).where(ccc_tokens.c.app_id == row.id))
        app = _app(row, _sites_of(conn, row.id))
    return Credentials(app, secret)


def authenticate_client(
    conn: Connection, auth: Auth, client_id: str, secret: str, *, for_update: bool = False
) -> AppRef | None:
    """The app of ``auth`` mode that this user name (or client id) and secret prove, or None. The
    comparison is constant-time, and an unknown id takes the time of a wrong secret. An id not shaped like
    the ones this module makes is refused without a query (nor can its bytes upset the database).
    ``for_update``: lock the app's row until the transaction ends (PostgreSQL; SQLite's write transactions
    hold the whole database), so that no rotation or removal slips in before what the caller does next."""
    if _CLIENT_ID_RE.fullmatch(client_id) is None:
        return None
    query = select(ccc_apps.c.id, ccc_apps.c.sdk_app_id, ccc_apps.c.auth, ccc_apps.c.secret_hash).where(
        ccc_apps.c.client_id == client_id
    )
    row = conn.execute(query.with_for_update() if for_update else query).first()
    matches = secret_matches(secret, row.secret_hash if row is not None else _NO_SUCH_HASH)
    if row is None or not matches or row.auth != auth:
        return None
    return AppRef(row.id, row.sdk_app_id, row.auth)


def app_by_sdk_app_id(conn: Connection, sdk_app_id: int) -> AppRef | None:
    row = conn.execute(
        select(ccc_apps.c.id, ccc_apps.c.sdk_app_id, ccc_apps.c.auth).where(
            ccc_apps.c.sdk_app_id == sdk_app_id
        )
    ).first()
    return None if row is None else AppRef(row.id, row.sdk_app_id, row.auth)
