"""Webhook inbox deduplicated per sender and event type: (source, sender, event_type, event_id).

A Salesforce callout's event id is chosen by the calling client; keyed on (source, event id)
alone, one client could store an id first and make another's real event a duplicate.
Rows kept from before have no known sender: they get the empty one (a signed webhook's).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = "event_type, event_id, payload, status, flow_id, error, received_at, processed_at"


def _inbox(name: str, key: list[str], key_name: str) -> None:
    op.create_table(
        name,
        sa.Column("source", sa.String(32), nullable=False),
        # A signed webhook's sender is the empty one (the vendor account whose secret signed).
        *(
            [sa.Column("sender", sa.String(200), nullable=False, server_default="")]
            if "sender" in key else []
        ),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("flow_id", sa.String(200), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        # Named for the table it ends as (a renamed table keeps its constraints' names).
        sa.PrimaryKeyConstraint(*key, name=key_name),
    )


def _replace(key: list[str], key_name: str, copy: str) -> None:
    """Rebuild the table under a new primary key (SQLite cannot alter one in place)."""
    _inbox("webhook_inbox_new", key, key_name)
    op.execute(copy)
    op.drop_index("ix_webhook_inbox_status", table_name="webhook_inbox")
    op.drop_index("ix_webhook_inbox_received_at", table_name="webhook_inbox")
    op.drop_table("webhook_inbox")
    op.rename_table("webhook_inbox_new", "webhook_inbox")
    op.create_index("ix_webhook_inbox_status", "webhook_inbox", ["status"])
    op.create_index("ix_webhook_inbox_received_at", "webhook_inbox", ["received_at"])


def upgrade() -> None:
    _replace(
        ["source", "sender", "event_type", "event_id"],
        "webhook_inbox_per_sender_pkey",
        f"INSERT INTO webhook_inbox_new (source, sender, {_COLUMNS}) "
        f"SELECT source, '', {_COLUMNS} FROM webhook_inbox",
    )


def downgrade() -> None:
    # Events of several senders or types under one id collapse to the first received.
    _replace(
        ["source", "event_id"],
        "webhook_inbox_pkey",
        f"INSERT INTO webhook_inbox_new (source, {_COLUMNS}) "
        f"SELECT source, {_COLUMNS} FROM webhook_inbox AS kept WHERE NOT EXISTS ("
        "SELECT 1 FROM webhook_inbox AS other WHERE other.source = kept.source "
        "AND other.event_id = kept.event_id AND (other.received_at < kept.received_at "
        "OR (other.received_at = kept.received_at AND other.sender || other.event_type "
        "< kept.sender || kept.event_type)))",
    )
