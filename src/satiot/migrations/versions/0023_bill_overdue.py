"""customer_bills.overdue_announced_at

A sent bill still owed after its due date is announced once as ``bill.overdue`` (to billing
staff and to the customer's integrations); the bill keeps when, so that the announcement is
made once however often housekeeping looks. Bills issued before carry none; those already
overdue are announced at the first look.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_bills") as batch_op:
        batch_op.add_column(
            sa.Column("overdue_announced_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_bills") as batch_op:
        batch_op.drop_column("overdue_announced_at")
