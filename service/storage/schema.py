"""The tables. Alembic (``migrations/``) owns how they come to be; this module is what the code expects."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from service.storage.types import BigIntPK, UtcDateTime

# Deterministic constraint names let SQLite batch migrations and downgrades address constraints by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("site_key", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
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
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    CheckConstraint("scope IN ('read', 'admin')", name="scope"),
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
)
