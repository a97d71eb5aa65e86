"""GET /openapi.json: the OpenAPI 3.1 description of every route, written out (tests check it against the
routes and run schemathesis against a live server)."""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.domain.buckets import INTERVALS
from service.domain.ccc import CHANNELS
from service.domain.formulas import EXACT_THRESHOLD_MAX_S
from service.http import dashboard
from service.http.responses import JSONResponse
from service.reports.params import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_RANGE_DAYS

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> Schema:
    return {"type": [kind, "null"], **extra}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_INSTANT = {"type": "string", "description": "ISO 8601; without an offset it is UTC"}
_FROM = _query(
    "from",
    _INSTANT,
    f"Start (inclusive). Reports default to 7 days before `to`; at most {MAX_RANGE_DAYS} days.",
)
_TO = _query("to", _INSTANT, "End (exclusive). Reports default to now.")
_SITE = _query("site", {"type": "string", "minLength": 1, "maxLength": 200}, "Only this site (by name).")
_AGENT = _query(
    "agent", {"type": "string", "minLength": 1, "maxLength": 320}, "Only this agent (agentEmail)."
)
_CHANNEL = _query("channel", {"type": "string", "enum": sorted(CHANNELS)}, "Only this channel.")
_LIMIT = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
    "Page size.",
)
_CURSOR = _query("cursor", {"type": "string"}, "`next_cursor` of the previous page.")
_FORMAT = _query(
    "format",
    {"type": "string", "enum": ["json", "csv", "ndjson"], "default": "json"},
    "csv and ndjson stream every matching row (from the cursor on), ignoring `limit`.",
)
_THRESHOLD = {"type": "integer", "minimum": 0, "maximum": EXACT_THRESHOLD_MAX_S}

_ERROR = _object(
    {
        "error": _object(
            {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array"},
            }
        )
    }
)

_CALL_FIELDS = {
    name: _nullable("string")
    for name in (
        "sdk_app_id", "channel", "agent_email", "agent_mobile", "agent_nickname", "agent_role_id",
        "customer_mobile", "customer_user_id", "customer_nickname", "customer_avatar",
    )
}  # fmt: skip
_SESSION = _object(
    {
        "id": {"type": "string"},
        "site": {"type": "string"},
        **_CALL_FIELDS,
        "offered_at": _nullable("string"),
        "connected_at": _nullable("string"),
        "ended_at": _nullable("string"),
        "ring_s": _nullable("number"),
        "talk_s": _nullable("number"),
        "outcome": {"type": "string", "enum": ["answered", "not_answered", "ongoing", "unknown"]},
        "end_source": {"type": ["string", "null"], "enum": ["explicit", "superseded", "timeout", None]},
        "observed_from": {"type": "integer", "enum": [100, 200, 400]},
        "cards_sent": {"type": "integer"},
        "call_outs": {"type": "integer"},
        "event_count": {"type": "integer"},
        "duplicate_count": {"type": "integer"},
    }
)
_ACTION = _object(
    {
        "id": {"type": "string"},
        "at": {"type": "string"},
        "site": {"type": "string"},
        "agent_email": _nullable("string"),
        "action": {"type": "string"},
        "session_id": _nullable("string"),
        "page_id": {"type": "string"},
        "details": {"type": "object"},
    }
)
_TIMELINE_ITEM = {
    "type": "object",
    "required": ["kind", "at", "id"],
    "properties": {
        "kind": {"type": "string", "enum": ["event", "action"]},
        "at": {"type": "string"},
        "id": {"type": "string"},
    },
}
_FIGURES = _object(
    {
        "offered": {"type": "integer"},
        "answered": {"type": "integer"},
        "not_answered": {"type": "integer"},
        "unresolved": {"type": "integer"},
        "answer_rate": _nullable("number"),
        "short_abandons": {"type": "integer"},
        "not_answered_rate_excl_short": _nullable("number"),
        "ring_s": _object(
            {
                "mean": _nullable("number"),
                "p50": _nullable("number"),
                "p90": _nullable("number"),
                "max": _nullable("number"),
            }
        ),
        "talk_s": _object({"mean": _nullable("number"), "p90": _nullable("number")}),
        "service_level": _nullable("number"),
    }
)
_AGENT_ROW = _object(
    {
        "agent_email": _nullable("string"),
        "agent_nickname": _nullable("string"),
        "offered": {"type": "integer"},
        "answered": {"type": "integer"},
        "not_answered": {"type": "integer"},
        "answer_rate": _nullable("number"),
        "talk_s_total": {"type": "number"},
        "talk_s_mean": _nullable("number"),
        "cards_sent": {"type": "integer"},
        "call_outs": {"type": "integer"},
        "peak_concurrent_chats": {"type": "integer"},
    }
)
_WINDOW = {"from": {"type": "string"}, "to": {"type": "string"}}
_LIVE_ITEM = _object(
    {
        "id": {"type": "string"},
        "channel": _nullable("string"),
        "agent_email": _nullable("string"),
        "agent_nickname": _nullable("string"),
        "customer_mobile": _nullable("string"),
        "customer_user_id": _nullable("string"),
        "customer_nickname": _nullable("string"),
        "since": {"type": "string"},
        "for_s": {"type": "number"},
    }
)
_EVENT_BATCH = {
    "type": "object",
    "required": ["v", "site", "sent_at", "page", "events"],
    "properties": {
        "v": {"const": 1},
        "site": {"type": "string"},
        "sent_at": {"type": "integer"},
        "page": _object({"id": {"type": "string", "format": "uuid"}, "url": {"type": "string"}}),
        "events": {"type": "array", "minItems": 1, "items": {"type": "object"}},
    },
}
_EVENT_RESULTS = _object(
    {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "status"],
                "properties": {
                    "id": _nullable("string"),
                    "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                    "error": {"type": "string"},
                },
            },
        }
    }
)

