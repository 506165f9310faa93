"""customer_bills: adjustments before validation

Billing staff correct a bill before it is validated (a goodwill credit for an outage, a
charge the run could not know) with adjustment lines; the bill keeps their sum beside its
recurring, usage and one-time sums, so its subtotal is still the sum of its columns. Bills
issued before carry none.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_bills") as batch_op:
        batch_op.add_column(
            sa.Column("adjustment_micros", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_bills") as batch_op:
        batch_op.drop_column("adjustment_micros")
