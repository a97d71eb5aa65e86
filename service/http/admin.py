"""The admin API, /v1/admin/...: sites, keys, CCC apps and the access log over HTTP, for admin keys only (a
read key gets 403). Each endpoint reads its body against its contract model (contract/models.py: every bad
field named in one 400), then calls the operation `calltrail` itself calls (admin/access.py), which checks
what the key may do, and answers in the contract's shape (docs/api.md, "Administration")."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, get_type_hints

import msgspec
import orjson
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.admin import access
from service.admin.access import AccessFilter, Actor, AdminError
from service.admin.registry import ApiKey, Site
from service.ccc.apps import CccApp, Credentials
from service.ccc.console import console_settings
from service.contract.models import CccAppCreate, CccConsole, KeyCreate, SiteChange, SiteCreate, field_names
from service.contract.queries import AccessLogQuery
from service.domain.call_records import decimal_id
from service.domain.instants import iso, parse_duration_ms
from service.http.audit import AccessAudit, note_audited, note_rows
from service.http.auth import actor, authenticated, busy
from service.http.errors import ApiError
from service.http.responses import JSONResponse
from service.http.state import app_state
from service.reports.params import Params, encode_cursor, time_range

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)
MAX_ADMIN_BODY_BYTES = 64 * 1024
CONSOLE_FIELDS = field_names(CccConsole)


async def admin(request: Request) -> Actor:
    """The caller, if its key is an admin key; a read key is a 403."""
    key = await authenticated(request)
    if key.scope != "admin":
        raise ApiError(403, "forbidden", "the admin API needs an admin key; this one is a read key")
    return actor(request, key)


async def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """An admin operation off the event loop, its refusals in the one error shape."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except AdminError as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.details) from None
    except OperationalError:
        raise busy() from None


@cache
def _hints(model: type[msgspec.Struct]) -> dict[str, Any]:
    return get_type_hints(model, include_extras=True)


async def read_body(request: Request, model: type[S]) -> S:
    """The JSON body as ``model``; every unknown, missing or bad field named in one 400."""
    body = await request.body()
    if len(body) > MAX_ADMIN_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the body may be at most {MAX_ADMIN_BODY_BYTES} bytes")
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send a JSON object (Content-Type: application/json)")
    fields = msgspec.structs.fields(model)
    names = {f.encode_name for f in fields}
    problems = [{"field": str(name), "message": "unknown field"} for name in data if name not in names]
    values: dict[str, Any] = {}
    hints = _hints(model)
    for f in fields:
        if f.encode_name not in data:
            if f.required:
                problems.append({"field": f.encode_name, "message": "required"})
            continue
        try:
            values[f.name] = msgspec.convert(data[f.encode_name], hints[f.name])
        except msgspec.ValidationError as exc:
            problems.append({"field": f.encode_name, "message": str(exc)})
    if problems:
        listed = ", ".join(p["field"] for p in problems)
        raise ApiError(400, "invalid_body", f"bad fields: {listed}", problems)
    return model(**values)


def site_record(site: Site) -> dict[str, Any]:
    return {
        "name": site.name,
        "site_key": site.site_key,
        "origins": sorted(site.origins),
        "created_at": iso(site.created_at),
    }


def key_record(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "scope": key.scope,
        "name": key.name,
        "sites": list(key.site_names) if key.scoped else None,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "last_used_at": iso(key.last_used_at),
        "revoked_at": iso(key.revoked_at),
    }


def app_record(app: CccApp) -> dict[str, Any]:
    return {
        "sdk_app_id": app.sdk_app_id,
        "auth": app.auth,
        "client_id": app.client_id,
        "sites": list(app.sites),
        "created_at": iso(app.created_at),
    }


def created_app_record(credentials: Credentials, public_url: str) -> dict[str, Any]:
    console = console_settings(credentials, public_url)
    return {**app_record(credentials.app), "console": {name: console.get(name) for name in CONSOLE_FIELDS}}


async def list_sites(request: Request) -> Response:
    who = await admin(request)
    found = await run(access.list_sites, app_state(request).read_engine, who)
    note_rows(request, len(found))
    return JSONResponse({"sites": [site_record(s) for s in found]})


async def create_site(request: Request) -> Response:
    who = await admin(request)
    body = await read_body(request, SiteCreate)
    site = await run(access.create_site, app_state(request).ccc_engine, who, body.name, body.origins)
    note_audited(request)
    return JSONResponse(site_record(site), status_code=201)


async def change_site(request: Request) -> Response:
    who = await admin(request)
    body = await read_body(request, SiteChange)
    site = await run(
        access.update_site,
        app_state(request).ccc_engine,
        who,
        request.path_params["name"],
        add=body.add or (),
        remove=body.remove or (),
        replace=body.replace,
    )
    note_audited(request)
    return JSONResponse(site_record(site))


