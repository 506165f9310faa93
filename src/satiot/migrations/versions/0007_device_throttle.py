"""devices: throttling at a contract's quota

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("throttle_gap_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("throttle_next_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("throttle_next_at")
        batch.drop_column("throttle_gap_s")
