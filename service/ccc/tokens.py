"""OAuth2 access tokens for ``oauth2`` apps (client-credentials grant, RFC 6749 §4.4), stored hashed.

A token is ``ccct_`` and 256 random bits; the table keeps its SHA-256 with the expiry, so a copy of the
database grants nothing. Lookup is by that digest directly: it is computed from the token presented, and a
hash index reveals nothing an attacker could use to forge one (timing of a B-tree descent on a digest of a
random guess says nothing about any real token). Rotating an app's secret deletes all of its tokens
(service/ccc/apps.py).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, insert, or_, select

from service.ccc.apps import AppRef, authenticate_client
from service.domain.keys import hash_secret
from service.storage.schema import ccc_apps, ccc_tokens

TOKEN_PREFIX = "ccct_"  # noqa: S105 - a prefix, not a secret
_TOKEN_RE = re.compile(r"ccct_[A-Za-z0-9_-]{43}")
# Two hours, as many token servers issue. CCC's caching of tokens is not documented (the reference says so),
# so the expiry is announced in `expires_in` for it to refresh in time.
TOKEN_LIFETIME_S = 7200
# A client that fetched a token for every push would otherwise pile up live rows for two hours; past this
# many, issuing one drops the app's oldest. A client that keeps a token for its lifetime never comes close.
MAX_LIVE_TOKENS_PER_APP = 1000


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds


def issue_token(
    conn: Connection, app_id: int, now_ms: int, lifetime_s: int = TOKEN_LIFETIME_S
) -> IssuedToken:
    """A new token for the app, valid ``lifetime_s`` from ``now_ms``. Expired tokens of the app, and its
    oldest past ``MAX_LIVE_TOKENS_PER_APP``, are deleted in the same transaction."""
    newest = (
        select(ccc_tokens.c.id)
        .where(ccc_tokens.c.app_id == app_id)
        .order_by(ccc_tokens.c.id.desc())
        .limit(MAX_LIVE_TOKENS_PER_APP - 1)
    )
    conn.execute(
        delete(ccc_tokens).where(
            and_(
                ccc_tokens.c.app_id == app_id,
                or_(ccc_tokens.c.expires_at <= now_ms, ccc_tokens.c.id.not_in(newest.scalar_subquery())),
            )
        )
    )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(ccc_tokens).values(
            app_id=app_id,
            token_hash=hash_secret(token),
            issued_at=now_ms,
            expires_at=now_ms + lifetime_s * 1000,
        )
    )
    return IssuedToken(token, lifetime_s)


def issue_token_for_client(
    conn: Connection, client_id: str, client_secret: str, now_ms: int
) -> IssuedToken | None:
    """A new token for the ``oauth2`` app these client credentials prove, or None. The app's row is locked
    while the token is written: a rotation (or removal) either commits first, and the old secret gets no
    token, or waits, and then deletes this token with the others. A check on another connection before the
    write would leave a gap in which a token issued for the old secret outlived the rotation."""
    app = authenticate_client(conn, "oauth2", client_id, client_secret, for_update=True)
    return None if app is None else issue_token(conn, app.id, now_ms)


def app_of_token(conn: Connection, token: str, now_ms: int) -> AppRef | None:
    """The ``oauth2`` app this unexpired token was issued to, or None."""
    if _TOKEN_RE.fullmatch(token) is None:
        return None
    row = conn.execute(
        select(ccc_apps.c.id, ccc_apps.c.sdk_app_id, ccc_apps.c.auth)
        .join(ccc_tokens, ccc_tokens.c.app_id == ccc_apps.c.id)
        .where(
            ccc_tokens.c.token_hash == hash_secret(token),
            ccc_tokens.c.expires_at > now_ms,
            ccc_apps.c.auth == "oauth2",
        )
    ).first()
    return None if row is None else AppRef(row.id, row.sdk_app_id, row.auth)
