"""The tables. Alembic (``migrations/``) owns how they come to be; this module is what the code expects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from service.storage.types import BigIntPK

# Deterministic constraint names let SQLite batch migrations and downgrades address constraints by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Every instant in every table is integer milliseconds since the epoch (UTC), BIGINT on both databases;
# service/domain/instants.py converts them to datetimes and text at the edges.

sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("site_key", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

site_origins = Table(
    "site_origins",
    metadata,
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("origin", String(255), primary_key=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(16), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scope", String(8), nullable=False),
    Column("name", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    # Site scoping (migration 0013): a key with all_sites false sees only the sites in api_key_sites, and
    # nothing once they are all deleted (it never falls back to every site).
    Column("all_sites", Boolean, nullable=False, server_default=text("true")),
    Column("expires_at", BigInteger, nullable=True),
    # Written at most once a minute per key (admin/registry.py), so reads do not each write.
    Column("last_used_at", BigInteger, nullable=True),
    CheckConstraint("scope IN ('read', 'admin')", name="scope"),
)

api_key_sites = Table(
    "api_key_sites",
    metadata,
    Column("key_id", Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_api_key_sites_site_id", "site_id"),
)

# Who read customer data or administered what, when and from where (docs/security.md, "The access log").
# `key_id` is the key's public id (ctk_<key_id>_...), NULL for the CLI; `params` the query parameters (or the
# admin action's inputs), never a secret; `rows` the row count where it was cheap to know.
access_log = Table(
    "access_log",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=True),
    Column("kind", String(8), nullable=False),
    Column("action", String(64), nullable=False),
    Column("method", String(8), nullable=True),
    Column("path", String(500), nullable=True),
    Column("params", Text, nullable=False),
    Column("status", SmallInteger, nullable=True),
    Column("rows", Integer, nullable=True),
    Column("client_ip", String(64), nullable=True),
    CheckConstraint("kind IN ('read', 'export', 'admin')", name="kind"),
    Index("ix_access_log_at_id", "at", "id"),
    Index("ix_access_log_key_id_at_id", "key_id", "at", "id"),
)

# One row per accepted event, verbatim in `raw`. All times are integer milliseconds since the epoch:
# client_ts and sent_at by the browser's clock, received_at by ours, event_at the corrected time.
events = Table(
    "events",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("page_id", String(36), nullable=False),
    Column("page_url", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("client_ts", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("event_at", BigInteger, nullable=False),
    Column("skew_ms", BigInteger, nullable=False),
    Column("ts_flag", String(16), nullable=True),
    Column("raw", Text, nullable=False),
    UniqueConstraint("site_id", "event_id"),
    Index("ix_events_site_id_event_at", "site_id", "event_at"),
    Index("ix_events_site_id_page_id_seq", "site_id", "page_id", "seq"),
    # Never reuse an id (SQLite would give a deleted newest id again): a sealed period's ids stay its own.
    sqlite_autoincrement=True,
)


# Events stored but not yet projected (sessions, actions, rollups), by events.id. The writer adds to it in
# the transaction that stores the events; the projector removes rows in the transaction that projects them,
# so "no row left up to id N" means everything derived from events up to N is committed. No foreign key:
# a row whose event is gone (a purge, a deleted site) is simply dropped when it comes up.
projection_queue = Table(
    "projection_queue",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
)


# Stored events kept out of every read path (`calltrail quarantine`): rows stored before a limit of the
# protocol existed that break it (nesting deeper than the read paths can embed). The bytes are kept as they
# were, with the reason; the rest of the log and everything derived no longer includes them.
quarantined_events = Table(
    "quarantined_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("page_id", String(36), nullable=False),
    Column("page_url", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("client_ts", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("event_at", BigInteger, nullable=False),
    Column("skew_ms", BigInteger, nullable=False),
    Column("ts_flag", String(16), nullable=True),
    Column("raw", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("quarantined_at", BigInteger, nullable=False),
    Index("ix_quarantined_events_site_id_event_at", "site_id", "event_at"),
)

# Stored events whose projection failed (a dead letter), by events.id: still in the raw log, missing from
# what is derived until `calltrail project --retry-failed` or `calltrail rebuild` projects them. No foreign
# key, like the queue: a row whose event is gone is dropped when it is retried.
projection_failures = Table(
    "projection_failures",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("site_id", Integer, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", BigInteger, nullable=False),  # ms since the epoch, of the last attempt
    Column("attempts", Integer, nullable=False),
)


def _call_columns() -> list[Column[Any]]:
    """What the CCC hash says of a call (its parameters, parsed), as hash events and sessions both keep it."""
    return [
        Column("channel", String(64), nullable=True),
        Column("sdk_app_id", String(200), nullable=True),
        Column("agent_email", String(320), nullable=True),
        Column("agent_mobile", String(64), nullable=True),
        Column("agent_nickname", String(200), nullable=True),
        Column("agent_role_id", String(200), nullable=True),
        Column("customer_mobile", String(64), nullable=True),
        Column("customer_user_id", String(200), nullable=True),
        Column("customer_nickname", String(200), nullable=True),
        Column("customer_avatar", Text, nullable=True),
    ]


# Derived from `events` (the projection); `calltrail rebuild` recreates all of it from the raw log.

# Every hash event, parsed. `stream` and `session_id` are set for those that carry a status.
hash_events = Table(
    "hash_events",
    metadata,
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("page_id", String(36), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_at", BigInteger, nullable=False),
    Column("status", SmallInteger, nullable=True),
    Column("stream", String(32), nullable=True),
    Column("session_id", String(36), nullable=True),
    *_call_columns(),
    Index("ix_hash_events_stream_event_at", "stream", "event_at"),
    Index("ix_hash_events_site_id_page_id_seq", "site_id", "page_id", "seq"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("stream", String(32), nullable=False),
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    *_call_columns(),
    Column("offered_at", BigInteger, nullable=True),
    Column("connected_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("ring_s", Float, nullable=True),
    Column("talk_s", Float, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("end_source", String(16), nullable=True),
    Column("observed_from", SmallInteger, nullable=False),
    Column("cards_sent", Integer, nullable=False),
    Column("call_outs", Integer, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("duplicate_count", Integer, nullable=False),
    # When the session was first and last heard of (ms): the order of lists, and the read-time timeout.
    Column("started_at", BigInteger, nullable=False),
    Column("last_event_at", BigInteger, nullable=False),
    Index("ix_sessions_site_id_started_at", "site_id", "started_at"),
    Index("ix_sessions_stream", "stream"),
    # For the query API: lists and reports by time, by agent, by customer; open sessions for /v1/live.
    Index("ix_sessions_started_at_id", "started_at", "id"),
    Index("ix_sessions_agent_email_started_at_id", "agent_email", "started_at", "id"),
    Index("ix_sessions_customer_mobile_started_at", "customer_mobile", "started_at"),
    Index("ix_sessions_customer_user_id_started_at", "customer_user_id", "started_at"),
    # Coverage (reports/coverage.py): an app's page sessions offered in a range (migration 0012).
    Index("ix_sessions_sdk_app_id_offered_at", "sdk_app_id", "offered_at"),
    Index(
        "ix_sessions_open",
        "last_event_at",
        sqlite_where=text("ended_at IS NULL"),
        postgresql_where=text("ended_at IS NULL"),
    ),
)

actions = Table(
    "actions",
    metadata,
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("agent_email", String(320), nullable=True),
    Column("action", String(64), nullable=False),
    Column("session_id", String(36), nullable=True),
    Column("page_id", String(36), nullable=False),
    Column("details", Text, nullable=False),
    Index("ix_actions_site_id_at", "site_id", "at"),
    Index("ix_actions_session_id", "session_id"),
    Index("ix_actions_site_id_page_id", "site_id", "page_id"),
    Index("ix_actions_at_site_id_id", "at", "site_id", "id"),
    Index("ix_actions_agent_email_at_site_id_id", "agent_email", "at", "site_id", "id"),
)

# Rollups: sums of sessions and actions by time, so a month's report reads thousands of rows, not millions.
# The projection bumps a mark's `gen` whenever it writes a session or an action in the mark's span; a
# reader rebuilds a span whose `gen` is past `built_gen` before using its rows (projection/rollups.py).
rollup_marks = Table(
    "rollup_marks",
    metadata,
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("span", String(8), primary_key=True),  # "hour": inbound and agent rollups; "day": agent rollup
    Column("start_ms", BigInteger, primary_key=True),
    Column("gen", BigInteger, nullable=False),
    Column("built_gen", BigInteger, nullable=False),
    Index("ix_rollup_marks_span_start_ms", "span", "start_ms"),
)

inbound_rollup = Table(
    "inbound_rollup",
    metadata,
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    # A UTC quarter hour, by the sessions' offer time; and, for channel "*" only, each UTC hour as well, so
    # that a month by hour or by day reads a quarter of the rows.
    Column("span", String(8), primary_key=True),  # "quarter" or "hour"
    Column("start_ms", BigInteger, primary_key=True),
    Column("channel", String(64), primary_key=True),  # "*": all channels together, what most reports read
    Column("offered", Integer, nullable=False),
    Column("answered", Integer, nullable=False),
    Column("not_answered", Integer, nullable=False),
    Column("talk_count", Integer, nullable=False),
    Column("ring_sum", Float, nullable=False),
    Column("ring_max", Float, nullable=True),
    Column("talk_sum", Float, nullable=False),
    Column("talk_max", Float, nullable=True),
    Column("ring_hist", LargeBinary, nullable=False),
    Column("talk_hist", LargeBinary, nullable=False),
    Column("abandon_hist", LargeBinary, nullable=False),
    Index("ix_inbound_rollup_span_start_ms", "span", "start_ms"),
)

# Per UTC hour and per UTC day (the sum of its hours), agent and channel. Channel "" holds actions with no
# session; channel "*" only the peak of concurrent chats across all chat channels (a peak does not add up
# over channels, but the peak of a day is the highest of its hours').
agent_rollup = Table(
    "agent_rollup",
    metadata,
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("span", String(8), primary_key=True),
    Column("start_ms", BigInteger, primary_key=True),
    Column("agent_email", String(320), primary_key=True),  # "" when the hash named no agent
    Column("channel", String(64), primary_key=True),
    Column("agent_nickname", String(200), nullable=True),
    Column("offered", Integer, nullable=False),
    Column("answered", Integer, nullable=False),
    Column("not_answered", Integer, nullable=False),
    Column("talk_count", Integer, nullable=False),
    Column("talk_total", Float, nullable=False),
    Column("cards_sent", Integer, nullable=False),
    Column("call_outs", Integer, nullable=False),
    Column("peak_concurrent_chats", Integer, nullable=False),
    Index("ix_agent_rollup_span_start_ms", "span", "start_ms"),
)


# CCC apps (Tencent Cloud Contact Center instances, by their SdkAppId) that may push call records here
# (service/ccc/). `client_id` is the basic-auth user name or the OAuth2 client id: it is not secret, and it
# is what finds the app from a credential, so it is unique. Only SHA-256 of the secret is kept, as for API
# keys. An app with `auth = 'none'` has neither. Times are ms since the epoch.
ccc_apps = Table(
    "ccc_apps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sdk_app_id", BigInteger, nullable=False, unique=True),
    Column("auth", String(8), nullable=False),
    Column("client_id", String(64), nullable=True, unique=True),
    Column("secret_hash", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    CheckConstraint("auth IN ('basic', 'oauth2', 'none')", name="auth"),
    CheckConstraint(
        "(auth = 'none' AND client_id IS NULL AND secret_hash IS NULL) OR "
        "(auth <> 'none' AND client_id IS NOT NULL AND secret_hash IS NOT NULL)",
        name="credentials",
    ),
)

# The sites an app's records belong to (the pop-up pages of the same contact center).
ccc_app_sites = Table(
    "ccc_app_sites",
    metadata,
    Column("app_id", Integer, ForeignKey("ccc_apps.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", Integer, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_ccc_app_sites_site_id", "site_id"),
)

# OAuth2 access tokens issued to apps (client-credentials grant), by SHA-256 of the token: the token is 256
# random bits, so its digest can be looked up directly, and a copy of the table grants nothing.
ccc_tokens = Table(
    "ccc_tokens",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("app_id", Integer, ForeignKey("ccc_apps.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_ccc_tokens_app_id", "app_id"),
)

# Every CCC record as received, verbatim: each Data Push request (`source = 'push'`) and, later, each record
# pulled from the CCC API (`'pull'`). `action` and `version` are the push URL's query parameters as given
# (an unknown action is kept too), `push_uuid` its X-TCCC-PUSH-UUID header: unique per app, so a retried
# push is stored once; pulls have none (NULLs never conflict). No foreign key to `ccc_apps`: the log
# outlives an app's registration. Credentials and the Authorization header are never stored.
ccc_raw_records = Table(
    "ccc_raw_records",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("sdk_app_id", BigInteger, nullable=False),
    Column("source", String(8), nullable=False),
    Column("action", String(64), nullable=True),
    Column("version", String(16), nullable=True),
    Column("push_uuid", String(128), nullable=True),
    Column("received_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    # The session the record is of (its SessionId), or NULL with `problem` saying why it cannot be read.
    Column("session_id", String(128), nullable=True),
    Column("problem", Text, nullable=True),
    UniqueConstraint("sdk_app_id", "push_uuid"),
    CheckConstraint("source IN ('push', 'pull')", name="source"),
    Index("ix_ccc_raw_records_sdk_app_id_received_at", "sdk_app_id", "received_at"),
    Index("ix_ccc_raw_records_sdk_app_id_session_id", "sdk_app_id", "session_id"),
    sqlite_autoincrement=True,
)

# The seal of the raw logs (`events`, `ccc_raw_records`; storage/seals.py, docs/security.md): a hash chain
# of entries, each a sealed *period* (the committed rows with ids first_id..last_id: their ids, leaf hashes
# and Merkle root) or a *removal* (rows a purge, quarantine, erasure or site removal deleted: their leaves
# are in `seal_removed`), hashed with the previous entry's hash and, with CALLTRAIL_SEAL_KEY, signed.
# `seq` is the chain's order; a second sealer of the same period fails on it (and on log, kind, first_id).
seals = Table(
    "seals",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(8), nullable=False),
    Column("log", String(32), nullable=False),
    Column("first_id", BigInteger, nullable=False),
    Column("last_id", BigInteger, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),
    Column("ids", LargeBinary, nullable=True),  # a period's row ids (domain/seal.py, pack_ids)
    Column("leaves", LargeBinary, nullable=True),  # a period's leaf hashes, 32 bytes each, in id order
    Column("reason", Text, nullable=True),  # a removal's: purge, quarantine, erasure, site removal
    Column("created_at", BigInteger, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(16), nullable=True),
    Column("signature", String(64), nullable=True),
    UniqueConstraint("log", "kind", "first_id"),
    CheckConstraint("kind IN ('period', 'removal')", name="kind"),
)

# The leaves of removed rows, by log and row id, and the removal entry (seals.seq) that accounts for them.
seal_removed = Table(
    "seal_removed",
    metadata,
    Column("log", String(32), primary_key=True),
    Column("row_id", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_seal_removed_seq", "seq"),
)

# One row per CCC session (SdkAppId, SessionId): the merge (domain/call_merge.py) of every raw record of it,
# kept up to date by projection/call_records.py and rebuilt from the raw log. Instants are epoch ms,
# durations whole seconds; sets (IVR keys, satisfaction, recordings, sources) are JSON text.
call_records = Table(
    "call_records",
    metadata,
    Column("sdk_app_id", BigInteger, primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Column("channel", String(8), nullable=False),
    Column("direction", String(8), nullable=True),
    Column("caller", String(128), nullable=True),
    Column("callee", String(128), nullable=True),
    Column("customer", String(200), nullable=True),
    Column("agent_email", String(320), nullable=True),
    Column("start_at", BigInteger, nullable=True),
    Column("queued_at", BigInteger, nullable=True),
    Column("ring_at", BigInteger, nullable=True),
    Column("accept_at", BigInteger, nullable=True),
    Column("end_at", BigInteger, nullable=True),
    Column("record_at", BigInteger, nullable=True),
    Column("ivr_s", Integer, nullable=True),
    Column("queue_s", Integer, nullable=True),
    Column("duration_s", Integer, nullable=True),
    Column("end_status", String(64), nullable=True),
    Column("end_status_code", Integer, nullable=True),
    Column("hung_up_by", String(8), nullable=True),
    Column("skill_group_id", BigInteger, nullable=True),
    Column("skill_group_name", String(200), nullable=True),
    Column("transfers", Integer, nullable=False),
    Column("ivr_keys", Text, nullable=False),
    Column("satisfaction", Text, nullable=False),
    Column("record_ids", Text, nullable=False),
    Column("record_urls", Text, nullable=False),
    Column("recordings", Text, nullable=False),
    Column("uui", Text, nullable=True),
    Column("sources", Text, nullable=False),
    Column("raw_count", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # What orders the list and the reports: the start, else the record's own time, else when it arrived.
    Column("sort_at", BigInteger, nullable=False),
    Index("ix_call_records_sort_at_sdk_app_id_session_id", "sort_at", "sdk_app_id", "session_id"),
    Index("ix_call_records_sdk_app_id_sort_at", "sdk_app_id", "sort_at"),
    Index("ix_call_records_agent_email_sort_at", "agent_email", "sort_at"),
)

# The agents' legs of a call record (ServeParticipants, in CCC's order), and each leg's join to the pop-up
# page session that showed it (projection/call_join.py): `page_session_id` when joined, `join_state`
# 'joined' or 'ambiguous' (two page sessions, or two legs, equally near: not guessed), NULL when no page
# session is a candidate. `customer` and `channel` repeat the record's, for the join's index.
call_legs = Table(
    "call_legs",
    metadata,
    Column("sdk_app_id", BigInteger, primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Column("leg", SmallInteger, primary_key=True),
    Column("channel", String(8), nullable=False),
    Column("customer", String(200), nullable=True),
    Column("agent_email", String(320), nullable=True),
    Column("type", String(32), nullable=True),
    Column("start_at", BigInteger, nullable=True),
    Column("ring_at", BigInteger, nullable=True),
    Column("accept_at", BigInteger, nullable=True),
    Column("end_at", BigInteger, nullable=True),
    Column("end_status", String(64), nullable=True),
    Column("skill_group_id", BigInteger, nullable=True),
    Column("skill_group_name", String(200), nullable=True),
    Column("transfer_from", String(320), nullable=True),
    Column("transfer_to", String(320), nullable=True),
    Column("record_id", String(128), nullable=True),
    Column("record_url", Text, nullable=True),
    # The leg's time for the join: its ring, else its start.
    Column("join_at", BigInteger, nullable=True),
    Column("page_session_id", String(36), nullable=True),
    Column("join_state", String(10), nullable=True),
    Column("join_offset_ms", BigInteger, nullable=True),
    CheckConstraint("join_state IN ('joined', 'ambiguous')", name="join_state"),
    Index("ix_call_legs_sdk_app_id_agent_email_join_at", "sdk_app_id", "agent_email", "join_at"),
    Index("ix_call_legs_page_session_id", "page_session_id"),
    Index("ix_call_legs_agent_email_accept_at", "agent_email", "accept_at"),
    # Coverage (reports/coverage.py): legs answered in a range, and its unseen ones in keyset order
    # (migration 0012).
    Index("ix_call_legs_accept_at_sdk_app_id_session_id_leg", "accept_at", "sdk_app_id", "session_id", "leg"),
)

# Where the pull from CCC's API (service/ccc/sync.py) stands, per app and action (`DescribeTelCdr`,
# `DescribeIMCdrs`). A manual range sync (`calltrail ccc sync`) keeps its range and the cursor to resume from
# (pull.PullCursor's text) while it runs, committed with each page's records; a completed one clears them.
# The scheduled reconciliation takes the lease (`lease_holder`, `lease_expires_at`) before it pulls, so that
# one worker process at a time does, and keeps the end of its last completed window. Times are ms since the
# epoch. Never a credential: the API key lives in the environment only.
ccc_sync_state = Table(
    "ccc_sync_state",
    metadata,
    Column("sdk_app_id", BigInteger, primary_key=True),
    Column("action", String(64), primary_key=True),
    Column("range_start_ms", BigInteger, nullable=True),
    Column("range_end_ms", BigInteger, nullable=True),
    Column("cursor", String(40), nullable=True),
    Column("lease_holder", String(128), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("scheduled_end_ms", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    CheckConstraint(
        "(cursor IS NULL AND range_start_ms IS NULL AND range_end_ms IS NULL) OR "
        "(cursor IS NOT NULL AND range_start_ms IS NOT NULL AND range_end_ms IS NOT NULL)",
        name="range_cursor",
    ),
)

# Rollups of the calls report (reports/calls.py, projection/call_rollups.py): partial sums of the inbound
# call records per UTC quarter hour by StartTimestamp (`span` "quarter"), UTC hour ("hour") and UTC day
# ("day", the sum of its hours), app, channel ("*": all) and queued skill group (-1: none; -2: all; day rows
# are per skill group only: they serve the per-skill-group figures, whose range needs no buckets). Counts
# and sums in columns, queue seconds as histograms (domain/histograms.py's bins, domain/call_metrics.py's
# encode_counts),
# satisfaction keys as a JSON object of counts (NULL: none). Not per agent: an agent's filter reads the
# agent's records on their index.
call_rollups = Table(
    "call_rollups",
    metadata,
    Column("span", String(8), primary_key=True),
    Column("sdk_app_id", BigInteger, primary_key=True),
    Column("start_ms", BigInteger, primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("skill_group_id", BigInteger, primary_key=True),
    Column("skill_group_name", String(200), nullable=True),
    Column("offered", Integer, nullable=False),
    Column("answered", Integer, nullable=False),
    Column("abandoned_ivr", Integer, nullable=False),
    Column("abandoned_queue", Integer, nullable=False),
    Column("abandoned_ringing", Integer, nullable=False),
    Column("no_agent", Integer, nullable=False),
    Column("after_hours", Integer, nullable=False),
    Column("queued", Integer, nullable=False),
    Column("transferred", Integer, nullable=False),
    Column("hung_up_user", Integer, nullable=False),
    Column("hung_up_seat", Integer, nullable=False),
    Column("hung_up_system", Integer, nullable=False),
    Column("queue_count", Integer, nullable=False),
    Column("queue_sum", BigInteger, nullable=False),
    Column("answered_queued", Integer, nullable=False),
    Column("answered_queue_sum", BigInteger, nullable=False),
    Column("queue_max", BigInteger, nullable=True),
    Column("queue_hist", LargeBinary, nullable=False),
    Column("answered_queue_hist", LargeBinary, nullable=False),
    Column("satisfaction", Text, nullable=True),
    # What a report reads: one span kind, the channel filtered on (or "*"), all or one skill group, by time.
    Index(
        "ix_call_rollups_span_channel_skill_group_id_start_ms",
        "span",
        "channel",
        "skill_group_id",
        "start_ms",
    ),
)

# One mark per app and UTC hour (and UTC day) of StartTimestamp: projection/call_records.py bumps `gen` when
# it writes or deletes a call record starting in that span; a report rebuilds the span's rollup rows while
# `gen` is past `built_gen` (projection/call_rollups.py), as rollup_marks do for the page-side rollups.
call_rollup_marks = Table(
    "call_rollup_marks",
    metadata,
    Column("sdk_app_id", BigInteger, primary_key=True),
    Column("span", String(8), primary_key=True),  # "hour", or "day" (the sum of its hours)
    Column("start_ms", BigInteger, primary_key=True),
    Column("gen", BigInteger, nullable=False),
    Column("built_gen", BigInteger, nullable=False),
    Index("ix_call_rollup_marks_span_start_ms", "span", "start_ms"),
)
