"""projection queue: events are projected after they are stored, not in the same transaction

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every event stored before this revision was projected in its own transaction: the queue starts empty.
    op.create_table(
        "projection_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projection_queue")),
    )


def downgrade() -> None:
    # Revision 0003 projects in the writer's transaction and never reads the queue: whatever is still queued
    # would stay unprojected there, so downgrading asks for `calltrail rebuild` afterwards.
    op.drop_table("projection_queue")
