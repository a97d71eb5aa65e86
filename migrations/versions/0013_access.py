"""Access that fits a company: keys scoped to sites (api_key_sites, api_keys.all_sites), expiring keys,
when a key was last used, and the access log of reads of customer data and admin actions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

Written on a branch whose head was 0012; if other revisions reach main first, main re-chains this one after
them (only its down_revision changes).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        # Every key made before scoping saw every site, and keeps doing so.
        batch.add_column(sa.Column("all_sites", sa.Boolean(), nullable=False, server_default=sa.text("true")))
        batch.add_column(sa.Column("expires_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "api_key_sites",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_api_key_sites_key_id_api_keys"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_api_key_sites_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key_id", "site_id", name=op.f("pk_api_key_sites")),
    )
    op.create_index("ix_api_key_sites_site_id", "api_key_sites", ["site_id"])
    op.create_table(
        "access_log",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=True),
        sa.Column("path", sa.String(500), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.CheckConstraint("kind IN ('read', 'export', 'admin')", name=op.f("ck_access_log_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    op.create_index("ix_access_log_at_id", "access_log", ["at", "id"])
    op.create_index("ix_access_log_key_id_at_id", "access_log", ["key_id", "at", "id"])


def downgrade() -> None:
    op.drop_index("ix_access_log_key_id_at_id", table_name="access_log")
    op.drop_index("ix_access_log_at_id", table_name="access_log")
    op.drop_table("access_log")
    op.drop_index("ix_api_key_sites_site_id", table_name="api_key_sites")
    op.drop_table("api_key_sites")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("all_sites")
