"""Every answer of the API as a typed model, declared once: the components of /openapi.json are generated
from these (contract/openapi.py), the export columns are their fields (reports/records.py), the docs' field
tables are checked against them (tests/contract/test_fields.py), and every recorded answer must decode into
its model with no field missing, extra or of another type (tests/contract/test_models.py).

msgspec Structs, chosen by measurement (docs/design.md, "The contract's model library"). The reports build
their answers as plain dicts in these fields' order, which service/formats.py writes (orjson for an answer,
msgspec for an export's rows); a Struct per row would cost an allocation per row for nothing the tests do not
already prove.

The ingest envelope and its per-event results are declared here for the description only: the endpoint
keeps its own parser (ingest/protocol.py), which reports every envelope problem at once and rejects one
bad event alone; a test holds the two to the same rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_type_hints

import msgspec
from msgspec import Meta

from service.domain.buckets import Interval
from service.domain.sessions import EndSource, Outcome
from service.ingest.protocol import MAX_SITE_KEY_LENGTH, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS


class Model(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An answer's object: every field required (an absent value is null), no other field allowed."""


Instant = Annotated[str, Meta(description="ISO 8601 in UTC, e.g. 2025-11-24T08:00:00.123000Z")]
Share = Annotated[float, Meta(description="A fraction from 0 to 1, rounded to 6 places")]
Seconds = Annotated[float, Meta(description="Seconds, rounded to milliseconds")]


class ErrorBody(Model):
    code: str
    message: str
    details: list[Any]


class Error(Model):
    """The one error shape of every endpoint (the push receiver and token endpoint of CCC excepted)."""

    error: ErrorBody


class Session(Model):
    """A call or chat as the page saw it (docs/sessions.md)."""

    id: str
    site: str
    sdk_app_id: str | None
    channel: str | None
    agent_email: str | None
    agent_mobile: str | None
    agent_nickname: str | None
    agent_role_id: str | None
    customer_mobile: str | None
    customer_user_id: str | None
    customer_nickname: str | None
    customer_avatar: str | None
    offered_at: Instant | None
    connected_at: Instant | None
    ended_at: Instant | None
    ring_s: Seconds | None
    talk_s: Seconds | None
    outcome: Outcome
    end_source: EndSource | None
    observed_from: Literal[100, 200, 400]
    cards_sent: int
    call_outs: int
    event_count: int
    duplicate_count: int


class TimelineEvent(Model, tag_field="kind", tag="event"):
    """A raw event of the session, in time order with its actions."""

    at: Instant
    id: str
    type: str
    status: int | None
    page_id: str
    seq: int
    ts_flag: str | None
    raw: dict[str, Any]


class Action(Model):
    """An agent action from the pop-up page (docs/sessions.md)."""

    id: str
    at: Instant
    site: str
    agent_email: str | None
    action: str
    session_id: str | None
    page_id: str
    details: dict[str, Any]


class TimelineAction(Action, tag_field="kind", tag="action"):
    """An action of the session, in time order with its raw events."""


class SessionDetail(Session):
    timeline: list[TimelineEvent | TimelineAction]


class SessionPage(Model):
    sessions: list[Session]
    next_cursor: str | None


class AuditPage(Model):
    actions: list[Action]
    next_cursor: str | None


class RingTimes(Model):
    mean: Seconds | None
    p50: Seconds | None
    p90: Seconds | None
    max: Seconds | None


class TalkTimes(Model):
    mean: Seconds | None
    p90: Seconds | None


class Figures(Model):
    """The inbound figures of a bucket or of the whole range (docs/metrics.md)."""

    offered: int
    answered: int
    not_answered: int
    unresolved: int
    answer_rate: Share | None
    short_abandons: int
    not_answered_rate_excl_short: Share | None
    ring_s: RingTimes
    talk_s: TalkTimes
    service_level: Share | None


# A bucket is its local start, then its figures: a subclass of Figures would put `start` last. (For the type
# checker it is one: the fields are the same.)
if TYPE_CHECKING:

    class Bucket(Figures):
        start: str

