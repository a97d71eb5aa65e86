"""The query parameters of every read endpoint, declared once as typed models: the endpoints read them
through these (reports/params.py, ``Params.read``: every bad parameter named in one 400, in field order) and
/openapi.json describes them from these (contract/openapi.py).

Each field's type says how it is read: text (``Text``, a length limit), a choice (a ``Literal``), an integer
(with its bounds), a time zone, a keyset cursor (a ``Cursor`` subclass naming its parts). ``from``, ``to``
and ``site``, the window every report shares, are read first by the serving code (reports/serving.py), so
they are declared apart, in ``WINDOW``."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta

from service.domain.buckets import Interval
from service.domain.call_records import Channel as CallChannel
from service.domain.ccc import Channel
from service.domain.histograms import EXACT_THRESHOLD_MAX_S
from service.domain.sessions import Outcome

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
MAX_RANGE_DAYS = 400
DEFAULT_REPORT_DAYS = 7
DEFAULT_SERVICE_LEVEL_S = 20
DEFAULT_SHORT_ABANDON_S = 5
DEFAULT_FOLLOW_WINDOW_S = 600
MAX_FOLLOW_WINDOW_S = 86_400

CursorPart = Literal["time", "site", "id", "app", "session", "leg", "entry"]


class Cursor(tuple[Any, ...]):
    """A keyset cursor, the ``next_cursor`` of an earlier page; a subclass names the parts of its key."""

    parts: ClassVar[tuple[CursorPart, ...]] = ()


class SessionCursor(Cursor):
    parts = ("time", "id")


class AuditCursor(Cursor):
    parts = ("time", "site", "id")


class CallCursor(Cursor):
    """A call record's key: its start (sort time), SdkAppId and SessionId."""

    parts = ("time", "app", "session")


class AccessCursor(Cursor):
    """An access-log entry's key: its time and id."""

    parts = ("time", "entry")


class CoverageCursor(Cursor):
    """An unseen leg's key: its accept time, SdkAppId, SessionId and leg index."""

    parts = ("time", "app", "session", "leg")


def text(max_length: int, description: str) -> Any:
    return Meta(min_length=1, max_length=max_length, description=description)


def threshold(description: str) -> Any:
    return Meta(ge=0, le=EXACT_THRESHOLD_MAX_S, description=description)


Agent = Annotated[str, text(320, "Only this agent (agentEmail).")]
OnlyChannel = Annotated[Channel, Meta(description="Only this channel.")]
Limit = Annotated[int, Meta(ge=1, le=MAX_PAGE_SIZE, description="Page size.")]
ListFormat = Annotated[
    Literal["json", "csv", "ndjson"],
    Meta(description="csv and ndjson stream every matching row (from the cursor on), ignoring `limit`."),
]
CURSOR_DESCRIPTION = "`next_cursor` of the previous page."


class Query(msgspec.Struct, kw_only=True):
    """The parameters of one endpoint beyond its window, in the order they are read."""


class Window(Query):
    from_: (
        Annotated[
            str,
            Meta(
                description=f"Start (inclusive), ISO 8601 (without an offset it is UTC). Reports default to "
                f"{DEFAULT_REPORT_DAYS} days before `to`; at most {MAX_RANGE_DAYS} days."
            ),
        ]
        | None
    ) = msgspec.field(default=None, name="from")
    to: Annotated[str, Meta(description="End (exclusive), ISO 8601. Reports default to now.")] | None = None
    site: Annotated[str, text(200, "Only this site (by name).")] | None = None


class SessionsQuery(Query):
    agent: Agent | None = None
    channel: OnlyChannel | None = None
    outcome: Annotated[Outcome, Meta(description="As read now.")] | None = None
    customer: Annotated[str, text(200, "Customer mobile or userId.")] | None = None
    limit: Limit = DEFAULT_PAGE_SIZE
    format: ListFormat = "json"
    cursor: Annotated[SessionCursor, Meta(description=CURSOR_DESCRIPTION)] | None = None


