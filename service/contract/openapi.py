"""GET /openapi.json: the OpenAPI 3.1 description of every route, written out (tests check it against the
routes and run schemathesis against a live server)."""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.contract.schemas import (
    AGENT,
    CHANNEL,
    CURSOR,
    FORMAT,
    FROM,
    LIMIT,
    SCHEMAS,
    SITE,
    THRESHOLD,
    TO,
    Schema,
    query_parameter,
    ref,
)
from service.domain.buckets import INTERVALS
from service.http import dashboard
from service.http.responses import JSONResponse


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
    report_window = [FROM, TO, SITE]
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
            [
                *report_window,
                AGENT,
                CHANNEL,
                query_parameter(
                    "outcome",
                    {"type": "string", "enum": ["answered", "not_answered", "ongoing", "unknown"]},
                    "As read now.",
                ),
                query_parameter(
                    "customer",
                    {"type": "string", "minLength": 1, "maxLength": 200},
                    "Customer mobile or userId.",
                ),
                LIMIT,
                CURSOR,
                FORMAT,
            ],
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
            [
                *report_window,
                query_parameter(
                    "interval", {"type": "string", "enum": list(INTERVALS), "default": "hour"}, "Bucket size."
                ),
                query_parameter(
                    "tz", {"type": "string", "default": "UTC"}, "IANA time zone the buckets align to."
                ),
                CHANNEL,
                AGENT,
                query_parameter(
                    "service_level_s", {**THRESHOLD, "default": 20}, "Service-level threshold (seconds)."
                ),
                query_parameter(
                    "short_abandon_s", {**THRESHOLD, "default": 5}, "Short-abandon cut-off (seconds)."
                ),
            ],
            _json("InboundReport"),
        ),
        "/v1/analytics/agents": _read(
            "One row per agent", [*report_window, CHANNEL, FORMAT], _listing("AgentsReport")
        ),
        "/v1/analytics/cards": _read("Cards sent", [*report_window, AGENT], _json("CardsReport")),
        "/v1/analytics/outbound": _read(
            "callOut requests and whether a session with the number followed",
            [
                *report_window,
                AGENT,
                query_parameter(
                    "follow_window_s",
                    {"type": "integer", "minimum": 1, "maximum": 86400, "default": 600},
                    "How soon.",
                ),
            ],
            _json("OutboundReport"),
        ),
        "/v1/audit": _read(
            "Agent actions in time order",
            [
                *report_window,
                AGENT,
                query_parameter(
                    "action", {"type": "string", "minLength": 1, "maxLength": 64}, "e.g. send_card"
                ),
                LIMIT,
                CURSOR,
                FORMAT,
            ],
            _listing("AuditPage"),
        ),
        "/v1/live": _read("Sessions ringing and connected now", [SITE], _json("Live")),
        "/v1/quality": _read("Data quality", report_window, _json("Quality")),
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
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A read or admin key"}
            },
        },
    }


async def openapi_json(_request: Request) -> Response:
    return JSONResponse(document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
