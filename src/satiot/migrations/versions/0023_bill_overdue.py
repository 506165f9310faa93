"""customer_bills.overdue_announced_at

A sent bill still owed after its due date is announced once as ``bill.overdue`` (to billing
staff and to the customer's integrations); the bill keeps when, so that the announcement is
made once however often housekeeping looks. A partial index on the due date holds only the
bills still watched (sent, open, not announced). Bills issued before carry none; those already
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


#: As ``bss.models.OVERDUE_WATCH_SQL`` (a migration keeps its own copy).
WATCH = "overdue_announced_at IS NULL AND state IN ('sent', 'partiallyPaid')"


def upgrade() -> None:
    with op.batch_alter_table("customer_bills") as batch_op:
        batch_op.add_column(
            sa.Column("overdue_announced_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_customer_bills_overdue_watch",
        "customer_bills",
        ["due_at"],
        sqlite_where=sa.text(WATCH),
        postgresql_where=sa.text(WATCH),
    )


def downgrade() -> None:
    op.drop_index("ix_customer_bills_overdue_watch", table_name="customer_bills")
    with op.batch_alter_table("customer_bills") as batch_op:
        batch_op.drop_column("overdue_announced_at")
