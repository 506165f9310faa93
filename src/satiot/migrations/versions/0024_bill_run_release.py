"""customer_bills: an index of a run's bills by state

A bill run's bills are validated and sent in bulk (``bss.bill_release``): each chunk takes the
run's next bills waiting in one state, in id order, and the Bill runs page counts a run's bills
by state. Without an index on the run, each chunk read every bill of every month.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_customer_bills_run_state", "customer_bills", ["bill_run_id", "state", "id"])


def downgrade() -> None:
    op.drop_index("ix_customer_bills_run_state", table_name="customer_bills")
