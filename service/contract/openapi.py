"""GET /openapi.json: the OpenAPI 3.1 description of every route, written out (tests check it against the
routes and run schemathesis against a live server)."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.ccc.console import PUSH_PATH, TOKEN_PATH
from service.ccc.push import KNOWN_ACTIONS, MAX_ACTION_CHARS, MAX_PUSH_UUID_CHARS, MAX_VERSION_CHARS
from service.contract.models import COMPONENTS
from service.contract.queries import (
    AccessLogQuery,
    AgentsQuery,
    AuditQuery,
    CallsQuery,
    CallsReportQuery,
    CardsQuery,
    CoverageQuery,
    InboundQuery,
    OutboundQuery,
    Query,
    SessionsQuery,
    Window,
    parameter_schema_hook,
)
from service.http import dashboard
from service.http.responses import JSONResponse

Schema = dict[str, Any]
REF_TEMPLATE = "#/components/schemas/{name}"


def ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def _component_schemas() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components(COMPONENTS, ref_template=REF_TEMPLATE)
    return components


def _parameters(*queries: type[Query], only: tuple[str, ...] | None = None) -> list[Schema]:
    """The query parameters the models declare, in their order (a parameter is never null: it is absent)."""
    _, components = msgspec.json.schema_components(
        queries, schema_hook=parameter_schema_hook, ref_template=REF_TEMPLATE
    )
    described: list[Schema] = []
    for query in queries:
        for name, schema in components[query.__name__]["properties"].items():
            if only is not None and name not in only:
                continue
            schema = _without_null(schema)
            if schema.get("default", "") is None:
                del schema["default"]
            described.append(_query_parameter(name, schema, schema.pop("description", "")))
    return described


def _without_null(schema: Schema) -> Schema:
    branches = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if len(branches) != 1:
        return dict(schema)
    return {**{k: v for k, v in schema.items() if k != "anyOf"}, **branches[0]}


def _error(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def _json(name: str, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": ref(name)}}}


_READ_ERRORS = {
    "400": _error("A bad parameter; `details` names each one"),
    "401": _error("No key, or an unknown or revoked one"),
}


def _read(
    summary: str, parameters: list[Schema], ok: Schema, extra: dict[str, Schema] | None = None
) -> Schema:
    return {
        "get": {
            "summary": summary,
            "security": [{"bearer": []}],
            "parameters": parameters,
            "responses": {"200": ok, **_READ_ERRORS, **(extra or {})},
        }
    }


def _listing(name: str) -> Schema:
    return {
        "description": "OK",
        "content": {
            "application/json": {"schema": ref(name)},
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }


def _query_parameter(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _ccc(description: str) -> Schema:
    return _json("CccAnswer", description)


def _oauth_error(description: str) -> Schema:
    return _json("OAuthError", description)


def _ccc_paths() -> dict[str, Schema]:
    """The CCC receiver (docs/ccc.md). Its answers are CCC's and OAuth2's shapes, not the service's Error."""
    return {
        PUSH_PATH: {
            "post": {
                "summary": "CCC Data Push: one call record, stored before the answer (docs/ccc.md)",
                "security": [{"cccBasic": []}, {"cccOAuth2": []}, {}],
                "parameters": [
                    _query_parameter(
                        "action",
                        {"type": "string", "maxLength": MAX_ACTION_CHARS, "examples": list(KNOWN_ACTIONS)},
                        "The data type, as CCC adds it; an unknown one is stored and acknowledged too.",
                    ),
                    _query_parameter(
                        "version", {"type": "string", "maxLength": MAX_VERSION_CHARS}, "As CCC adds it."
                    ),
                    {
                        "name": "X-TCCC-PUSH-UUID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": MAX_PUSH_UUID_CHARS},
                        "description": "The push id: a repeat for one app is acknowledged, not stored again.",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("CccPushBody")}},
                },
                "responses": {
                    "200": _ccc("Stored, or stored before (ErrCode 0)"),
                    "400": _ccc("Not a JSON object, no SdkAppId, or a bad parameter"),
                    "401": _ccc("No credential, or a wrong, expired or revoked one; unknown app"),
                    "403": _ccc("The body's SdkAppId is not the credential's app"),
                    "413": _ccc("Body too large"),
                    "415": _ccc("A compressed body"),
                    "429": _ccc("Over the app's rate limit; see Retry-After"),
                    "503": _ccc("The database is unavailable; see Retry-After"),
                },
            }
        },
        TOKEN_PATH: {
            "post": {
                "summary": "OAuth2 client-credentials token for a CCC app's pushes (RFC 6749 §4.4)",
                "security": [{"cccClient": []}, {}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": ref("CccTokenRequest")},
                        "application/json": {"schema": ref("CccTokenRequest")},
                    },
                },
                "responses": {
                    "200": _json("CccToken", "An access token (Cache-Control: no-store)"),
                    "400": _oauth_error("invalid_request or unsupported_grant_type (RFC 6749 §5.2)"),
                    "401": _oauth_error("invalid_client: unknown client or wrong secret"),
                    "413": _oauth_error("Body too large"),
                    "429": _oauth_error(
                        "Over the app's rate limit (CALLTRAIL_CCC_PUSH_RATE); see Retry-After"
                    ),
                    "503": _oauth_error("The database is unavailable; see Retry-After"),
                },
            }
        },
    }


