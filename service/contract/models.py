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
    # The CCC agent leg this session showed, once joined (docs/call-records.md, "Join"); null otherwise.
    call_sdk_app_id: int | None
    call_session_id: str | None
    call_leg: int | None
    call_join_offset_ms: Annotated[int, Meta(description="The page's time minus CCC's ring time")] | None


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


class CallSatisfaction(Model):
    key: str
    label: str | None


CallChannel = Literal["phone", "chat", "video"]
JoinState = Annotated[
    Literal["joined", "ambiguous"],
    Meta(description="joined: to `page_session_id`; ambiguous: two candidates equally near, none taken"),
]


class Call(Model):
    """A call or chat as CCC recorded it: its pushed and pulled records merged (docs/call-records.md)."""

    sdk_app_id: int
    session_id: str
    channel: CallChannel
    direction: Literal["inbound", "outbound"] | None
    caller: str | None
    callee: str | None
    customer: Annotated[str, Meta(description="Normalised number (phone) or user id (chat)")] | None
    agent_email: Annotated[str, Meta(description="The last agent (SeatUser)")] | None
    started_at: Instant | None
    queued_at: Instant | None
    ringing_at: Instant | None
    accepted_at: Instant | None
    ended_at: Instant | None
    ivr_s: int | None
    queue_s: int | None
    duration_s: int | None
    end_status: str | None
    end_status_code: int | None
    hung_up_by: Literal["user", "seat", "system"] | None
    skill_group_id: int | None
    skill_group_name: str | None
    transfers: int
    ivr_keys: list[str]
    satisfaction: list[CallSatisfaction]
    record_urls: list[str]
    sources: list[str]
    leg_count: int
    page_sessions: Annotated[list[str], Meta(description="The page sessions joined to its legs")]


class CallLeg(Model):
    """One agent's part of a call (ServeParticipants), and the page session that showed it."""

    leg: int
    agent_email: str | None
    type: str | None
    started_at: Instant | None
    ringing_at: Instant | None
    accepted_at: Instant | None
    ended_at: Instant | None
    end_status: str | None
    skill_group_id: int | None
    skill_group_name: str | None
    transfer_from: str | None
    transfer_to: str | None
    record_id: str | None
    record_url: str | None
    page_session_id: str | None
    join: JoinState | None
    join_offset_ms: int | None


class Recording(Model):
    kind: Literal["record", "voicemail"]
    record_id: str | None
    endpoint_user: str | None
    url: str | None
    custom_url: str | None
    at: Instant | None


class CallMilestone(Model, tag_field="kind", tag="call"):
    """A moment of the call as CCC recorded it, in time order with the page's events and actions."""

    at: Instant
    event: Literal["started", "queued", "ringing", "answered", "leg_ended", "ended"]
    leg: int | None
    agent_email: str | None
    detail: Annotated[str, Meta(description="The end status, for leg_ended and ended")] | None


class SessionDetail(Session):
    timeline: list[TimelineEvent | TimelineAction]
    call: Annotated[Call, Meta(description="The CCC record of the joined leg")] | None


class CallDetail(Call):
    legs: list[CallLeg]
    recordings: list[Recording]
    sessions: Annotated[list[Session], Meta(description="The joined page sessions")]
    timeline: list[CallMilestone | TimelineEvent | TimelineAction]


class CallPage(Model):
    calls: list[Call]
    next_cursor: str | None


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
    placed: int
    answered: int


class OutboundPlaced(Model):
    """callOut requests matched to the CCC outbound record they started (docs/metrics.md)."""

    call_outs: int
    placed: Annotated[int, Meta(description="Matched to an outbound call record")]
    answered: Annotated[int, Meta(description="Of those, the customer answered")]
    talk_s: Annotated[int, Meta(description="Total talk time of the answered ones")]
    mean_talk_s: Seconds | None
    end_status: Annotated[dict[str, int], Meta(description="Placed calls per CCC end status")]


class OutboundReport(Model):
    from_: Instant = msgspec.field(name="from")
    to: Instant
    call_outs: int
    followed_by_session: int
    follow_rate: Share | None
    follow_window_s: int
    by_agent: list[AgentCallOuts]
    placed: OutboundPlaced


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


class CoverageCounts(Model):
    """Did the pop-up see every answered call (docs/coverage.md)."""

    answered_legs: Annotated[int, Meta(description="Agent legs answered (AcceptTimestamp) in the range")]
    seen: Annotated[int, Meta(description="Answered legs joined to a page session")]
    unseen: Annotated[int, Meta(description="Answered legs no page session is a candidate for")]
    ambiguous: Annotated[int, Meta(description="Answered legs with two equally near candidates: not guessed")]
    page_only: Annotated[
        int,
        Meta(description="Page sessions offered in the range, covered by the app's records, no joined leg"),
    ]


class CoverageAgent(Model):
    agent_email: str | None
    answered_legs: int
    seen: int
    unseen: int
    ambiguous: int
    page_only: int


