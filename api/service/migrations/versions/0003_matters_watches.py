"""Matters (with their hash-chained log and filings), watches and their slots; evidence gets a subject.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("subject", AutoString(length=500), nullable=True))

    op.create_table(
        "matter",
        sa.Column("id", AutoString(length=40), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("title", AutoString(length=200), nullable=False),
        sa.Column("reference", AutoString(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("log_head", AutoString(length=64), nullable=False),
        sa.Column("log_length", sa.Integer(), nullable=False),
    )
    op.create_index("ix_matter_tenant_id", "matter", ["tenant_id"])

    op.create_table(
        "matter_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("matter_id", AutoString(length=40), sa.ForeignKey("matter.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", AutoString(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("previous_sha256", AutoString(length=64), nullable=False),
        sa.Column("entry_sha256", AutoString(length=64), nullable=False),
        sa.UniqueConstraint("matter_id", "seq", name="uq_matter_log_seq"),
    )
    op.create_index("ix_matter_log_matter_id", "matter_log", ["matter_id"])

    op.create_table(
        "matter_filing",
        sa.Column("evidence_ref", AutoString(length=100), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("matter_id", AutoString(length=40), sa.ForeignKey("matter.id"), nullable=False),
        sa.Column("filed_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_matter_filing_tenant_id", "matter_filing", ["tenant_id"])
    op.create_index("ix_matter_filing_matter_id", "matter_filing", ["matter_id"])

    op.create_table(
        "watch",
        sa.Column("id", AutoString(length=40), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("api_key_id", sa.Integer(), sa.ForeignKey("api_key.id"), nullable=True),
        sa.Column("url", AutoString(length=2048), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=True),
        sa.Column("matter_id", AutoString(length=40), sa.ForeignKey("matter.id"), nullable=True),
        sa.Column("subject", AutoString(length=500), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("state", AutoString(length=20), nullable=False),
        sa.Column("next_slot", UTCDateTime(), nullable=False),
        sa.Column("last_fingerprint", AutoString(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_watch_tenant_id", "watch", ["tenant_id"])
    op.create_index("ix_watch_state", "watch", ["state"])
    op.create_index("ix_watch_next_slot", "watch", ["next_slot"])

    op.create_table(
        "watch_slot",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("watch_id", AutoString(length=40), sa.ForeignKey("watch.id"), nullable=False),
        sa.Column("slot_time", UTCDateTime(), nullable=False),
        sa.Column("state", AutoString(length=20), nullable=False),
        sa.Column("reason", AutoString(length=200), nullable=True),
        sa.Column("evidence_ref", AutoString(length=100), nullable=True),
        sa.Column("fingerprint", AutoString(length=64), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("watch_id", "slot_time", name="uq_watch_slot"),
    )
    op.create_index("ix_watch_slot_watch_id", "watch_slot", ["watch_id"])
    op.create_index("ix_watch_slot_evidence_ref", "watch_slot", ["evidence_ref"])


def downgrade() -> None:
    op.drop_table("watch_slot")
    op.drop_table("watch")
    op.drop_table("matter_filing")
    op.drop_table("matter_log")
    op.drop_table("matter")
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("subject")
