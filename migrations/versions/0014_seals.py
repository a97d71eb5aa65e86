"""The seal of the raw logs: a hash chain of sealed periods and removal records; ids never reused on SQLite

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

On SQLite `events` and `ccc_raw_records` are rebuilt with AUTOINCREMENT: without it SQLite gives a new row
the largest id plus one, so deleting the newest rows (an erasure, a quarantine) would hand their ids out
again, inside a period already sealed. The rebuild copies each table once. PostgreSQL's sequences never
reuse a value.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Revision 0005's trigger: it goes with the old table when batch mode drops it.
QUEUE_TRIGGER = """
CREATE TRIGGER events_queue_for_projection AFTER INSERT ON events
BEGIN
    INSERT INTO projection_queue (id) VALUES (NEW.id);
END
"""


def _rebuild_sqlite_logs(autoincrement: bool) -> None:
    op.execute("DROP TRIGGER IF EXISTS events_queue_for_projection")
    for table in ("events", "ccc_raw_records"):
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    op.execute(QUEUE_TRIGGER)


def upgrade() -> None:
    op.create_table(
        "seals",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("log", sa.String(32), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("ids", sa.LargeBinary(), nullable=True),
        sa.Column("leaves", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("signature", sa.String(64), nullable=True),
        sa.CheckConstraint("kind IN ('period', 'removal')", name=op.f("ck_seals_kind")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_seals")),
        sa.UniqueConstraint("log", "kind", "first_id", name=op.f("uq_seals_log_kind_first_id")),
    )
    op.create_table(
        "seal_removed",
        sa.Column("log", sa.String(32), nullable=False),
        sa.Column("row_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("log", "row_id", name=op.f("pk_seal_removed")),
    )
    op.create_index("ix_seal_removed_seq", "seal_removed", ["seq"])
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_logs(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_logs(autoincrement=False)
    op.drop_index("ix_seal_removed_seq", table_name="seal_removed")
    op.drop_table("seal_removed")
    op.drop_table("seals")
