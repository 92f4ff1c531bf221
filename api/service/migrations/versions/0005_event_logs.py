"""Event logs (issue 16): logs, their events, checkpoints and tiles.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant", AutoString(length=200), nullable=False),
        sa.Column("name", AutoString(length=64), nullable=False),
        sa.Column("origin", AutoString(length=300), nullable=False),
        sa.Column("required_fields", sa.Text(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant", "name"),
    )
    op.create_table(
        "log_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("leaf_index", sa.Integer(), nullable=False),
        sa.Column("salt", AutoString(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("leaf", AutoString(length=64), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("log_id", "leaf_index"),
    )
    op.create_index("ix_log_event_log_id", "log_event", ["log_id"])
    op.create_index("ix_log_event_time", "log_event", ["log_id", "event_time"])
    op.create_table(
        "log_checkpoint",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", AutoString(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("evidence_id", AutoString(length=100), nullable=False),
        sa.UniqueConstraint("log_id", "size"),
    )
    op.create_index("ix_log_checkpoint_log_id", "log_checkpoint", ["log_id"])
    op.create_table(
        "log_tile",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("tile_index", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("address", AutoString(length=64), nullable=False),
        sa.UniqueConstraint("log_id", "level", "tile_index"),
    )
    op.create_index("ix_log_tile_log_id", "log_tile", ["log_id"])


def downgrade() -> None:
    op.drop_table("log_tile")
    op.drop_table("log_checkpoint")
    op.drop_table("log_event")
    op.drop_table("event_log")