else:
    Bucket = msgspec.defstruct(
        "Bucket",
        [
            ("start", Annotated[str, Meta(description="The bucket's local start, ISO 8601 with its offset")]),
            *get_type_hints(Figures, include_extras=True).items(),
        ],
        bases=(Model,),
        module=__name__,
    )


class InboundReport(Model):
    interval: Interval
    tz: str
    from_: Instant = msgspec.field(name="from")
    to: Instant
    service_level_s: int
    short_abandon_s: int
    totals: Figures
    buckets: list[Bucket]


class QueueTimes(Model):
    mean: Seconds | None
    p50: Seconds | None
    p90: Seconds | None
    max: Seconds | None


class HungUpBy(Model):
    user: int
    seat: int
    system: int


class CallFigures(Model):
    """The figures of the calls report for a bucket, a skill group or the whole range (docs/metrics.md,
    "Calls")."""

    offered: int
    answered: int
    answer_rate: Share | None
    abandoned: int
    abandon_rate: Share | None
    abandoned_ivr: int
    abandoned_queue: int
    abandoned_ringing: int
    no_agent: int
    after_hours: int
    queued: int
    service_level: Share | None
    asa_s: Seconds | None
    queue_s: QueueTimes
    transferred: int
    hung_up_by: HungUpBy
    satisfaction: Annotated[
        dict[str, int], Meta(description="Calls per post-call (satisfaction) key pressed, by the key")
    ]


if TYPE_CHECKING:

    class CallBucket(CallFigures):
        start: str

    class SkillGroupFigures(CallFigures):
        skill_group_id: int | None
        skill_group_name: str | None

else:
    _CALL_FIGURES = list(get_type_hints(CallFigures, include_extras=True).items())
    CallBucket = msgspec.defstruct(
        "CallBucket",
        [
            ("start", Annotated[str, Meta(description="The bucket's local start, ISO 8601 with its offset")]),
            *_CALL_FIGURES,
        ],
        bases=(Model,),
        module=__name__,
    )
    SkillGroupFigures = msgspec.defstruct(
        "SkillGroupFigures",
        [
            ("skill_group_id", Annotated[int | None, Meta(description="QueuedSkillGroupId; null: none")]),
            ("skill_group_name", str | None),
            *_CALL_FIGURES,
        ],
        bases=(Model,),
        module=__name__,
    )


class CallsReport(Model):
    interval: Interval
    tz: str
    from_: Instant = msgspec.field(name="from")
    to: Instant
    service_level_s: int
    totals: CallFigures
    buckets: list[CallBucket]
    by_skill_group: list[SkillGroupFigures]


class AgentRow(Model):
    agent_email: str | None
    agent_nickname: str | None
    offered: int
    answered: int
    not_answered: int
    answer_rate: Share | None
    talk_s_total: Seconds
    talk_s_mean: Seconds | None
    cards_sent: int
    call_outs: int
    peak_concurrent_chats: int


class AgentsReport(Model):
    from_: Instant = msgspec.field(name="from")
    to: Instant
    agents: list[AgentRow]


class CardCount(Model):
    header: str | None
    url: str | None
    count: int


class AgentCards(Model):
    agent_email: str | None
    cards_sent: int


class CardsReport(Model):
    from_: Instant = msgspec.field(name="from")
    to: Instant
    cards_sent: int
    answered_chat_sessions: int
    attach_rate: Share | None
    cards_per_session: float | None
    median_s_to_first_card: Seconds | None
    orphans: int
    by_card: list[CardCount]
    by_agent: list[AgentCards]


class AgentCallOuts(Model):
    agent_email: str | None
    call_outs: int
    followed_by_session: int
    follow_rate: Share | None


class OutboundReport(Model):
    from_: Instant = msgspec.field(name="from")
    to: Instant
    call_outs: int
    followed_by_session: int
    follow_rate: Share | None
    follow_window_s: int
    by_agent: list[AgentCallOuts]


