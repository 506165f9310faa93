"""usage_records: a tenant's month of records that name no billing account, in id order

A customer's month of usage as one file (``usage_export``, ``customer_id``) reads each of its
accounts' months from the account's index, then the month's records that no account was
charged for (a device without a live subscription). SQLite read those from the tenant's
(tenant, id) index at times, walking every month the customer ever had to find this one's. This
partial index holds only such records, which rating writes rarely, so it costs rating nothing
on the messages it charges.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

NO_ACCOUNT = sa.text("billing_account_id IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_usage_without_account",
        "usage_records",
        ["tenant_id", "period", "id"],
        sqlite_where=NO_ACCOUNT,
        postgresql_where=NO_ACCOUNT,
    )


def downgrade() -> None:
    op.drop_index("ix_usage_without_account", table_name="usage_records")
