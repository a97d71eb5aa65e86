"""The state of the pull from CCC's API: a manual range sync's cursor, the scheduled sync's lease and mark

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ccc_sync_state",
        sa.Column("sdk_app_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("range_start_ms", sa.BigInteger(), nullable=True),
        sa.Column("range_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("cursor", sa.String(40), nullable=True),
        sa.Column("lease_holder", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("scheduled_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(cursor IS NULL AND range_start_ms IS NULL AND range_end_ms IS NULL) OR "
            "(cursor IS NOT NULL AND range_start_ms IS NOT NULL AND range_end_ms IS NOT NULL)",
            name=op.f("ck_ccc_sync_state_range_cursor"),
        ),
        sa.PrimaryKeyConstraint("sdk_app_id", "action", name=op.f("pk_ccc_sync_state")),
    )


def downgrade() -> None:
    op.drop_table("ccc_sync_state")
