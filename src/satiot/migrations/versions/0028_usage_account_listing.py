"""usage_records: an account's month of records in id order

A billing account's records of one month were indexed by (account, period) alone. Listing
them a page at a time (``GET /api/v1/usage?billing_account_id=&period=``, newest first) then
read the whole month from the index and sorted it for every page: 0.18 s a page at 100,000
records, so walking a large account's month took time growing with the square of its size.
The index now ends with the id, so a page is read in order from where the last one ended, and
the month's file (``usage_export``) streams without a sort. Billing reads the same index by
its (account, period) prefix, as before.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-29 15:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_usage_account_period_id", "usage_records", ["billing_account_id", "period", "id"]
    )
    op.drop_index("ix_usage_account_period", table_name="usage_records")


def downgrade() -> None:
    op.create_index("ix_usage_account_period", "usage_records", ["billing_account_id", "period"])
    op.drop_index("ix_usage_account_period_id", table_name="usage_records")
