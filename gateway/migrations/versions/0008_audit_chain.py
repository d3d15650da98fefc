"""The audit log as a hash chain: the unused first `audit_log` makes way for one with actor,
target, legal entity, before/after and the chain hashes, and its one-row head.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    # The first audit_log was never written (nothing to carry over).
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_system", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(300), nullable=False),
        sa.Column("legal_entity", sa.String(32), nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for column in ("at", "actor_id", "action", "target_id", "legal_entity"):
        op.create_index(f"ix_audit_log_{column}", "audit_log", [column])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger, nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(
        head, [{"id": 1, "seq": 0, "hash": GENESIS, "anchor_seq": 0, "anchor_hash": GENESIS}]
    )


def downgrade() -> None:
    op.drop_table("audit_head")
    for column in ("legal_entity", "target_id", "action", "actor_id", "at"):
        op.drop_index(f"ix_audit_log_{column}", table_name="audit_log")
    op.drop_table("audit_log")
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])
