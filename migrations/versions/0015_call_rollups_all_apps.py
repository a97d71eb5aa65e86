"""Rollups of the calls report for all apps together (sdk_app_id 0): marks for every hour and day of the
call records already stored, dirty, so the first report without a site (or ``calltrail rollups``) builds them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04

No table changes: an all-apps row has the shape of an app's (projection/call_rollups.py, ALL_APPS).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARK_HISTORY = [
    "INSERT INTO call_rollup_marks (sdk_app_id, span, start_ms, gen, built_gen) "
    "SELECT DISTINCT 0, 'hour', start_at - start_at % 3600000, 1, 0 "
    "FROM call_records WHERE start_at IS NOT NULL",
    "INSERT INTO call_rollup_marks (sdk_app_id, span, start_ms, gen, built_gen) "
    "SELECT DISTINCT 0, 'day', start_at - start_at % 86400000, 1, 0 "
    "FROM call_records WHERE start_at IS NOT NULL",
]


def upgrade() -> None:
    for statement in MARK_HISTORY:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DELETE FROM call_rollups WHERE sdk_app_id = 0")
    op.execute("DELETE FROM call_rollup_marks WHERE sdk_app_id = 0")
