"""Indexes for GET /v1/coverage: call legs by answer time (in the unseen list's keyset order), page sessions
by app and offer time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_call_legs_accept_at_sdk_app_id_session_id_leg",
        "call_legs",
        ["accept_at", "sdk_app_id", "session_id", "leg"],
    )
    op.create_index("ix_sessions_sdk_app_id_offered_at", "sessions", ["sdk_app_id", "offered_at"])


def downgrade() -> None:
    op.drop_index("ix_sessions_sdk_app_id_offered_at", table_name="sessions")
    op.drop_index("ix_call_legs_accept_at_sdk_app_id_session_id_leg", table_name="call_legs")
