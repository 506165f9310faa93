"""who suspended a subscription, and when

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("suspended_by", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
    # Suspensions made before the origin was recorded are the operator's to lift.
    op.execute("UPDATE subscriptions SET suspended_by = 'operator' WHERE status = 'suspended'")


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("suspended_at")
        batch.drop_column("suspended_by")
