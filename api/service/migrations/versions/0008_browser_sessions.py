"""Logged-in and routed captures (issue 17): stored browser sessions and each capture's choices.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "browser_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("name", AutoString(length=64), nullable=False),
        sa.Column("account", AutoString(length=200), nullable=False),
        sa.Column("state_sha256", AutoString(length=64), nullable=False),
        sa.Column("cookies", sa.Integer(), nullable=False),
        sa.Column("origins", sa.Integer(), nullable=False),
        sa.Column("sealed_state", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_browser_session_name"),
    )
    op.create_index("ix_browser_session_tenant_id", "browser_session", ["tenant_id"])
    op.create_table(
        "capture_choice",
        sa.Column("evidence_row_id", AutoString(length=100), sa.ForeignKey("evidence.id"), primary_key=True),
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("browser_session.id"), nullable=True),
        sa.Column("session_name", AutoString(length=64), nullable=True),
        sa.Column("egress", AutoString(length=40), nullable=True),
        sa.Column("save_media", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("capture_choice")
    op.drop_index("ix_browser_session_tenant_id", table_name="browser_session")
    op.drop_table("browser_session")
