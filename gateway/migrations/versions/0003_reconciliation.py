"""Reconciliation: its runs and the mismatches each run found.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scheduled", sa.Boolean, nullable=False),
        sa.Column("kinds", sa.Text, nullable=False),
        sa.Column("legal_entities", sa.Text, nullable=True),
        sa.Column("settle_seconds", sa.Float, nullable=False),
        sa.Column("checked", sa.Text, nullable=True),
        sa.Column("pending", sa.Text, nullable=True),
        sa.Column("totals", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_reconciliation_runs_status", "reconciliation_runs", ["status"])
    op.create_index("ix_reconciliation_runs_started_at", "reconciliation_runs", ["started_at"])
    op.create_table(
        "reconciliation_mismatches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("legal_entity", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("values", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("repair", sa.String(32), nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exception_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repaired_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("run_id", "fingerprint", name="uq_reconciliation_mismatch"),
    )
    for column in ("run_id", "fingerprint", "legal_entity", "exception_id"):
        op.create_index(
            f"ix_reconciliation_mismatches_{column}", "reconciliation_mismatches", [column]
        )


def downgrade() -> None:
    op.drop_table("reconciliation_mismatches")
    op.drop_table("reconciliation_runs")