class UnseenLeg(Model):
    """An answered agent leg that no page session showed."""

    session_id: Annotated[str, Meta(description="CCC's SessionId")]
    sdk_app_id: int
    leg: Annotated[int, Meta(description="The leg's index in the record (ServeParticipants' order)")]
    agent_email: str | None
    channel: str
    accept_at: Instant


class Coverage(Model):
    from_: Instant = msgspec.field(name="from")
    to: Instant
    totals: CoverageCounts
    by_agent: list[CoverageAgent]
    unseen: Annotated[list[UnseenLeg], Meta(description="Newest first, a keyset page")]
    next_cursor: str | None


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


# The admin API (docs/api.md, "Administration"): its request bodies and answers.

SiteName = Annotated[str, Meta(min_length=1, max_length=200)]
OriginText = Annotated[str, Meta(description="scheme://host[:port], e.g. https://crm.example.com")]


class SiteCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /v1/admin/sites."""

    name: SiteName
    origins: Annotated[list[OriginText], Meta(min_length=1)]


class SiteChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /v1/admin/sites/{name}: ``replace`` the origins, or ``add`` and ``remove`` some."""

    add: list[OriginText] | None = None
    remove: list[OriginText] | None = None
    replace: list[OriginText] | None = None


class AdminSite(Model):
    """A site and its public site key (it can only write events: embed it in the page)."""

    name: str
    site_key: str
    origins: list[str]
    created_at: Instant


class AdminSites(Model):
    sites: list[AdminSite]


class KeyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /v1/admin/keys. Without ``sites`` the key sees every site (an unscoped admin only)."""

    scope: Literal["read", "admin"]
    sites: list[SiteName] | None = None
    name: Annotated[str, Meta(max_length=200)] | None = None
    expires: Annotated[str, Meta(description="A lifetime: 36h, 90d, 12w")] | None = None


class AdminKey(Model):
    """A secret key, never its secret. ``sites`` null: every site."""

    key_id: str
    scope: Literal["read", "admin"]
    name: str | None
    sites: list[str] | None
    created_at: Instant
    expires_at: Instant | None
    last_used_at: Annotated[str | None, Meta(description="To the minute: written at most once a minute")]
    revoked_at: Instant | None


class AdminKeys(Model):
    keys: list[AdminKey]


class CreatedKey(AdminKey):
    """A new key with its secret, shown this once (only its hash is stored)."""

    secret: str


class CccAppCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /v1/admin/ccc-apps."""

    sdk_app_id: Annotated[int, Meta(ge=1)]
    auth: Literal["basic", "oauth2", "none"]
    sites: list[SiteName] | None = None


class AdminCccApp(Model):
    sdk_app_id: int
    auth: Literal["basic", "oauth2", "none"]
    client_id: Annotated[str | None, Meta(description="The basic user name or the OAuth2 client id")]
    sites: list[str]
    created_at: Instant


class AdminCccApps(Model):
    apps: list[AdminCccApp]


class CccConsole(Model):
    """What to type into the CCC console's Data Push settings; null where the mode has no such field, the
    URLs null unless CALLTRAIL_PUBLIC_URL is set."""

    sdk_app_id: int
    push_path: str
    push_url: str | None
    auth: Literal["basic", "oauth2", "none"]
    username: str | None
    password: str | None
    client_id: str | None
    client_secret: str | None
    token_path: str | None
    token_url: str | None


class CreatedCccApp(AdminCccApp):
    """A new CCC app with its console settings, the secret shown this once."""

    console: CccConsole


class AccessEntry(Model):
    """One entry of the access log."""

    id: int
    at: Instant
    key_id: Annotated[str | None, Meta(description="The key's public id; null for the CLI")]
    kind: Literal["read", "export", "admin"]
    action: str
    method: str | None
    path: str | None
    params: dict[str, Any]
    status: int | None
    rows: int | None
    client_ip: str | None


class AccessLogPage(Model):
    entries: list[AccessEntry]
    next_cursor: str | None


COMPONENTS: tuple[type[msgspec.Struct], ...] = (
    Error, Session, SessionDetail, SessionPage, Call, CallDetail, CallPage, Action, AuditPage, Figures,
    InboundReport, CallsReport, AgentRow, AgentsReport, CardsReport, OutboundReport, Live, Quality, Coverage,
    EventBatch, EventResults, CccPushBody,
    CccAnswer, CccTokenRequest, CccToken, OAuthError,
    SiteCreate, SiteChange, AdminSite, AdminSites, KeyCreate, AdminKey, AdminKeys, CreatedKey, CccAppCreate,
    AdminCccApp, AdminCccApps, CreatedCccApp, AccessEntry, AccessLogPage,
)  # fmt: skip


def field_names(model: type[msgspec.Struct]) -> tuple[str, ...]:
    """The model's fields by their wire names, in order: a record's keys and an export's columns."""
    return tuple(f.encode_name for f in msgspec.structs.fields(model))