SCHEMAS: dict[str, Schema] = {
    "Error": _ERROR,
    "Session": _SESSION,
    "SessionDetail": {
        "allOf": [
            _ref("Session"),
            {
                "type": "object",
                "required": ["timeline"],
                "properties": {"timeline": {"type": "array", "items": _TIMELINE_ITEM}},
            },
        ]
    },
    "SessionPage": _object(
        {"sessions": {"type": "array", "items": _ref("Session")}, "next_cursor": _nullable("string")}
    ),
    "Action": _ACTION,
    "AuditPage": _object(
        {"actions": {"type": "array", "items": _ref("Action")}, "next_cursor": _nullable("string")}
    ),
    "Figures": _FIGURES,
    "InboundReport": _object(
        {
            "interval": {"type": "string", "enum": list(INTERVALS)},
            "tz": {"type": "string"},
            **_WINDOW,
            "service_level_s": {"type": "integer"},
            "short_abandon_s": {"type": "integer"},
            "totals": _ref("Figures"),
            "buckets": {
                "type": "array",
                "items": {"allOf": [_ref("Figures"), _object({"start": {"type": "string"}})]},
            },
        }
    ),
    "AgentRow": _AGENT_ROW,
    "AgentsReport": _object({**_WINDOW, "agents": {"type": "array", "items": _ref("AgentRow")}}),
    "CardsReport": _object(
        {
            **_WINDOW,
            "cards_sent": {"type": "integer"},
            "answered_chat_sessions": {"type": "integer"},
            "attach_rate": _nullable("number"),
            "cards_per_session": _nullable("number"),
            "median_s_to_first_card": _nullable("number"),
            "orphans": {"type": "integer"},
            "by_card": {
                "type": "array",
                "items": _object(
                    {"header": _nullable("string"), "url": _nullable("string"), "count": {"type": "integer"}}
                ),
            },
            "by_agent": {
                "type": "array",
                "items": _object({"agent_email": _nullable("string"), "cards_sent": {"type": "integer"}}),
            },
        }
    ),
    "OutboundReport": _object(
        {
            **_WINDOW,
            "call_outs": {"type": "integer"},
            "followed_by_session": {"type": "integer"},
            "follow_rate": _nullable("number"),
            "follow_window_s": {"type": "integer"},
            "by_agent": {
                "type": "array",
                "items": _object(
                    {
                        "agent_email": _nullable("string"),
                        "call_outs": {"type": "integer"},
                        "followed_by_session": {"type": "integer"},
                        "follow_rate": _nullable("number"),
                    }
                ),
            },
        }
    ),
    "Live": _object(
        {
            "as_of": {"type": "string"},
            "ringing_now": {"type": "integer"},
            "connected_now": {"type": "integer"},
            "longest_ring_s": _nullable("number"),
            "agents_on_contact": {"type": "integer"},
            "agents_with_open_sessions": {"type": "integer"},
            "ringing": {"type": "array", "items": _LIVE_ITEM},
            "connected": {"type": "array", "items": _LIVE_ITEM},
        }
    ),
    "Quality": {
        "type": "object",
        "required": ["events", "pages", "missing_events", "sessions", "pages_with_problems"],
        "properties": {
            "from": _nullable("string"),
            "to": _nullable("string"),
            "events": {"type": "integer"},
            "pages": {"type": "integer"},
            "pages_with_gaps": {"type": "integer"},
            "missing_events": {"type": "integer"},
            "loss_rate": _nullable("number"),
            "sessions": {"type": "integer"},
            "duplicate_events": {"type": "integer"},
            "duplicate_rate": _nullable("number"),
            "closed_by_timeout": {"type": "integer"},
            "closed_by_timeout_share": _nullable("number"),
            "closed_by_supersession": {"type": "integer"},
            "closed_by_supersession_share": _nullable("number"),
            "observed_mid_session": {"type": "integer"},
            "observed_mid_session_share": _nullable("number"),
            "projection_failures": {"type": "integer"},
            "quarantined_events": {"type": "integer"},
            "pages_with_problems": {"type": "array", "items": {"type": "object"}},
        },
    },
    "EventBatch": _EVENT_BATCH,
    "EventResults": _EVENT_RESULTS,
}


