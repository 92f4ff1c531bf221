"""Captures carry their scripted steps and the session-video switch (issue 17).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("capture_steps", sa.Text(), nullable=True))
        batch.add_column(sa.Column("capture_video", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("capture_video")
        batch.drop_column("capture_steps")
