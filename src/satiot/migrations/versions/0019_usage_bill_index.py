"""usage_records: a bill's records by device

A bill's usage statement lists each device's messages, bytes and charge on that bill. Without
an index on the bill, a statement read every record the account ever had; the partial index
(billed records only) is ordered by device, so a statement's page reads its devices' records
and no others, and rating, which writes records before any bill claims them, never updates it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_BILLED = "bill_id IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_usage_bill_subscription",
        "usage_records",
        ["bill_id", "subscription_id"],
        sqlite_where=sa.text(_BILLED),
        postgresql_where=sa.text(_BILLED),
    )


def downgrade() -> None:
    op.drop_index("ix_usage_bill_subscription", table_name="usage_records")
