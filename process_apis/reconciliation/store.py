"""Reconciliation's tables (SQLAlchemy Core): its runs and the mismatches each run found.

The schema is created by the gateway's Alembic migration `0003_reconciliation`; these Table
objects mirror it for queries. Timestamps are UTC (read back through `as_utc`).
"""

from __future__ import annotations

import sqlalchemy as sa

from process_apis.engine.store import metadata

__all__ = ["mismatches", "runs"]

runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("scheduled", sa.Boolean, nullable=False),
    sa.Column("kinds", sa.Text, nullable=False),
    sa.Column("legal_entities", sa.Text, nullable=True),
    sa.Column("settle_seconds", sa.Float, nullable=False),
    sa.Column("checked", sa.Text, nullable=True),
    sa.Column("pending", sa.Text, nullable=True),
    sa.Column("totals", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
)
"""`legal_entities` is a JSON list, NULL for every entity; `watermark` is where a scheduled
run's reading began (the previous scheduled run's start), NULL for a full read."""

mismatches = sa.Table(
    "reconciliation_mismatches",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(300), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("legal_entity", sa.String(32), nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("values", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("repair", sa.String(32), nullable=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exception_id", sa.String(32), nullable=True, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("repaired_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("run_id", "fingerprint", name="uq_reconciliation_mismatch"),
)
"""`status` is `open` or `repaired`; `explained` is read from the mismatch's exception
(`exception_id`, in the exception queue) once it is resolved with a reason."""
