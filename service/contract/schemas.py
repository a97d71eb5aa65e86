"""The JSON Schemas of /openapi.json: the shared query parameters and every answer's shape (components)."""

from __future__ import annotations

from typing import Any

from service.domain.buckets import INTERVALS
from service.domain.ccc import CHANNELS
from service.domain.histograms import EXACT_THRESHOLD_MAX_S
from service.reports.params import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_RANGE_DAYS

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **extra: Any) -> Schema:
    return {"type": [kind, "null"], **extra}


def object_schema(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def query_parameter(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


INSTANT = {"type": "string", "description": "ISO 8601; without an offset it is UTC"}
FROM = query_parameter(
    "from",
    INSTANT,
    f"Start (inclusive). Reports default to 7 days before `to`; at most {MAX_RANGE_DAYS} days.",
)
TO = query_parameter("to", INSTANT, "End (exclusive). Reports default to now.")
SITE = query_parameter(
    "site", {"type": "string", "minLength": 1, "maxLength": 200}, "Only this site (by name)."
)
AGENT = query_parameter(
    "agent", {"type": "string", "minLength": 1, "maxLength": 320}, "Only this agent (agentEmail)."
)
CHANNEL = query_parameter("channel", {"type": "string", "enum": sorted(CHANNELS)}, "Only this channel.")
LIMIT = query_parameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
    "Page size.",
)
CURSOR = query_parameter("cursor", {"type": "string"}, "`next_cursor` of the previous page.")
FORMAT = query_parameter(
    "format",
    {"type": "string", "enum": ["json", "csv", "ndjson"], "default": "json"},
    "csv and ndjson stream every matching row (from the cursor on), ignoring `limit`.",
)
THRESHOLD = {"type": "integer", "minimum": 0, "maximum": EXACT_THRESHOLD_MAX_S}

ERROR = object_schema(
    {
        "error": object_schema(
            {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array"},
            }
        )
    }
)

CALL_FIELDS = {
    name: nullable("string")
    for name in (
        "sdk_app_id", "channel", "agent_email", "agent_mobile", "agent_nickname", "agent_role_id",
        "customer_mobile", "customer_user_id", "customer_nickname", "customer_avatar",
    )
}  # fmt: skip
SESSION = object_schema(
    {
        "id": {"type": "string"},
        "site": {"type": "string"},
        **CALL_FIELDS,
        "offered_at": nullable("string"),
        "connected_at": nullable("string"),
        "ended_at": nullable("string"),
        "ring_s": nullable("number"),
        "talk_s": nullable("number"),
        "outcome": {"type": "string", "enum": ["answered", "not_answered", "ongoing", "unknown"]},
        "end_source": {"type": ["string", "null"], "enum": ["explicit", "superseded", "timeout", None]},
        "observed_from": {"type": "integer", "enum": [100, 200, 400]},
        "cards_sent": {"type": "integer"},
        "call_outs": {"type": "integer"},
        "event_count": {"type": "integer"},
        "duplicate_count": {"type": "integer"},
    }
)
ACTION = object_schema(
    {
        "id": {"type": "string"},
        "at": {"type": "string"},
        "site": {"type": "string"},
        "agent_email": nullable("string"),
        "action": {"type": "string"},
        "session_id": nullable("string"),
        "page_id": {"type": "string"},
        "details": {"type": "object"},
    }
)
TIMELINE_ITEM = {
    "type": "object",
    "required": ["kind", "at", "id"],
    "properties": {
        "kind": {"type": "string", "enum": ["event", "action"]},
        "at": {"type": "string"},
        "id": {"type": "string"},
    },
}
FIGURES = object_schema(
    {
        "offered": {"type": "integer"},
        "answered": {"type": "integer"},
        "not_answered": {"type": "integer"},
        "unresolved": {"type": "integer"},
        "answer_rate": nullable("number"),
        "short_abandons": {"type": "integer"},
        "not_answered_rate_excl_short": nullable("number"),
        "ring_s": object_schema(
            {
                "mean": nullable("number"),
                "p50": nullable("number"),
                "p90": nullable("number"),
                "max": nullable("number"),
            }
        ),
        "talk_s": object_schema({"mean": nullable("number"), "p90": nullable("number")}),
        "service_level": nullable("number"),
    }
)
AGENT_ROW = object_schema(
    {
        "agent_email": nullable("string"),
        "agent_nickname": nullable("string"),
        "offered": {"type": "integer"},
        "answered": {"type": "integer"},
        "not_answered": {"type": "integer"},
        "answer_rate": nullable("number"),
        "talk_s_total": {"type": "number"},
        "talk_s_mean": nullable("number"),
        "cards_sent": {"type": "integer"},
        "call_outs": {"type": "integer"},
        "peak_concurrent_chats": {"type": "integer"},
    }
)
WINDOW = {"from": {"type": "string"}, "to": {"type": "string"}}
LIVE_ITEM = object_schema(
    {
        "id": {"type": "string"},
        "channel": nullable("string"),
        "agent_email": nullable("string"),
        "agent_nickname": nullable("string"),
        "customer_mobile": nullable("string"),
        "customer_user_id": nullable("string"),
        "customer_nickname": nullable("string"),
        "since": {"type": "string"},
        "for_s": {"type": "number"},
    }
)
EVENT_BATCH = {
    "type": "object",
    "required": ["v", "site", "sent_at", "page", "events"],
    "properties": {
        "v": {"const": 1},
        "site": {"type": "string"},
        "sent_at": {"type": "integer"},
        "page": object_schema({"id": {"type": "string", "format": "uuid"}, "url": {"type": "string"}}),
        "events": {"type": "array", "minItems": 1, "items": {"type": "object"}},
    },
}
EVENT_RESULTS = object_schema(
    {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "status"],
                "properties": {
                    "id": nullable("string"),
                    "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                    "error": {"type": "string"},
                },
            },
        }
    }
)

