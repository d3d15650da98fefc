"""Usage records reported by clients, and the batches that push them to billing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("record_id", sa.String(200), primary_key=True),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("subscription_item_id", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("legal_entity", sa.String(32), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.String(200), nullable=True),
    )
    op.create_index("ix_usage_records_batch_id", "usage_records", ["batch_id"])
    op.create_index(
        "ix_usage_records_subscription", "usage_records", ["subscription_id", "period_start"]
    )
    op.create_table(
        "usage_batches",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("usage_batches")
    op.drop_index("ix_usage_records_subscription", table_name="usage_records")
    op.drop_index("ix_usage_records_batch_id", table_name="usage_records")
    op.drop_table("usage_records")
