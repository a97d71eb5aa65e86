"""Sites with their allowed origins, and secret API keys."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from service.domain.instants import now_ms
from service.domain.keys import SCOPES, Scope, new_secret_key, new_site_key, secret_matches, split_secret_key
from service.storage.schema import api_key_sites, api_keys, site_origins, sites

_HOST_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class RegistryError(ValueError):
    """A site or key operation that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Site:
    id: int
    name: str
    site_key: str
    origins: frozenset[str]
    created_at: int  # ms since the epoch, as every instant (domain/instants.py)


@dataclass(frozen=True)
class ApiKey:
    id: int
    key_id: str
    scope: Scope
    name: str | None
    created_at: int  # ms since the epoch
    revoked_at: int | None
    # The ids of the sites it may see, or None for every site (a key made without --site).
    site_ids: frozenset[int] | None = None
    site_names: tuple[str, ...] = ()  # sorted; empty for an unscoped key
    expires_at: int | None = None
    last_used_at: int | None = None

    @property
    def scoped(self) -> bool:
        return self.site_ids is not None

    def expired(self, at_ms: int) -> bool:
        return self.expires_at is not None and self.expires_at <= at_ms


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    plaintext: str


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, as browsers send it in the Origin header."""
    not_an_origin = RegistryError(f"{origin!r} is not an origin: expected https://host[:port]")
    try:
        parts = urlsplit(origin.strip())
        port_number = parts.port
    except ValueError:
        raise not_an_origin from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise not_an_origin
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise RegistryError(f"{origin!r} is not an origin: it must have no path, query or user")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    else:
        # Browsers send internationalized host names in their ASCII (punycode) form.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise not_an_origin from None
        if not _HOST_RE.fullmatch(host):
            raise not_an_origin
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{port_number}" if port_number not in (None, default_port) else ""
    return f"{parts.scheme}://{host}{port}"


def add_site(engine: Engine, name: str, origins: Iterable[str]) -> Site:
    name = name.strip()
    if not name:
        raise RegistryError("a site needs a name")
    clean = sorted({normalize_origin(o) for o in origins})
    if not clean:
        raise RegistryError("a site needs at least one origin (--origin https://crm.example.com)")
    created_at = now_ms()
    site_key = new_site_key()
    try:
        with engine.begin() as conn:
            site_id = conn.execute(
                insert(sites)
                .values(name=name, site_key=site_key, created_at=created_at)
                .returning(sites.c.id)
            ).scalar_one()
            conn.execute(insert(site_origins), [{"site_id": site_id, "origin": o} for o in clean])
    except IntegrityError:
        raise RegistryError(f"a site named {name!r} already exists") from None
    return Site(site_id, name, site_key, frozenset(clean), created_at)


def list_sites(engine: Engine) -> list[Site]:
    with engine.connect() as conn:
        origin_rows = conn.execute(select(site_origins.c.site_id, site_origins.c.origin)).all()
        site_rows = conn.execute(select(sites).order_by(sites.c.id)).all()
    by_site: dict[int, set[str]] = {}
    for site_id, origin in origin_rows:
        by_site.setdefault(site_id, set()).add(origin)
    return [Site(r.id, r.name, r.site_key, frozenset(by_site.get(r.id, ())), r.created_at) for r in site_rows]


def create_key(
    engine: Engine,
    scope: str,
    name: str | None = None,
    *,
    site_names: Iterable[str] | None = None,
    expires_at: int | None = None,
) -> CreatedKey:
    """A new key; with ``site_names`` (even none), one that sees only those sites."""
    if scope not in SCOPES:
        raise RegistryError(f"scope must be one of {', '.join(SCOPES)}")
    with engine.begin() as conn:
        return insert_key(conn, scope, name, site_names=site_names, expires_at=expires_at)


def insert_key(
    conn: Connection,
    scope: Scope,
    name: str | None,
    *,
    site_names: Iterable[str] | None = None,
    expires_at: int | None = None,
) -> CreatedKey:
    new = new_secret_key()
    created_at = now_ms()
    names = None if site_names is None else sorted(set(site_names))
    ids = None if names is None else site_ids_of(conn, names)
    key_pk = conn.execute(
        insert(api_keys)
        .values(
            key_id=new.key_id,
            secret_hash=new.secret_hash,
            scope=scope,
            name=name,
            created_at=created_at,
            all_sites=ids is None,
            expires_at=expires_at,
        )
        .returning(api_keys.c.id)
    ).scalar_one()
    if ids:
        conn.execute(insert(api_key_sites), [{"key_id": key_pk, "site_id": i} for i in ids])
    key = ApiKey(
        key_pk,
        new.key_id,
        scope,
        name,
        created_at,
        None,
        None if ids is None else frozenset(ids),
        tuple(names or ()),
        expires_at,
    )
    return CreatedKey(key, new.plaintext)


def site_ids_of(conn: Connection, names: Iterable[str]) -> list[int]:
    """The ids of these sites, in the names' order; a RegistryError names every unknown one."""
    wanted = list(names)
    found = {n: i for n, i in conn.execute(select(sites.c.name, sites.c.id).where(sites.c.name.in_(wanted)))}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise RegistryError(f"no site named {', '.join(map(repr, missing))} (see `calltrail sites list`)")
    return [found[n] for n in wanted]


