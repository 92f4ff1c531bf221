"""The service's tables: tenants, API keys, evidence and audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", AutoString(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_tenant_name", "tenant", ["name"], unique=True)

    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label", AutoString(length=200), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("prefix", AutoString(length=32), nullable=False),
        sa.Column("key_hash", AutoString(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_key_prefix", "api_key", ["prefix"], unique=True)
    op.create_index("ix_api_key_tenant_id", "api_key", ["tenant_id"])

    op.create_table(
        "evidence",
        sa.Column("id", AutoString(length=100), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("api_key_id", sa.Integer(), sa.ForeignKey("api_key.id"), nullable=True),
        sa.Column("kind", AutoString(length=20), nullable=False),
        sa.Column("title", AutoString(length=4000), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("evidence_id", AutoString(length=100), nullable=True),
        sa.Column("fingerprint", AutoString(length=64), nullable=True),
        sa.Column("package_sha256", AutoString(length=64), nullable=True),
        sa.Column("sealed_sha256", AutoString(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("packaged_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_evidence_tenant_id", "evidence", ["tenant_id"])
    op.create_index("ix_evidence_created_at", "evidence", ["created_at"])
    op.create_index("ix_evidence_evidence_id", "evidence", ["evidence_id"], unique=True)

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("actor", AutoString(length=40), nullable=False),
        sa.Column("action", AutoString(length=80), nullable=False),
        sa.Column("target", AutoString(length=200), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("client", AutoString(length=100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_tenant_id", "audit_event", ["tenant_id"])
    op.create_index("ix_audit_event_action", "audit_event", ["action"])


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_table("evidence")
    op.drop_table("api_key")
    op.drop_table("tenant")
