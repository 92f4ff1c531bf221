"""Notices: each version of a takedown notice, and the replies imported to it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_version",
        sa.Column("id", AutoString(length=120), primary_key=True),
        sa.Column("notice_id", AutoString(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=True),
        sa.Column("matter", AutoString(length=100), nullable=True),
        sa.Column("action", AutoString(length=20), nullable=False),
        sa.Column("status", AutoString(length=20), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("recipient", AutoString(length=320), nullable=False),
        sa.Column("window", AutoString(length=20), nullable=False),
        sa.Column("evidence_id", AutoString(length=100), nullable=True),
        sa.Column("fingerprint", AutoString(length=64), nullable=True),
        sa.Column("queue_id", AutoString(length=200), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("due", AutoString(length=10), nullable=True),
        sa.Column("recheck_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("notice_id", "version", name="uq_notice_version"),
    )
    op.create_index("ix_notice_version_notice_id", "notice_version", ["notice_id"])
    op.create_index("ix_notice_version_tenant_id", "notice_version", ["tenant_id"])
    op.create_index("ix_notice_version_matter", "notice_version", ["matter"])
    op.create_table(
        "notice_reply",
        sa.Column("evidence_id", AutoString(length=100), primary_key=True),
        sa.Column("notice_id", AutoString(length=100), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=True),
        sa.Column("fingerprint", AutoString(length=64), nullable=False),
        sa.Column("dkim_status", AutoString(length=10), nullable=False),
        sa.Column("dkim_domain", AutoString(length=255), nullable=True),
        sa.Column("message_sha256", AutoString(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_notice_reply_notice_id", "notice_reply", ["notice_id"])
    op.create_index("ix_notice_reply_tenant_id", "notice_reply", ["tenant_id"])
    op.create_index("ix_notice_reply_message_sha256", "notice_reply", ["message_sha256"])


def downgrade() -> None:
    op.drop_table("notice_reply")
    op.drop_table("notice_version")
