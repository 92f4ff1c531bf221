"""Stream watches (issue 17): a watch may record a live stream for a set time at each slot.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watch") as batch:
        batch.add_column(sa.Column("stream_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watch") as batch:
        batch.drop_column("stream_seconds")