class CallsQuery(Query):
    """GET /v1/calls: the call records' list."""

    agent: Agent | None = None
    channel: Annotated[Literal["phone", "chat", "video"], Meta(description="Only this channel.")] | None = (
        None
    )
    direction: Annotated[Literal["inbound", "outbound"], Meta(description="Only this direction.")] | None = (
        None
    )
    skill_group: Annotated[str, text(200, "Only this skill group (its id or its name).")] | None = None
    end_status: Annotated[str, text(64, "Only this CCC end status, e.g. waitingGiveUp.")] | None = None
    customer: Annotated[str, text(200, "Customer number or user id.")] | None = None
    seen: (
        Annotated[
            bool, Meta(description="Only calls a page session was (true) or was not (false) joined to.")
        ]
        | None
    ) = None
    limit: Limit = DEFAULT_PAGE_SIZE
    format: ListFormat = "json"
    cursor: Annotated[CallCursor, Meta(description=CURSOR_DESCRIPTION)] | None = None


class AuditQuery(Query):
    agent: Agent | None = None
    action: Annotated[str, text(64, "e.g. send_card")] | None = None
    limit: Limit = DEFAULT_PAGE_SIZE
    format: ListFormat = "json"
    cursor: Annotated[AuditCursor, Meta(description=CURSOR_DESCRIPTION)] | None = None


class InboundQuery(Query):
    interval: Annotated[Interval, Meta(description="Bucket size.")] = "hour"
    tz: Annotated[ZoneInfo, Meta(description="IANA time zone the buckets align to.")] = msgspec.field(
        default_factory=lambda: ZoneInfo("UTC")
    )
    channel: OnlyChannel | None = None
    agent: Agent | None = None
    service_level_s: Annotated[int, threshold("Service-level threshold (seconds).")] = DEFAULT_SERVICE_LEVEL_S
    short_abandon_s: Annotated[int, threshold("Short-abandon cut-off (seconds).")] = DEFAULT_SHORT_ABANDON_S


class CallsReportQuery(Query):
    """GET /v1/analytics/calls: the inbound report's buckets, over CCC's call records."""

    interval: Annotated[Interval, Meta(description="Bucket size.")] = "hour"
    tz: Annotated[ZoneInfo, Meta(description="IANA time zone the buckets align to.")] = msgspec.field(
        default_factory=lambda: ZoneInfo("UTC")
    )
    channel: Annotated[CallChannel, Meta(description="Only this channel.")] | None = None
    agent: (
        Annotated[
            str, text(320, "Only the calls whose record names this agent (SeatUser.Mail, the last agent).")
        ]
        | None
    ) = None
    skill_group: (
        Annotated[
            int, Meta(ge=0, le=2**62, description="Only the calls queued into this skill group (its id).")
        ]
        | None
    ) = None
    service_level_s: Annotated[
        int, threshold("Service-level threshold (seconds from queue entry to the agent's answer).")
    ] = DEFAULT_SERVICE_LEVEL_S


class AgentsQuery(Query):
    channel: OnlyChannel | None = None
    format: ListFormat = "json"


class CardsQuery(Query):
    agent: Agent | None = None


class OutboundQuery(Query):
    agent: Agent | None = None
    follow_window_s: Annotated[int, Meta(ge=1, le=MAX_FOLLOW_WINDOW_S, description="How soon.")] = (
        DEFAULT_FOLLOW_WINDOW_S
    )


class CoverageQuery(Query):
    agent: Agent | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE_SIZE, description="Page size of `unseen`.")] = (
        DEFAULT_PAGE_SIZE
    )
    cursor: (
        Annotated[CoverageCursor, Meta(description="`next_cursor` of the previous page of `unseen`.")] | None
    ) = None


class AccessLogQuery(Query):
    """GET /v1/admin/access-log, beyond ``from`` and ``to``."""

    key: Annotated[str, text(16, "Only this key's entries (its id, the part after ctk_).")] | None = None
    limit: Limit = DEFAULT_PAGE_SIZE
    cursor: Annotated[AccessCursor, Meta(description=CURSOR_DESCRIPTION)] | None = None


# The schema of a parameter that is not JSON: a zone is its IANA name, a cursor the text a page returned.
def parameter_schema_hook(kind: type) -> dict[str, Any]:
    if kind is ZoneInfo:
        return {"type": "string", "default": "UTC"}
    if isinstance(kind, type) and issubclass(kind, Cursor):
        return {"type": "string"}
    raise NotImplementedError(kind)