class LiveSession(Model):
    id: str
    channel: str | None
    agent_email: str | None
    agent_nickname: str | None
    customer_mobile: str | None
    customer_user_id: str | None
    customer_nickname: str | None
    since: Instant
    for_s: Seconds


class Live(Model):
    as_of: Instant
    ringing_now: int
    connected_now: int
    longest_ring_s: Seconds | None
    agents_on_contact: int
    agents_with_open_sessions: int
    ringing: list[LiveSession]
    connected: list[LiveSession]


class PageProblem(Model):
    page_id: str
    events: int
    last_seq: int
    missing: int
    repeated_seqs: int


class Quality(Model):
    from_: Instant | None = msgspec.field(name="from")
    to: Instant | None
    events: int
    pages: int
    pages_with_gaps: int
    missing_events: int
    loss_rate: Share | None
    sessions: int
    duplicate_events: int
    duplicate_rate: Share | None
    closed_by_timeout: int
    closed_by_timeout_share: Share | None
    closed_by_supersession: int
    closed_by_supersession_share: Share | None
    observed_mid_session: int
    observed_mid_session_share: Share | None
    projection_failures: int
    quarantined_events: int
    pages_with_problems: list[PageProblem]


class EventRecord(Model):
    """A raw event as `calltrail export events` writes it."""

    id: str
    site: str
    page_id: str
    page_url: str
    seq: int
    type: str
    ts: int
    sent_at: int
    received_at: int
    event_at: Instant
    skew_ms: int
    ts_flag: str | None
    raw: dict[str, Any]


Timestamp = Annotated[int, Meta(ge=MIN_TIMESTAMP_MS, lt=MAX_TIMESTAMP_MS, description="ms since the epoch")]


class Page(Model):
    id: Annotated[str, Meta(pattern="^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")]
    url: str


class EventBatch(msgspec.Struct, kw_only=True):
    """What the shim posts (docs/protocol.md). Each event is checked alone, so they are objects here."""

    v: Literal[1]
    site: Annotated[str, Meta(min_length=1, max_length=MAX_SITE_KEY_LENGTH)]
    sent_at: Timestamp
    page: Page
    events: Annotated[list[dict[str, Any]], Meta(min_length=1)]


class EventResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    error: str | None = None


class EventResults(Model):
    """One result per event, in request order."""

    results: list[EventResult]


class CccPushBody(msgspec.Struct, kw_only=True):
    """One CCC record (a CDR, a recording, ...), stored verbatim; docs/ccc.md. Its other fields are CCC's."""

    SdkAppId: Annotated[int, Meta(ge=1)]


class CccAnswer(Model):
    """What the CCC push receiver answers: CCC reads ErrCode (0: stored, or stored before)."""

    ErrCode: Annotated[int, Meta(description="0: stored (or already stored); else the HTTP status")]
    ErrMsg: str


class CccTokenRequest(msgspec.Struct, kw_only=True):
    """An OAuth2 client-credentials token request (RFC 6749 §4.4), form-encoded or JSON."""

    grant_type: Literal["client_credentials"]
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None


class CccToken(Model):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class OAuthError(Model):
    """RFC 6749 §5.2's error answer, for the token endpoint."""

    error: Literal[
        "invalid_request",
        "invalid_client",
        "unsupported_grant_type",
        "temporarily_unavailable",
        "server_error",
    ]
    error_description: str


COMPONENTS: tuple[type[msgspec.Struct], ...] = (
    Error, Session, SessionDetail, SessionPage, Action, AuditPage, Figures, InboundReport, CallsReport,
    AgentRow, AgentsReport, CardsReport, OutboundReport, Live, Quality, EventBatch, EventResults, CccPushBody,
    CccAnswer, CccTokenRequest, CccToken, OAuthError,
)  # fmt: skip


def field_names(model: type[msgspec.Struct]) -> tuple[str, ...]:
    """The model's fields by their wire names, in order: a record's keys and an export's columns."""
    return tuple(f.encode_name for f in msgspec.structs.fields(model))