# The CCC receiver's own shapes (service/http/ccc.py): CCC reads ErrCode/ErrMsg, OAuth2 clients RFC 6749's.
CCC_PUSH_BODY = {
    "type": "object",
    "required": ["SdkAppId"],
    "properties": {"SdkAppId": {"type": "integer", "minimum": 1}},
    "additionalProperties": True,
    "description": "One CCC record (a CDR, a recording, ...), stored verbatim; docs/ccc.md",
}
CCC_ANSWER = object_schema(
    {
        "ErrCode": {"type": "integer", "description": "0: stored (or already stored); else the HTTP status"},
        "ErrMsg": {"type": "string"},
    }
)
CCC_TOKEN_REQUEST = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "scope": {"type": "string"},
    },
}
CCC_TOKEN = object_schema(
    {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
    }
)
OAUTH_ERRORS = (
    "invalid_request", "invalid_client", "unsupported_grant_type", "temporarily_unavailable", "server_error",
)  # fmt: skip
OAUTH_ERROR = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {
        "error": {"type": "string", "enum": list(OAUTH_ERRORS)},
        "error_description": {"type": "string"},
    },
}

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR,
    "Session": SESSION,
    "SessionDetail": {
        "allOf": [
            ref("Session"),
            {
                "type": "object",
                "required": ["timeline"],
                "properties": {"timeline": {"type": "array", "items": TIMELINE_ITEM}},
            },
        ]
    },
    "SessionPage": object_schema(
        {"sessions": {"type": "array", "items": ref("Session")}, "next_cursor": nullable("string")}
    ),
    "Action": ACTION,
    "AuditPage": object_schema(
        {"actions": {"type": "array", "items": ref("Action")}, "next_cursor": nullable("string")}
    ),
    "Figures": FIGURES,
    "InboundReport": object_schema(
        {
            "interval": {"type": "string", "enum": list(INTERVALS)},
            "tz": {"type": "string"},
            **WINDOW,
            "service_level_s": {"type": "integer"},
            "short_abandon_s": {"type": "integer"},
            "totals": ref("Figures"),
            "buckets": {
                "type": "array",
                "items": {"allOf": [ref("Figures"), object_schema({"start": {"type": "string"}})]},
            },
        }
    ),
    "AgentRow": AGENT_ROW,
    "AgentsReport": object_schema({**WINDOW, "agents": {"type": "array", "items": ref("AgentRow")}}),
    "CardsReport": object_schema(
        {
            **WINDOW,
            "cards_sent": {"type": "integer"},
            "answered_chat_sessions": {"type": "integer"},
            "attach_rate": nullable("number"),
            "cards_per_session": nullable("number"),
            "median_s_to_first_card": nullable("number"),
            "orphans": {"type": "integer"},
            "by_card": {
                "type": "array",
                "items": object_schema(
                    {"header": nullable("string"), "url": nullable("string"), "count": {"type": "integer"}}
                ),
            },
            "by_agent": {
                "type": "array",
                "items": object_schema(
                    {"agent_email": nullable("string"), "cards_sent": {"type": "integer"}}
                ),
            },
        }
    ),
    "OutboundReport": object_schema(
        {
            **WINDOW,
            "call_outs": {"type": "integer"},
            "followed_by_session": {"type": "integer"},
            "follow_rate": nullable("number"),
            "follow_window_s": {"type": "integer"},
            "by_agent": {
                "type": "array",
                "items": object_schema(
                    {
                        "agent_email": nullable("string"),
                        "call_outs": {"type": "integer"},
                        "followed_by_session": {"type": "integer"},
                        "follow_rate": nullable("number"),
                    }
                ),
            },
        }
    ),
    "Live": object_schema(
        {
            "as_of": {"type": "string"},
            "ringing_now": {"type": "integer"},
            "connected_now": {"type": "integer"},
            "longest_ring_s": nullable("number"),
            "agents_on_contact": {"type": "integer"},
            "agents_with_open_sessions": {"type": "integer"},
            "ringing": {"type": "array", "items": LIVE_ITEM},
            "connected": {"type": "array", "items": LIVE_ITEM},
        }
    ),
    "Quality": {
        "type": "object",
        "required": ["events", "pages", "missing_events", "sessions", "pages_with_problems"],
        "properties": {
            "from": nullable("string"),
            "to": nullable("string"),
            "events": {"type": "integer"},
            "pages": {"type": "integer"},
            "pages_with_gaps": {"type": "integer"},
            "missing_events": {"type": "integer"},
            "loss_rate": nullable("number"),
            "sessions": {"type": "integer"},
            "duplicate_events": {"type": "integer"},
            "duplicate_rate": nullable("number"),
            "closed_by_timeout": {"type": "integer"},
            "closed_by_timeout_share": nullable("number"),
            "closed_by_supersession": {"type": "integer"},
            "closed_by_supersession_share": nullable("number"),
            "observed_mid_session": {"type": "integer"},
            "observed_mid_session_share": nullable("number"),
            "projection_failures": {"type": "integer"},
            "quarantined_events": {"type": "integer"},
            "pages_with_problems": {"type": "array", "items": {"type": "object"}},
        },
    },
    "EventBatch": EVENT_BATCH,
    "EventResults": EVENT_RESULTS,
    "CccPushBody": CCC_PUSH_BODY,
    "CccAnswer": CCC_ANSWER,
    "CccTokenRequest": CCC_TOKEN_REQUEST,
    "CccToken": CCC_TOKEN,
    "OAuthError": OAUTH_ERROR,
}