_ADMIN_ERRORS = {
    "401": _error("No key, or an unknown, revoked or expired one"),
    "403": _error("A read key, or beyond this admin key's sites"),
}


def _admin(
    summary: str,
    ok_status: str,
    ok: Schema,
    *,
    body: str | None = None,
    parameters: list[Schema] | None = None,
    extra: dict[str, Schema] | None = None,
) -> Schema:
    operation: Schema = {"summary": summary, "security": [{"bearer": []}]}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    responses = {ok_status: ok, **_ADMIN_ERRORS, **(extra or {})}
    if body is not None:
        responses["400"] = _error("A bad body; `details` names each bad field")
    operation["responses"] = responses
    return operation


def _path_parameter(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _admin_paths() -> dict[str, Schema]:
    """The admin API (docs/api.md, "Administration"): admin keys only."""
    no_content = {"description": "Done"}
    site = [_path_parameter("name", {"type": "string"})]
    missing_site = {"404": _error("No such site (or not this key's)")}
    return {
        "/v1/admin/sites": {
            "get": _admin("Sites, with their public site keys", "200", _json("AdminSites")),
            "post": _admin(
                "Create a site (unscoped admin keys only)",
                "201",
                _json("AdminSite", "Created"),
                body="SiteCreate",
                extra={"409": _error("A site of that name exists")},
            ),
        },
        "/v1/admin/sites/{name}": {
            "patch": _admin(
                "Change a site's origins",
                "200",
                _json("AdminSite"),
                body="SiteChange",
                parameters=site,
                extra=missing_site,
            ),
            "delete": _admin(
                "Delete a site and all its data", "204", no_content, parameters=site, extra=missing_site
            ),
        },
        "/v1/admin/keys": {
            "get": _admin("Secret keys (never their secrets)", "200", _json("AdminKeys")),
            "post": _admin(
                "Create a key; its secret is in this answer only",
                "201",
                _json("CreatedKey", "Created"),
                body="KeyCreate",
            ),
        },
        "/v1/admin/keys/{key_id}": {
            "delete": _admin(
                "Revoke a key",
                "200",
                _json("AdminKey", "Revoked"),
                parameters=[_path_parameter("key_id", {"type": "string"})],
                extra={"404": _error("No such key (or not this key's to administer)")},
            ),
        },
        "/v1/admin/ccc-apps": {
            "get": _admin("CCC apps (never their secrets)", "200", _json("AdminCccApps")),
            "post": _admin(
                "Register a CCC app; its console settings and secret are in this answer only",
                "201",
                _json("CreatedCccApp", "Created"),
                body="CccAppCreate",
                extra={"409": _error("The app is registered already")},
            ),
        },
        "/v1/admin/ccc-apps/{sdk_app_id}": {
            "delete": _admin(
                "Unregister a CCC app (its records stay)",
                "204",
                no_content,
                parameters=[_path_parameter("sdk_app_id", {"type": "integer"})],
                extra={"404": _error("No such app (or not this key's to administer)")},
            ),
        },
        "/v1/admin/access-log": {
            "get": _admin(
                "The access log, newest first",
                "200",
                _json("AccessLogPage"),
                parameters=_parameters(Window, only=("from", "to")) + _parameters(AccessLogQuery),
                extra={"400": _error("A bad parameter; `details` names each one")},
            ),
        },
    }


def _paths() -> dict[str, Schema]:
    return {
        "/v1/events": {
            "post": {
                "summary": "Ingest a batch of events from the shim (wire format v1, docs/protocol.md)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/plain": {"schema": ref("EventBatch")},
                        "application/json": {"schema": ref("EventBatch")},
                    },
                },
                "responses": {
                    "200": _json("EventResults", "One result per event, in request order"),
                    "400": _error("Not JSON, or not a v1 batch"),
                    "401": _error("Unknown site key"),
                    "403": _error("Origin not registered for the site"),
                    "413": _error("Body too large"),
                    "415": _error("Unsupported Content-Type"),
                    "429": _error("Over a rate limit; see Retry-After"),
                    "503": _error("Busy or the database is unavailable; see Retry-After"),
                },
            }
        },
        "/v1/sessions": _read(
            "Sessions by offer time, newest first",
            _parameters(Window, SessionsQuery),
            _listing("SessionPage"),
        ),
        "/v1/sessions/{session_id}": {
            "get": {
                "summary": "One session with its timeline of raw events and actions",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json("SessionDetail"),
                    "401": _READ_ERRORS["401"],
                    "404": _error("No such session"),
                },
            }
        },
        "/v1/calls": _read(
            "CCC's call records by start time, newest first (docs/call-records.md)",
            _parameters(Window, CallsQuery),
            _listing("CallPage"),
        ),
        "/v1/calls/{sdk_app_id}/{session_id}": {
            "get": {
                "summary": "One call with its legs, joined page sessions and one timeline",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "sdk_app_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("CallDetail"),
                    "401": _READ_ERRORS["401"],
                    "404": _error("No such call record"),
                },
            }
        },
        "/v1/analytics/inbound": _read(
            "Inbound figures per local-time bucket, and totals",
            _parameters(Window, InboundQuery),
            _json("InboundReport"),
        ),
        "/v1/analytics/calls": _read(
            "Inbound CCC call records per local-time bucket and per skill group, and totals",
            _parameters(Window, CallsReportQuery),
            _json("CallsReport"),
        ),
        "/v1/analytics/agents": _read(
            "One row per agent", _parameters(Window, AgentsQuery), _listing("AgentsReport")
        ),
        "/v1/analytics/cards": _read("Cards sent", _parameters(Window, CardsQuery), _json("CardsReport")),
        "/v1/analytics/outbound": _read(
            "callOut requests and whether a session with the number followed",
            _parameters(Window, OutboundQuery),
            _json("OutboundReport"),
        ),
        "/v1/audit": _read(
            "Agent actions in time order", _parameters(Window, AuditQuery), _listing("AuditPage")
        ),
        "/v1/live": _read(
            "Sessions ringing and connected now", _parameters(Window, only=("site",)), _json("Live")
        ),
        "/v1/quality": _read("Data quality", _parameters(Window), _json("Quality")),
        "/v1/coverage": _read(
            "Did the pop-up see every answered call: CCC's answered legs joined or not, page-only sessions",
            _parameters(Window, CoverageQuery),
            _json("Coverage"),
        ),
        **_ccc_paths(),
        **_admin_paths(),
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "Alive"}}}},
        "/readyz": {
            "get": {
                "summary": "Readiness: the database answers and its schema is current",
                "responses": {"200": {"description": "Ready"}, "503": _error("Not ready")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/shim.js": {
            "get": {
                "summary": "The browser shim",
                "responses": {
                    "200": {
                        "description": "The script",
                        "content": {"application/javascript": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Not modified"},
                },
            }
        },
        **_dashboard_paths(),
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def _dashboard_paths() -> dict[str, Schema]:
    """The dashboard's page and its static files (docs/dashboard.md); they need no key, the API calls do."""
    return {
        path: {
            "get": {
                "summary": "The supervisor dashboard" if path == "/dashboard" else "A dashboard file",
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {media_type.split(";")[0]: {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Not modified"},
                },
            }
        }
        for path, (_name, media_type) in dashboard.ASSETS.items()
    }


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CallTrail",
            "version": "1",
            "description": "Events from Tencent Cloud CCC pop-up pages; metrics defined in docs/metrics.md.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _component_schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A read or admin key"},
                "cccBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A basic CCC app's user name and password (calltrail ccc add)",
                },
                "cccOAuth2": {
                    "type": "oauth2",
                    "description": "An oauth2 CCC app's bearer token",
                    "flows": {"clientCredentials": {"tokenUrl": TOKEN_PATH, "scopes": {}}},
                },
                "cccClient": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "An oauth2 CCC app's client id and secret (or both in the body)",
                },
            },
        },
    }


async def openapi_json(_request: Request) -> Response:
    return JSONResponse(document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