def _error(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _json(name: str, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


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
            "application/json": {"schema": _ref(name)},
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }


def _paths() -> dict[str, Schema]:
    report_window = [_FROM, _TO, _SITE]
    return {
        "/v1/events": {
            "post": {
                "summary": "Ingest a batch of events from the shim (wire format v1, docs/protocol.md)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/plain": {"schema": _ref("EventBatch")},
                        "application/json": {"schema": _ref("EventBatch")},
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
                _AGENT,
                _CHANNEL,
                _query(
                    "outcome",
                    {"type": "string", "enum": ["answered", "not_answered", "ongoing", "unknown"]},
                    "As read now.",
                ),
                _query(
                    "customer",
                    {"type": "string", "minLength": 1, "maxLength": 200},
                    "Customer mobile or userId.",
                ),
                _LIMIT,
                _CURSOR,
                _FORMAT,
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
                _query(
                    "interval", {"type": "string", "enum": list(INTERVALS), "default": "hour"}, "Bucket size."
                ),
                _query("tz", {"type": "string", "default": "UTC"}, "IANA time zone the buckets align to."),
                _CHANNEL,
                _AGENT,
                _query(
                    "service_level_s", {**_THRESHOLD, "default": 20}, "Service-level threshold (seconds)."
                ),
                _query("short_abandon_s", {**_THRESHOLD, "default": 5}, "Short-abandon cut-off (seconds)."),
            ],
            _json("InboundReport"),
        ),
        "/v1/analytics/agents": _read(
            "One row per agent", [*report_window, _CHANNEL, _FORMAT], _listing("AgentsReport")
        ),
        "/v1/analytics/cards": _read("Cards sent", [*report_window, _AGENT], _json("CardsReport")),
        "/v1/analytics/outbound": _read(
            "callOut requests and whether a session with the number followed",
            [
                *report_window,
                _AGENT,
                _query(
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
                _AGENT,
                _query("action", {"type": "string", "minLength": 1, "maxLength": 64}, "e.g. send_card"),
                _LIMIT,
                _CURSOR,
                _FORMAT,
            ],
            _listing("AuditPage"),
        ),
        "/v1/live": _read("Sessions ringing and connected now", [_SITE], _json("Live")),
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
