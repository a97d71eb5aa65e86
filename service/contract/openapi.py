"""GET /openapi.json: the OpenAPI 3.1 description of every route, written out (tests check it against the
routes and run schemathesis against a live server)."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.contract.models import COMPONENTS
from service.contract.queries import (
    AgentsQuery,
    AuditQuery,
    CardsQuery,
    InboundQuery,
    NoQuery,
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
            description = schema.pop("description", "")
            described.append(
                {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
            )
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
        "/v1/analytics/inbound": _read(
            "Inbound figures per local-time bucket, and totals",
            _parameters(Window, InboundQuery),
            _json("InboundReport"),
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
        "/v1/quality": _read("Data quality", _parameters(Window, NoQuery), _json("Quality")),
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
                "bearer": {"type": "http", "scheme": "bearer", "description": "A read or admin key"}
            },
        },
    }


async def openapi_json(_request: Request) -> Response:
    return JSONResponse(document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
