"""Call records and their agents' legs, projected from the raw CCC log; the raw log names each record's
session

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

Raw records stored before this revision have no session yet: ``calltrail rebuild`` reads them again and
projects them (the CHANGELOG says so).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ccc_raw_records") as batch:
        batch.add_column(sa.Column("session_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("problem", sa.Text(), nullable=True))
    op.create_index(
        "ix_ccc_raw_records_sdk_app_id_session_id", "ccc_raw_records", ["sdk_app_id", "session_id"]
    )
    op.create_table(
        "call_records",
        sa.Column("sdk_app_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("direction", sa.String(8), nullable=True),
        sa.Column("caller", sa.String(128), nullable=True),
        sa.Column("callee", sa.String(128), nullable=True),
        sa.Column("customer", sa.String(200), nullable=True),
        sa.Column("agent_email", sa.String(320), nullable=True),
        sa.Column("start_at", sa.BigInteger(), nullable=True),
        sa.Column("queued_at", sa.BigInteger(), nullable=True),
        sa.Column("ring_at", sa.BigInteger(), nullable=True),
        sa.Column("accept_at", sa.BigInteger(), nullable=True),
        sa.Column("end_at", sa.BigInteger(), nullable=True),
        sa.Column("record_at", sa.BigInteger(), nullable=True),
        sa.Column("ivr_s", sa.Integer(), nullable=True),
        sa.Column("queue_s", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("end_status", sa.String(64), nullable=True),
        sa.Column("end_status_code", sa.Integer(), nullable=True),
        sa.Column("hung_up_by", sa.String(8), nullable=True),
        sa.Column("skill_group_id", sa.BigInteger(), nullable=True),
        sa.Column("skill_group_name", sa.String(200), nullable=True),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("ivr_keys", sa.Text(), nullable=False),
        sa.Column("satisfaction", sa.Text(), nullable=False),
        sa.Column("record_ids", sa.Text(), nullable=False),
        sa.Column("record_urls", sa.Text(), nullable=False),
        sa.Column("recordings", sa.Text(), nullable=False),
        sa.Column("uui", sa.Text(), nullable=True),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("raw_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("sort_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sdk_app_id", "session_id", name=op.f("pk_call_records")),
    )
    op.create_index(
        "ix_call_records_sort_at_sdk_app_id_session_id",
        "call_records",
        ["sort_at", "sdk_app_id", "session_id"],
    )
    op.create_index("ix_call_records_sdk_app_id_sort_at", "call_records", ["sdk_app_id", "sort_at"])
    op.create_index("ix_call_records_agent_email_sort_at", "call_records", ["agent_email", "sort_at"])
    op.create_table(
        "call_legs",
        sa.Column("sdk_app_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("leg", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("customer", sa.String(200), nullable=True),
        sa.Column("agent_email", sa.String(320), nullable=True),
        sa.Column("type", sa.String(32), nullable=True),
        sa.Column("start_at", sa.BigInteger(), nullable=True),
        sa.Column("ring_at", sa.BigInteger(), nullable=True),
        sa.Column("accept_at", sa.BigInteger(), nullable=True),
        sa.Column("end_at", sa.BigInteger(), nullable=True),
        sa.Column("end_status", sa.String(64), nullable=True),
        sa.Column("skill_group_id", sa.BigInteger(), nullable=True),
        sa.Column("skill_group_name", sa.String(200), nullable=True),
        sa.Column("transfer_from", sa.String(320), nullable=True),
        sa.Column("transfer_to", sa.String(320), nullable=True),
        sa.Column("record_id", sa.String(128), nullable=True),
        sa.Column("record_url", sa.Text(), nullable=True),
        sa.Column("join_at", sa.BigInteger(), nullable=True),
        sa.Column("page_session_id", sa.String(36), nullable=True),
        sa.Column("join_state", sa.String(10), nullable=True),
        sa.Column("join_offset_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("join_state IN ('joined', 'ambiguous')", name=op.f("ck_call_legs_join_state")),
        sa.PrimaryKeyConstraint("sdk_app_id", "session_id", "leg", name=op.f("pk_call_legs")),
    )
    op.create_index(
        "ix_call_legs_sdk_app_id_agent_email_join_at", "call_legs", ["sdk_app_id", "agent_email", "join_at"]
    )
    op.create_index("ix_call_legs_page_session_id", "call_legs", ["page_session_id"])
    op.create_index("ix_call_legs_agent_email_accept_at", "call_legs", ["agent_email", "accept_at"])


def downgrade() -> None:
    op.drop_index("ix_call_legs_agent_email_accept_at", table_name="call_legs")
    op.drop_index("ix_call_legs_page_session_id", table_name="call_legs")
    op.drop_index("ix_call_legs_sdk_app_id_agent_email_join_at", table_name="call_legs")
    op.drop_table("call_legs")
    op.drop_index("ix_call_records_agent_email_sort_at", table_name="call_records")
    op.drop_index("ix_call_records_sdk_app_id_sort_at", table_name="call_records")
    op.drop_index("ix_call_records_sort_at_sdk_app_id_session_id", table_name="call_records")
    op.drop_table("call_records")
    op.drop_index("ix_ccc_raw_records_sdk_app_id_session_id", table_name="ccc_raw_records")
    with op.batch_alter_table("ccc_raw_records") as batch:
        batch.drop_column("problem")
        batch.drop_column("session_id")
