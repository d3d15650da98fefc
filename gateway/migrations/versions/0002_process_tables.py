"""Process layer tables: flows and steps, exception queue and history, executor heartbeats,
webhook inbox, cross-references.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("flow_type", sa.String(64), nullable=False),
        sa.Column("business_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("crm_account", sa.String(128), nullable=True),
        sa.Column("legal_entity", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_flows_business_key", "flows", ["business_key"])
    op.create_index("ix_flows_status", "flows", ["status"])
    op.create_index("ix_flows_correlation_id", "flows", ["correlation_id"])
    op.create_index("ix_flows_crm_account", "flows", ["crm_account"])
    op.create_index("ix_flows_created_at", "flows", ["created_at"])
    op.create_table(
        "flow_steps",
        sa.Column("flow_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("external_ids", sa.Text, nullable=True),
    )
    op.create_table(
        "exceptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("flow_id", sa.String(200), nullable=False),
        sa.Column("flow_type", sa.String(64), nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("step_ref", sa.String(300), nullable=False),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_class", sa.String(100), nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("input", sa.Text, nullable=True),
        sa.Column("assignee", sa.String(128), nullable=True),
        sa.Column("legal_entity", sa.String(32), nullable=True),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("flow_id", "step", name="uq_exceptions_flow_step"),
    )
    op.create_index("ix_exceptions_flow_id", "exceptions", ["flow_id"])
    op.create_index("ix_exceptions_owner", "exceptions", ["owner"])
    op.create_index("ix_exceptions_status", "exceptions", ["status"])
    op.create_index("ix_exceptions_created_at", "exceptions", ["created_at"])
    op.create_table(
        "exception_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("exception_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_exception_history_exception_id", "exception_history", ["exception_id"])
    op.create_table(
        "executors",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_executors_heartbeat_at", "executors", ["heartbeat_at"])
    op.create_table(
        "webhook_inbox",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("flow_id", sa.String(200), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_webhook_inbox_status", "webhook_inbox", ["status"])
    op.create_index("ix_webhook_inbox_received_at", "webhook_inbox", ["received_at"])
    op.create_table(
        "cross_references",
        sa.Column("entity", sa.String(32), primary_key=True),
        sa.Column("canonical_id", sa.String(128), primary_key=True),
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("legal_entity", sa.String(32), primary_key=True),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "entity", "system", "external_id", "legal_entity", name="uq_cross_references_external"
        ),
    )


def downgrade() -> None:
    op.drop_table("cross_references")
    op.drop_table("webhook_inbox")
    op.drop_table("executors")
    op.drop_table("exception_history")
    op.drop_table("exceptions")
    op.drop_table("flow_steps")
    op.drop_table("flows")
