"""query API: rollups, their marks, and indexes for lists and reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_rollup",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("span", sa.String(length=8), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("agent_email", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("agent_nickname", sa.String(length=200), nullable=True),
        sa.Column("offered", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("not_answered", sa.Integer(), nullable=False),
        sa.Column("talk_count", sa.Integer(), nullable=False),
        sa.Column("talk_total", sa.Float(), nullable=False),
        sa.Column("cards_sent", sa.Integer(), nullable=False),
        sa.Column("call_outs", sa.Integer(), nullable=False),
        sa.Column("peak_concurrent_chats", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_agent_rollup_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "site_id", "span", "start_ms", "agent_email", "channel", name=op.f("pk_agent_rollup")
        ),
    )
    with op.batch_alter_table("agent_rollup", schema=None) as batch_op:
        batch_op.create_index("ix_agent_rollup_span_start_ms", ["span", "start_ms"], unique=False)

    op.create_table(
        "inbound_rollup",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("span", sa.String(length=8), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("offered", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("not_answered", sa.Integer(), nullable=False),
        sa.Column("talk_count", sa.Integer(), nullable=False),
        sa.Column("ring_sum", sa.Float(), nullable=False),
        sa.Column("ring_max", sa.Float(), nullable=True),
        sa.Column("talk_sum", sa.Float(), nullable=False),
        sa.Column("talk_max", sa.Float(), nullable=True),
        sa.Column("ring_hist", sa.LargeBinary(), nullable=False),
        sa.Column("talk_hist", sa.LargeBinary(), nullable=False),
        sa.Column("abandon_hist", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_inbound_rollup_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", "span", "start_ms", "channel", name=op.f("pk_inbound_rollup")),
    )
    with op.batch_alter_table("inbound_rollup", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_rollup_span_start_ms", ["span", "start_ms"], unique=False)

    op.create_table(
        "rollup_marks",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("span", sa.String(length=8), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("gen", sa.BigInteger(), nullable=False),
        sa.Column("built_gen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_rollup_marks_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", "span", "start_ms", name=op.f("pk_rollup_marks")),
    )
    with op.batch_alter_table("rollup_marks", schema=None) as batch_op:
        batch_op.create_index("ix_rollup_marks_span_start_ms", ["span", "start_ms"], unique=False)

    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_actions_agent_email_at_site_id_id", ["agent_email", "at", "site_id", "id"], unique=False
        )
        batch_op.create_index("ix_actions_at_site_id_id", ["at", "site_id", "id"], unique=False)

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sessions_agent_email_started_at_id", ["agent_email", "started_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_sessions_customer_mobile_started_at", ["customer_mobile", "started_at"], unique=False
        )
        batch_op.create_index(
            "ix_sessions_customer_user_id_started_at", ["customer_user_id", "started_at"], unique=False
        )
        batch_op.create_index(
            "ix_sessions_open",
            ["last_event_at"],
            unique=False,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.create_index("ix_sessions_started_at_id", ["started_at", "id"], unique=False)

    # Sessions stored before this revision: mark every hour and day of each site's history dirty, so the
    # first report builds the rollups it reads.
    bind = op.get_bind()
    spans = bind.execute(
        sa.text(
            "SELECT site_id, MIN(lo), MAX(hi) FROM ("
            " SELECT site_id, started_at AS lo, last_event_at AS hi FROM sessions"
            " UNION ALL SELECT site_id, at, at FROM actions) AS times GROUP BY site_id"
        )
    ).all()
    marks = []
    for site_id, lo, hi in spans:
        for span, width in (("hour", 3_600_000), ("day", 86_400_000)):
            start = lo - lo % width
            while start <= hi:
                marks.append({"site_id": site_id, "span": span, "start_ms": start})
                start += width
    if marks:
        bind.execute(
            sa.text(
                "INSERT INTO rollup_marks (site_id, span, start_ms, gen, built_gen)"
                " VALUES (:site_id, :span, :start_ms, 1, 0)"
            ),
            marks,
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_started_at_id")
        batch_op.drop_index(
            "ix_sessions_open",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index("ix_sessions_customer_user_id_started_at")
        batch_op.drop_index("ix_sessions_customer_mobile_started_at")
        batch_op.drop_index("ix_sessions_agent_email_started_at_id")

    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index("ix_actions_at_site_id_id")
        batch_op.drop_index("ix_actions_agent_email_at_site_id_id")

    with op.batch_alter_table("rollup_marks", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_marks_span_start_ms")

    op.drop_table("rollup_marks")
    with op.batch_alter_table("inbound_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_rollup_span_start_ms")

    op.drop_table("inbound_rollup")
    with op.batch_alter_table("agent_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_rollup_span_start_ms")

    op.drop_table("agent_rollup")