def _key_sites(conn: Connection, key_pks: Iterable[int] | None = None) -> dict[int, list[tuple[int, str]]]:
    query = select(api_key_sites.c.key_id, sites.c.id, sites.c.name).join(
        sites, sites.c.id == api_key_sites.c.site_id
    )
    if key_pks is not None:
        query = query.where(api_key_sites.c.key_id.in_(list(key_pks)))
    found: dict[int, list[tuple[int, str]]] = {}
    for key_pk, site_id, name in conn.execute(query.order_by(sites.c.name)):
        found.setdefault(key_pk, []).append((site_id, name))
    return found


def _key(row: Any, key_sites: list[tuple[int, str]]) -> ApiKey:
    return ApiKey(
        row.id,
        row.key_id,
        row.scope,
        row.name,
        row.created_at,
        row.revoked_at,
        None if row.all_sites else frozenset(i for i, _ in key_sites),
        () if row.all_sites else tuple(n for _, n in key_sites),
        row.expires_at,
        row.last_used_at,
    )


def list_keys(engine: Engine) -> list[ApiKey]:
    with engine.connect() as conn:
        return keys_in(conn)


def keys_in(conn: Connection) -> list[ApiKey]:
    rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).all()
    key_sites = _key_sites(conn)
    return [_key(r, key_sites.get(r.id, [])) for r in rows]


def key_by_id(conn: Connection, key_id: str) -> ApiKey | None:
    row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    return None if row is None else _key(row, _key_sites(conn, [row.id]).get(row.id, []))


def revoke_key(engine: Engine, key_id: str) -> ApiKey:
    with engine.begin() as conn:
        return revoke_key_in(conn, key_id)


def revoke_key_in(conn: Connection, key_id: str) -> ApiKey:
    row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None:
        raise RegistryError(f"no key with id {key_id!r} (see `calltrail keys list`)")
    revoked_at = row.revoked_at if row.revoked_at is not None else now_ms()
    conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(revoked_at=revoked_at))
    key = _key(row, _key_sites(conn, [row.id]).get(row.id, []))
    return replace(key, revoked_at=revoked_at)


KeyCheck = Literal["ok", "unknown", "expired"]


def check_key(engine: Engine, plaintext: str, at_ms: int) -> tuple[ApiKey | None, KeyCheck]:
    """The live key this plaintext proves and "ok"; (None, "unknown") for an unknown, wrong or revoked one;
    (the key, "expired") for a right secret past its expiry. The secret comparison is constant-time."""
    parts = split_secret_key(plaintext)
    if parts is None:
        return None, "unknown"
    key_id, secret = parts
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None or not secret_matches(secret, row.secret_hash) or row.revoked_at is not None:
            return None, "unknown"
        # An unscoped key (the usual case) costs no second query.
        key_sites = [] if row.all_sites else _key_sites(conn, [row.id]).get(row.id, [])
    key = _key(row, key_sites)
    return key, "expired" if key.expired(at_ms) else "ok"


def authenticate_key(engine: Engine, plaintext: str) -> ApiKey | None:
    """The live (known, unrevoked, unexpired) key this plaintext proves, or None."""
    key, outcome = check_key(engine, plaintext, now_ms())
    return key if outcome == "ok" else None


LAST_USED_RESOLUTION_MS = 60_000


def note_use(engine: Engine, key: ApiKey, at_ms: int) -> bool:
    """Record that the key was used at ``at_ms``, at most once a minute per key: the row read to check the
    key says when it was last written, so most requests skip this; the condition keeps two workers from
    both writing within the minute. True when it wrote."""
    if key.last_used_at is not None and at_ms - key.last_used_at < LAST_USED_RESOLUTION_MS:
        return False
    threshold = at_ms - LAST_USED_RESOLUTION_MS
    with engine.begin() as conn:
        written = conn.execute(
            update(api_keys)
            .where(
                api_keys.c.id == key.id,
                or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at <= threshold),
            )
            .values(last_used_at=at_ms)
        ).rowcount
    return bool(written)


class SiteDirectory:
    """Sites by key and the set of all registered origins, cached for ``ttl_s`` seconds per worker.

    A key missing from the cache triggers one reload at once (a site added a moment ago works at once), but
    not more than once per ``min_reload_s``, so a flood of bogus keys cannot hammer the database.
    """

    def __init__(self, engine: Engine, ttl_s: float, min_reload_s: float = 0.5) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._min_reload_s = min_reload_s
        self._lock = threading.Lock()
        self._by_key: dict[str, Site] = {}
        self._origins: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    def is_fresh(self) -> bool:
        return time.monotonic() - self._loaded_at < self._ttl_s

    def reload(self) -> None:
        loaded = list_sites(self._engine)
        with self._lock:
            self._by_key = {s.site_key: s for s in loaded}
            self._origins = frozenset(o for s in loaded for o in s.origins)
            self._loaded_at = time.monotonic()

    def cached_site(self, site_key: str) -> Site | None:
        return self._by_key.get(site_key)

    def cached_origin_known(self, origin: str) -> bool:
        return origin in self._origins

    def site(self, site_key: str) -> Site | None:
        """Blocking: may reload from the database."""
        if not self.is_fresh() or (site_key not in self._by_key and self._may_reload_early()):
            self.reload()
        return self._by_key.get(site_key)

    def origin_known(self, origin: str) -> bool:
        """Blocking: may reload from the database."""
        if not self.is_fresh() or (origin not in self._origins and self._may_reload_early()):
            self.reload()
        return origin in self._origins

    def _may_reload_early(self) -> bool:
        return time.monotonic() - self._loaded_at >= self._min_reload_s


def site_names(conn: Connection) -> dict[int, str]:
    return {row.id: row.name for row in conn.execute(select(sites.c.id, sites.c.name))}


def site_id_of(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(sites.c.id).where(sites.c.name == name)).scalar()
    return int(found) if found is not None else None
