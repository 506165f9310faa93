"""billing_accounts.low_balance_micros: when to warn a prepaid customer

A prepaid balance that falls below the account's threshold is announced to the customer once
(``billing-account.balance-low``), so that it can top up before the service stops at zero.
Accounts opened before have no threshold: no notice until one is set.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-29 12:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("billing_accounts") as batch_op:
        batch_op.add_column(sa.Column("low_balance_micros", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("billing_accounts") as batch_op:
        batch_op.drop_column("low_balance_micros")
