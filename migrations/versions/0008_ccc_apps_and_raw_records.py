"""CCC apps, their sites and OAuth2 tokens, and the raw log of CCC records (Data Push, later pulls)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ccc_apps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sdk_app_id", sa.BigInteger(), nullable=False),
        sa.Column("auth", sa.String(8), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("auth IN ('basic', 'oauth2', 'none')", name=op.f("ck_ccc_apps_auth")),
        sa.CheckConstraint(
            "(auth = 'none' AND client_id IS NULL AND secret_hash IS NULL) OR "
            "(auth <> 'none' AND client_id IS NOT NULL AND secret_hash IS NOT NULL)",
            name=op.f("ck_ccc_apps_credentials"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ccc_apps")),
        sa.UniqueConstraint("sdk_app_id", name=op.f("uq_ccc_apps_sdk_app_id")),
        sa.UniqueConstraint("client_id", name=op.f("uq_ccc_apps_client_id")),
    )
    op.create_table(
        "ccc_app_sites",
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["ccc_apps.id"], name=op.f("fk_ccc_app_sites_app_id_ccc_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_ccc_app_sites_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", "site_id", name=op.f("pk_ccc_app_sites")),
    )
    op.create_index("ix_ccc_app_sites_site_id", "ccc_app_sites", ["site_id"])
    op.create_table(
        "ccc_tokens",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["ccc_apps.id"], name=op.f("fk_ccc_tokens_app_id_ccc_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ccc_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ccc_tokens_token_hash")),
    )
    op.create_index("ix_ccc_tokens_app_id", "ccc_tokens", ["app_id"])
    op.create_table(
        "ccc_raw_records",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("sdk_app_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("action", sa.String(64), nullable=True),
        sa.Column("version", sa.String(16), nullable=True),
        sa.Column("push_uuid", sa.String(128), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.CheckConstraint("source IN ('push', 'pull')", name=op.f("ck_ccc_raw_records_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ccc_raw_records")),
        sa.UniqueConstraint("sdk_app_id", "push_uuid", name=op.f("uq_ccc_raw_records_sdk_app_id_push_uuid")),
    )
    op.create_index(
        "ix_ccc_raw_records_sdk_app_id_received_at", "ccc_raw_records", ["sdk_app_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_ccc_raw_records_sdk_app_id_received_at", table_name="ccc_raw_records")
    op.drop_table("ccc_raw_records")
    op.drop_index("ix_ccc_tokens_app_id", table_name="ccc_tokens")
    op.drop_table("ccc_tokens")
    op.drop_index("ix_ccc_app_sites_site_id", table_name="ccc_app_sites")
    op.drop_table("ccc_app_sites")
    op.drop_table("ccc_apps")
