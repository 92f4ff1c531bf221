"""Event logs: drop ``ix_log_event_log_id``, which the unique (log_id, leaf_index) index covers.

Every ingested event updated both; one index less is one B-tree less written per event.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_log_event_log_id", table_name="log_event")


def downgrade() -> None:
    op.create_index("ix_log_event_log_id", "log_event", ["log_id"])