async def delete_site(request: Request) -> Response:
    who = await admin(request)
    state = app_state(request)
    # The site's events leave a signed removal record, so that `calltrail verify` accounts for them.
    key = state.settings.seal_key.encode() if state.settings.seal_key else None
    name = request.path_params["name"]
    await run(lambda: access.delete_site(state.ccc_engine, who, name, seal_key=key))
    note_audited(request)
    return Response(status_code=204)


async def list_keys(request: Request) -> Response:
    who = await admin(request)
    found = await run(access.list_keys, app_state(request).read_engine, who)
    note_rows(request, len(found))
    return JSONResponse({"keys": [key_record(k) for k in found]})


async def create_key(request: Request) -> Response:
    who = await admin(request)
    body = await read_body(request, KeyCreate)
    expires_in_ms = None
    if body.expires is not None:
        try:
            expires_in_ms = parse_duration_ms(body.expires)
        except ValueError as exc:
            raise ApiError(
                400, "invalid_body", str(exc), [{"field": "expires", "message": str(exc)}]
            ) from None
    created = await run(
        access.create_key,
        app_state(request).ccc_engine,
        who,
        body.scope,
        site_names=body.sites,
        name=body.name,
        expires_in_ms=expires_in_ms,
    )
    note_audited(request)
    return JSONResponse({**key_record(created.key), "secret": created.plaintext}, status_code=201)


async def revoke_key(request: Request) -> Response:
    who = await admin(request)
    key = await run(access.revoke_key, app_state(request).ccc_engine, who, request.path_params["key_id"])
    note_audited(request)
    return JSONResponse(key_record(key))


async def list_apps(request: Request) -> Response:
    who = await admin(request)
    found = await run(access.list_apps, app_state(request).read_engine, who)
    note_rows(request, len(found))
    return JSONResponse({"apps": [app_record(a) for a in found]})


async def create_app(request: Request) -> Response:
    who = await admin(request)
    body = await read_body(request, CccAppCreate)
    state = app_state(request)
    credentials = await run(
        access.add_app, state.ccc_engine, who, body.sdk_app_id, body.auth, body.sites or ()
    )
    note_audited(request)
    return JSONResponse(created_app_record(credentials, state.settings.public_url), status_code=201)


async def delete_app(request: Request) -> Response:
    who = await admin(request)
    text = request.path_params["sdk_app_id"]
    app_id = decimal_id(text)
    if app_id is None:
        raise ApiError(404, "not_found", f"no CCC app {text!r} is registered")
    await run(access.remove_app, app_state(request).ccc_engine, who, app_id)
    note_audited(request)
    return Response(status_code=204)


async def access_log(request: Request) -> Response:
    who = await admin(request)
    params = Params(request.query_params)
    start, end = time_range(params, required_default_days=None)
    query = params.read(AccessLogQuery)
    params.done()
    after = None if query.cursor is None else (query.cursor[0], query.cursor[1])
    where = AccessFilter(query.key, start, end)

    def page() -> dict[str, Any]:
        rows = list(
            access.access_page(app_state(request).read_engine, who, where, after=after, limit=query.limit + 1)
        )
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return {
            "entries": [entry_record(row) for row, _ in rows],
            "next_cursor": encode_cursor(rows[-1][1]) if more else None,
        }

    found = await run(page)
    note_rows(request, len(found["entries"]))
    return JSONResponse(found)


def entry_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": iso(row["at"]),
        "key_id": row["key_id"],
        "kind": row["kind"],
        "action": row["action"],
        "method": row["method"],
        "path": row["path"],
        "params": orjson.loads(row["params"]),
        "status": row["status"],
        "rows": row["rows"],
        "client_ip": row["client_ip"],
    }


_AUDITED = [Middleware(AccessAudit, kind="admin")]

routes = [
    Route("/v1/admin/sites", list_sites, methods=["GET"], middleware=_AUDITED),
    Route("/v1/admin/sites", create_site, methods=["POST"], middleware=_AUDITED),
    Route("/v1/admin/sites/{name}", change_site, methods=["PATCH"], middleware=_AUDITED),
    Route("/v1/admin/sites/{name}", delete_site, methods=["DELETE"], middleware=_AUDITED),
    Route("/v1/admin/keys", list_keys, methods=["GET"], middleware=_AUDITED),
    Route("/v1/admin/keys", create_key, methods=["POST"], middleware=_AUDITED),
    Route("/v1/admin/keys/{key_id}", revoke_key, methods=["DELETE"], middleware=_AUDITED),
    Route("/v1/admin/ccc-apps", list_apps, methods=["GET"], middleware=_AUDITED),
    Route("/v1/admin/ccc-apps", create_app, methods=["POST"], middleware=_AUDITED),
    Route("/v1/admin/ccc-apps/{sdk_app_id}", delete_app, methods=["DELETE"], middleware=_AUDITED),
    Route("/v1/admin/access-log", access_log, methods=["GET"], middleware=_AUDITED),
]
