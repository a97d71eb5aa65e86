"""quarantined events and projection failures: stored rows no read path may trip over, and events whose
projection failed, kept visible and retryable

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantined_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("page_id", sa.String(36), nullable=False),
        sa.Column("page_url", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("client_ts", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("event_at", sa.BigInteger(), nullable=False),
        sa.Column("skew_ms", sa.BigInteger(), nullable=False),
        sa.Column("ts_flag", sa.String(16), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("quarantined_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_quarantined_events_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_events")),
    )
    op.create_index(
        op.f("ix_quarantined_events_site_id_event_at"), "quarantined_events", ["site_id", "event_at"]
    )
    op.create_table(
        "projection_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projection_failures")),
    )


def downgrade() -> None:
    # Quarantined events go back into the log they came from; `calltrail rebuild` then derives from them.
    op.execute(
        "INSERT INTO events (id, site_id, event_id, page_id, page_url, seq, type, client_ts, sent_at, "
        "received_at, event_at, skew_ms, ts_flag, raw) SELECT id, site_id, event_id, page_id, page_url, seq, "
        "type, client_ts, sent_at, received_at, event_at, skew_ms, ts_flag, raw FROM quarantined_events"
    )
    op.drop_index(op.f("ix_quarantined_events_site_id_event_at"), table_name="quarantined_events")
    op.drop_table("quarantined_events")
    op.drop_table("projection_failures")
