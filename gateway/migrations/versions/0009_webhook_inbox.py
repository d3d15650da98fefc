"""The webhook inbox as a work queue: deliveries are stored first and dispatched later, so a
row carries its dispatch lease (who holds it, until when), its failed attempts, and an index
on (status, received_at) for claiming the oldest received rows.

The last error of a row keeps using the existing `error` column.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "webhook_inbox",
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column("webhook_inbox", sa.Column("lease_owner", sa.String(64), nullable=True))
    op.add_column(
        "webhook_inbox", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True)
    )
    # Claiming reads received rows oldest first: (status, received_at) serves it, and makes
    # the index on status alone redundant.
    op.drop_index("ix_webhook_inbox_status", table_name="webhook_inbox")
    op.create_index("ix_webhook_inbox_claim", "webhook_inbox", ["status", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_inbox_claim", table_name="webhook_inbox")
    op.create_index("ix_webhook_inbox_status", "webhook_inbox", ["status"])
    with op.batch_alter_table("webhook_inbox") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
        batch.drop_column("attempts")
