"""Traces by business key: the records each trace touched, and which flow caused which.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_keys",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        sa.Column("correlation_id", sa.String(128), primary_key=True),
        sa.Column("flow_id", sa.String(200), nullable=False),
        sa.Column("legal_entity", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_trace_keys_created_at", "trace_keys", ["created_at"])
    op.add_column("flows", sa.Column("caused_by", sa.String(200), nullable=True))
    op.create_index("ix_flows_caused_by", "flows", ["caused_by"])


def downgrade() -> None:
    op.drop_index("ix_flows_caused_by", table_name="flows")
    with op.batch_alter_table("flows") as batch:
        batch.drop_column("caused_by")
    op.drop_index("ix_trace_keys_created_at", table_name="trace_keys")
    op.drop_table("trace_keys")
