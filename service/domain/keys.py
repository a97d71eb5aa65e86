"""Site keys (public, write-only) and secret API keys (read or admin).

A secret key reads ``ctk_<key id>_<secret>``: the key id finds the row, the secret is checked against a
SHA-256 digest in constant time. The secrets are 256 random bits, so a fast hash is enough; a slow password
hash would only add latency to every request without adding security.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

Scope = Literal["read", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "admin")

SITE_KEY_PREFIX = "cts_"
SECRET_KEY_PREFIX = "ctk_"  # noqa: S105 - a prefix, not a secret
_KEY_ID_LEN = 12
_SECRET_KEY_RE = re.compile(r"^ctk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def new_site_key() -> str:
    return SITE_KEY_PREFIX + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class NewSecretKey:
    key_id: str
    secret_hash: str
    plaintext: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret_key() -> NewSecretKey:
    key_id = secrets.token_hex(_KEY_ID_LEN // 2)
    secret = secrets.token_urlsafe(32)
    return NewSecretKey(key_id, hash_secret(secret), f"{SECRET_KEY_PREFIX}{key_id}_{secret}")


def split_secret_key(plaintext: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, or None."""
    match = _SECRET_KEY_RE.match(plaintext)
    if match is None:
        return None
    return match.group(1), match.group(2)


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
