"""call sessions: hash events, sessions, actions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "actions",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("agent_email", sa.String(length=320), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("page_id", sa.String(length=36), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_actions_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", "id", name=op.f("pk_actions")),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index("ix_actions_session_id", ["session_id"], unique=False)
        batch_op.create_index("ix_actions_site_id_at", ["site_id", "at"], unique=False)
        batch_op.create_index("ix_actions_site_id_page_id", ["site_id", "page_id"], unique=False)

    op.create_table(
        "hash_events",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("page_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("stream", sa.String(length=32), nullable=True),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("sdk_app_id", sa.String(length=200), nullable=True),
        sa.Column("agent_email", sa.String(length=320), nullable=True),
        sa.Column("agent_mobile", sa.String(length=64), nullable=True),
        sa.Column("agent_nickname", sa.String(length=200), nullable=True),
        sa.Column("agent_role_id", sa.String(length=200), nullable=True),
        sa.Column("customer_mobile", sa.String(length=64), nullable=True),
        sa.Column("customer_user_id", sa.String(length=200), nullable=True),
        sa.Column("customer_nickname", sa.String(length=200), nullable=True),
        sa.Column("customer_avatar", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_hash_events_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", "event_id", name=op.f("pk_hash_events")),
    )
    with op.batch_alter_table("hash_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hash_events_site_id_page_id_seq", ["site_id", "page_id", "seq"], unique=False
        )
        batch_op.create_index("ix_hash_events_stream_event_at", ["stream", "event_at"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("sdk_app_id", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("agent_email", sa.String(length=320), nullable=True),
        sa.Column("agent_mobile", sa.String(length=64), nullable=True),
        sa.Column("agent_nickname", sa.String(length=200), nullable=True),
        sa.Column("agent_role_id", sa.String(length=200), nullable=True),
        sa.Column("customer_mobile", sa.String(length=64), nullable=True),
        sa.Column("customer_user_id", sa.String(length=200), nullable=True),
        sa.Column("customer_nickname", sa.String(length=200), nullable=True),
        sa.Column("customer_avatar", sa.Text(), nullable=True),
        sa.Column("offered_at", sa.DateTime(), nullable=True),
        sa.Column("connected_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ring_s", sa.Float(), nullable=True),
        sa.Column("talk_s", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("end_source", sa.String(length=16), nullable=True),
        sa.Column("observed_from", sa.SmallInteger(), nullable=False),
        sa.Column("cards_sent", sa.Integer(), nullable=False),
        sa.Column("call_outs", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("duplicate_count", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("last_event_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_sessions_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_site_id_started_at", ["site_id", "started_at"], unique=False)
        batch_op.create_index("ix_sessions_stream", ["stream"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_stream")
        batch_op.drop_index("ix_sessions_site_id_started_at")

    op.drop_table("sessions")
    with op.batch_alter_table("hash_events", schema=None) as batch_op:
        batch_op.drop_index("ix_hash_events_stream_event_at")
        batch_op.drop_index("ix_hash_events_site_id_page_id_seq")

    op.drop_table("hash_events")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index("ix_actions_site_id_page_id")
        batch_op.drop_index("ix_actions_site_id_at")
        batch_op.drop_index("ix_actions_session_id")

    op.drop_table("actions")
