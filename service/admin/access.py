"""Administering sites, keys and CCC apps, as someone: the one implementation behind both `calltrail sites
/ keys / ccc` and the admin API (service/http/admin.py), and the access log both write to.

Every operation takes an ``Actor``: the CLI (a shell on the server, unscoped), or an admin key, which may be
scoped to sites. A scoped admin administers only its sites and the CCC apps tied only to them; it cannot
create a site, an unscoped key or a key for another site. Something outside an admin's scope reads as not
there (404), so that a scoped admin learns nothing of other sites; asking to grant another site is a 403.

Each change is written to the access log in the same transaction as the change itself: either both are
stored or neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from service.admin import registry
from service.admin.registry import ApiKey, CreatedKey, RegistryError, Site
from service.ccc import apps as ccc_apps
from service.domain.instants import now_ms
from service.domain.keys import SCOPES, Scope, new_site_key
from service.storage.schema import access_log, events, site_origins, sites
from service.storage.seals import remove_rows

MAX_NAME_CHARS = 200
ACCESS_KINDS = ("read", "export", "admin")


class AdminError(ValueError):
    """An operation refused: ``status`` is the HTTP status (400 bad input, 403 beyond the actor's rights,
    404 not there or not the actor's, 409 a conflict), ``details`` names each bad field."""

    def __init__(self, status: int, code: str, message: str, details: Sequence[Mapping[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = [dict(d) for d in details]


def invalid(problems: Sequence[tuple[str, str]]) -> AdminError:
    message = "; ".join(f"{name}: {text}" for name, text in problems)
    return AdminError(
        400, "invalid_body", message, [{"field": name, "message": text} for name, text in problems]
    )


def forbidden(message: str) -> AdminError:
    return AdminError(403, "forbidden", message)


def not_found(message: str) -> AdminError:
    return AdminError(404, "not_found", message)


def conflict(message: str) -> AdminError:
    return AdminError(409, "conflict", message)


@dataclass(frozen=True)
class Actor:
    """Who acts: an admin or read key (by its public id), or the CLI (``key_id`` None)."""

    key_id: str | None
    scope: Scope
    site_ids: frozenset[int] | None  # None: every site
    client_ip: str | None = None

    @property
    def scoped(self) -> bool:
        return self.site_ids is not None

    @staticmethod
    def of_key(key: ApiKey, client_ip: str | None) -> Actor:
        return Actor(key.key_id, key.scope, key.site_ids, client_ip)


CLI = Actor(None, "admin", None)


# The access log.


@dataclass(frozen=True)
class Access:
    """One entry: a read of customer data, an export, or an admin action."""

    kind: str  # read | export | admin
    action: str  # e.g. "GET /v1/sessions", "keys.create"
    params: Mapping[str, Any] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None
    status: int | None = None
    rows: int | None = None


def record(conn: Connection, actor: Actor, entry: Access, at_ms: int | None = None) -> None:
    conn.execute(insert(access_log).values(**_row(actor, entry, now_ms() if at_ms is None else at_ms)))


def record_all(engine: Engine, entries: Sequence[tuple[Actor, Access, int]]) -> None:
    """Several entries in one statement (the HTTP side's batches)."""
    if entries:
        with engine.begin() as conn:
            conn.execute(insert(access_log), [_row(actor, entry, at) for actor, entry, at in entries])


def _row(actor: Actor, entry: Access, at_ms: int) -> dict[str, Any]:
    return {
        "at": at_ms,
        "key_id": actor.key_id,
        "kind": entry.kind,
        "action": entry.action[:64],
        "method": entry.method,
        "path": None if entry.path is None else entry.path[:500],
        "params": orjson.dumps(dict(entry.params), option=orjson.OPT_SORT_KEYS).decode(),
        "status": entry.status,
        "rows": entry.rows,
        "client_ip": None if actor.client_ip is None else actor.client_ip[:64],
    }


@dataclass(frozen=True)
class AccessFilter:
    key_id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None


def access_page(
    engine: Engine, actor: Actor, where: AccessFilter, *, after: tuple[int, int] | None, limit: int
) -> Iterator[tuple[dict[str, Any], tuple[int, int]]]:
    """Entries newest first, each with its cursor (at, id). A scoped admin sees the entries of the keys it
    administers (its own included), not the CLI's nor other sites' keys'."""
    _require_admin(actor)
    with engine.connect() as conn:
        query = select(access_log)
        if actor.scoped:
            visible = [k.key_id for k in _keys_of(conn, actor)]
            query = query.where(access_log.c.key_id.in_(visible))
        if where.key_id is not None:
            query = query.where(access_log.c.key_id == where.key_id)
        if where.start_ms is not None:
            query = query.where(access_log.c.at >= where.start_ms)
        if where.end_ms is not None:
            query = query.where(access_log.c.at < where.end_ms)
        if after is not None:
            query = query.where(tuple_(access_log.c.at, access_log.c.id) < tuple_(*after))
        query = query.order_by(access_log.c.at.desc(), access_log.c.id.desc()).limit(limit)
        rows = conn.execute(query).mappings().all()
    for row in rows:
        yield {str(k): v for k, v in row.items()}, (row["at"], row["id"])


# Sites.


def _require_admin(actor: Actor) -> None:
    if actor.scope != "admin":
        raise forbidden("this needs an admin key; this one is a read key")


def _in_scope(actor: Actor, site_id: int) -> bool:
    return actor.site_ids is None or site_id in actor.site_ids


def list_sites(engine: Engine, actor: Actor) -> list[Site]:
    _require_admin(actor)
    return [s for s in registry.list_sites(engine) if _in_scope(actor, s.id)]


def _check_name(name: object, problems: list[tuple[str, str]]) -> str:
    if not isinstance(name, str) or not name.strip():
        problems.append(("name", "a site needs a name"))
        return ""
    if len(name.strip()) > MAX_NAME_CHARS:
        problems.append(("name", f"at most {MAX_NAME_CHARS} characters"))
    return name.strip()


def _origins(field_name: str, given: Iterable[str], problems: list[tuple[str, str]]) -> list[str]:
    found = []
    for index, origin in enumerate(given):
        try:
            found.append(registry.normalize_origin(origin))
        except RegistryError as exc:
            problems.append((f"{field_name}[{index}]", str(exc)))
    return found


def create_site(engine: Engine, actor: Actor, name: str, origins: Sequence[str]) -> Site:
    _require_admin(actor)
    if actor.scoped:
        raise forbidden("a key scoped to sites cannot create a site; an unscoped admin key or the CLI can")
    problems: list[tuple[str, str]] = []
    name = _check_name(name, problems)
    clean = sorted(set(_origins("origins", origins, problems)))
    if not origins:
        problems.append(("origins", "a site needs at least one origin, like https://crm.example.com"))
    if problems:
        raise invalid(problems)
    site_key = new_site_key()
    created_at = now_ms()
    try:
        with engine.begin() as conn:
            site_id = conn.execute(
                insert(sites)
                .values(name=name, site_key=site_key, created_at=created_at)
                .returning(sites.c.id)
            ).scalar_one()
            conn.execute(insert(site_origins), [{"site_id": site_id, "origin": o} for o in clean])
            record(conn, actor, Access("admin", "sites.create", {"name": name, "origins": clean}))
    except IntegrityError:
        raise conflict(f"a site named {name!r} already exists") from None
    return Site(site_id, name, site_key, frozenset(clean), created_at)


def _site_in_scope(conn: Connection, actor: Actor, name: str) -> Site:
    found = [s for s in _sites(conn) if s.name == name and _in_scope(actor, s.id)]
    if not found:
        raise not_found(f"no site named {name!r}")
    return found[0]


def _sites(conn: Connection) -> list[Site]:
    origin_rows = conn.execute(select(site_origins.c.site_id, site_origins.c.origin)).all()
    by_site: dict[int, set[str]] = {}
    for site_id, origin in origin_rows:
        by_site.setdefault(site_id, set()).add(origin)
    rows = conn.execute(select(sites).order_by(sites.c.id)).all()
    return [Site(r.id, r.name, r.site_key, frozenset(by_site.get(r.id, ())), r.created_at) for r in rows]


def update_site(
    engine: Engine,
    actor: Actor,
    name: str,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    replace: Sequence[str] | None = None,
) -> Site:
    """Change a site's origins: ``replace`` them all, or ``add`` and ``remove`` some; one must remain."""
    _require_admin(actor)
    problems: list[tuple[str, str]] = []
    added = _origins("add", add, problems)
    removed = _origins("remove", remove, problems)
    replaced = None if replace is None else _origins("replace", replace, problems)
    if replace is not None and (add or remove):
        problems.append(("replace", "give either replace, or add and remove"))
    if replace is None and not add and not remove:
        problems.append(("origins", "nothing to change: give add, remove or replace"))
    if problems:
        raise invalid(problems)
    with engine.begin() as conn:
        site = _site_in_scope(conn, actor, name)
        origins = set(replaced) if replaced is not None else (set(site.origins) | set(added)) - set(removed)
        if not origins:
            raise invalid([("origins", "a site keeps at least one origin")])
        conn.execute(delete(site_origins).where(site_origins.c.site_id == site.id))
        conn.execute(insert(site_origins), [{"site_id": site.id, "origin": o} for o in sorted(origins)])
        change = {"name": name, "add": sorted(added), "remove": sorted(removed), "replace": replaced}
        record(conn, actor, Access("admin", "sites.update", change))
    return Site(site.id, site.name, site.site_key, frozenset(origins), site.created_at)


def delete_site(engine: Engine, actor: Actor, name: str, *, seal_key: bytes | None = None) -> None:
    """Delete a site and everything stored for it, its events through the seal's removal record
    (storage/seals.py), so that `calltrail verify` still accounts for them. A key scoped to it alone then
    sees nothing."""
    _require_admin(actor)
    with engine.begin() as conn:
        site = _site_in_scope(conn, actor, name)
        remove_rows(conn, "events", events.c.site_id == site.id, f"site {name!r} removed", seal_key)
        conn.execute(delete(sites).where(sites.c.id == site.id))
        record(conn, actor, Access("admin", "sites.delete", {"name": name}))


# Keys.


def _keys_of(conn: Connection, actor: Actor) -> list[ApiKey]:
    """The keys an actor administers: every key, or (scoped) the keys scoped within its sites."""
    found = registry.keys_in(conn)
    if actor.site_ids is None:
        return found
    mine = actor.site_ids
    return [k for k in found if k.site_ids is not None and k.site_ids and k.site_ids <= mine]


def list_keys(engine: Engine, actor: Actor) -> list[ApiKey]:
    _require_admin(actor)
    with engine.connect() as conn:
        return _keys_of(conn, actor)


def _granted_sites(
    conn: Connection, actor: Actor, site_names: Sequence[str] | None, what: str
) -> tuple[list[str] | None, list[tuple[str, str]]]:
    """The sites asked for, checked against what exists and what the actor may grant."""
    if site_names is None:
        if actor.scoped:
            raise forbidden(f"a key scoped to sites cannot create {what} for every site; name its sites")
        return None, []
    names = sorted({n.strip() for n in site_names})
    known = {s.name: s.id for s in _sites(conn)}
    if actor.site_ids is not None:
        # Whether another site exists is none of a scoped admin's business: the same answer either way.
        outside = [n for n in names if known.get(n) not in actor.site_ids]
        if outside:
            raise forbidden(f"this key cannot grant the site(s) {', '.join(map(repr, outside))}")
        if not names:
            raise forbidden(f"a key scoped to sites must name at least one of them for {what}")
    missing = [n for n in names if n not in known]
    problems = [(f"sites[{i}]", f"no site named {n!r}") for i, n in enumerate(names) if n in missing]
    return names, problems


def create_key(
    engine: Engine,
    actor: Actor,
    scope: str,
    *,
    site_names: Sequence[str] | None = None,
    name: str | None = None,
    expires_in_ms: int | None = None,
) -> CreatedKey:
    """A new key, shown once. ``site_names`` None: every site (unscoped actors only)."""
    _require_admin(actor)
    problems: list[tuple[str, str]] = []
    if scope not in SCOPES:
        problems.append(("scope", f"must be one of {', '.join(SCOPES)}"))
    if name is not None and len(name) > MAX_NAME_CHARS:
        problems.append(("name", f"at most {MAX_NAME_CHARS} characters"))
    with engine.begin() as conn:
        names, site_problems = _granted_sites(conn, actor, site_names, "a key")
        if problems or site_problems:
            raise invalid(problems + site_problems)
        expires_at = None if expires_in_ms is None else now_ms() + expires_in_ms
        checked: Scope = "admin" if scope == "admin" else "read"
        created = registry.insert_key(conn, checked, name, site_names=names, expires_at=expires_at)
        facts = {
            "key_id": created.key.key_id,
            "scope": scope,
            "sites": names,
            "name": name,
            "expires_at": expires_at,
        }
        record(conn, actor, Access("admin", "keys.create", facts))
    return created


def revoke_key(engine: Engine, actor: Actor, key_id: str) -> ApiKey:
    _require_admin(actor)
    with engine.begin() as conn:
        if not any(k.key_id == key_id for k in _keys_of(conn, actor)):
            raise not_found(f"no key with id {key_id!r}")
        key = registry.revoke_key_in(conn, key_id)
        record(conn, actor, Access("admin", "keys.revoke", {"key_id": key_id}))
    return key


# CCC apps.


def _apps_of(conn: Connection, actor: Actor) -> list[ccc_apps.CccApp]:
    """The apps an actor administers: every app, or (scoped) those tied only to its sites."""
    found = ccc_apps.apps_in(conn)
    if actor.site_ids is None:
        return found
    mine = {s.name for s in _sites(conn) if s.id in actor.site_ids}
    return [a for a in found if a.sites and set(a.sites) <= mine]


def list_apps(engine: Engine, actor: Actor) -> list[ccc_apps.CccApp]:
    _require_admin(actor)
    with engine.connect() as conn:
        return _apps_of(conn, actor)


def add_app(
    engine: Engine, actor: Actor, sdk_app_id: int, auth: str, site_names: Sequence[str] = ()
) -> ccc_apps.Credentials:
    """Register a CCC app; its secret is in the answer only. A scoped admin must tie it to its sites."""
    _require_admin(actor)
    problems: list[tuple[str, str]] = []
    if not 0 < sdk_app_id <= ccc_apps.MAX_SDK_APP_ID:
        problems.append(("sdk_app_id", "a positive integer like 1400000000"))
    if auth not in ccc_apps.AUTH_MODES:
        problems.append(("auth", f"must be one of {', '.join(ccc_apps.AUTH_MODES)}"))
    try:
        with engine.begin() as conn:
            names, site_problems = _granted_sites(
                conn, actor, list(site_names) if site_names or actor.scoped else None, "a CCC app"
            )
            if problems or site_problems:
                raise invalid(problems + site_problems)
            credentials = ccc_apps.insert_app(conn, sdk_app_id, auth, names or ())
            facts = {"sdk_app_id": sdk_app_id, "auth": auth, "sites": list(credentials.app.sites)}
            record(conn, actor, Access("admin", "ccc_apps.create", facts))
    except IntegrityError:
        raise conflict(ccc_apps.already_registered(sdk_app_id)) from None
    return credentials


def remove_app(engine: Engine, actor: Actor, sdk_app_id: int) -> None:
    _require_admin(actor)
    with engine.begin() as conn:
        if not any(a.sdk_app_id == sdk_app_id for a in _apps_of(conn, actor)):
            raise not_found(f"no CCC app {sdk_app_id} is registered")
        ccc_apps.delete_app(conn, sdk_app_id)
        record(conn, actor, Access("admin", "ccc_apps.delete", {"sdk_app_id": sdk_app_id}))
