"""Rollups of the calls report: call_rollups and their marks, call_rollup_marks

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

Every hour of the call records already stored is marked dirty, so the first report (or ``calltrail
rollups``) builds them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every hour and day of the call records stored before this revision, dirty.
MARK_HISTORY = [
    "INSERT INTO call_rollup_marks (sdk_app_id, span, start_ms, gen, built_gen) "
    "SELECT DISTINCT sdk_app_id, 'hour', start_at - start_at % 3600000, 1, 0 "
    "FROM call_records WHERE start_at IS NOT NULL",
    "INSERT INTO call_rollup_marks (sdk_app_id, span, start_ms, gen, built_gen) "
    "SELECT DISTINCT sdk_app_id, 'day', start_at - start_at % 86400000, 1, 0 "
    "FROM call_records WHERE start_at IS NOT NULL",
]


def upgrade() -> None:
    op.create_table(
        "call_rollups",
        sa.Column("span", sa.String(8), nullable=False),
        sa.Column("sdk_app_id", sa.BigInteger(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("skill_group_id", sa.BigInteger(), nullable=False),
        sa.Column("skill_group_name", sa.String(200), nullable=True),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "offered",
                "answered",
                "abandoned_ivr",
                "abandoned_queue",
                "abandoned_ringing",
                "no_agent",
                "after_hours",
                "queued",
                "transferred",
                "hung_up_user",
                "hung_up_seat",
                "hung_up_system",
                "queue_count",
            )
        ),
        sa.Column("queue_sum", sa.BigInteger(), nullable=False),
        sa.Column("answered_queued", sa.Integer(), nullable=False),
        sa.Column("answered_queue_sum", sa.BigInteger(), nullable=False),
        sa.Column("queue_max", sa.BigInteger(), nullable=True),
        sa.Column("queue_hist", sa.LargeBinary(), nullable=False),
        sa.Column("answered_queue_hist", sa.LargeBinary(), nullable=False),
        sa.Column("satisfaction", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "span", "sdk_app_id", "start_ms", "channel", "skill_group_id", name=op.f("pk_call_rollups")
        ),
    )
    op.create_index(
        "ix_call_rollups_span_channel_skill_group_id_start_ms",
        "call_rollups",
        ["span", "channel", "skill_group_id", "start_ms"],
    )
    op.create_table(
        "call_rollup_marks",
        sa.Column("sdk_app_id", sa.BigInteger(), nullable=False),
        sa.Column("span", sa.String(8), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("gen", sa.BigInteger(), nullable=False),
        sa.Column("built_gen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sdk_app_id", "span", "start_ms", name=op.f("pk_call_rollup_marks")),
    )
    op.create_index("ix_call_rollup_marks_span_start_ms", "call_rollup_marks", ["span", "start_ms"])
    for statement in MARK_HISTORY:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_call_rollup_marks_span_start_ms", table_name="call_rollup_marks")
    op.drop_table("call_rollup_marks")
    op.drop_index("ix_call_rollups_span_channel_skill_group_id_start_ms", table_name="call_rollups")
    op.drop_table("call_rollups")
