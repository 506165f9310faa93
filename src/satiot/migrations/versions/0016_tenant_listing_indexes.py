"""devices, subscriptions: the tenant's index holds the id too

A customer's list of devices or subscriptions, and its export, reads the tenant's rows in id
order a page or chunk at a time. With the tenant alone indexed, the database took every row of
the tenant from that index and sorted them all for each page: at 100,000 subscriptions, 30 ms
a page on SQLite. Indexed as (tenant_id, id), a page is read in order from the index. The
single-column index is dropped: the new one's first column serves what it served.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 08:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("devices", "subscriptions")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_tenant_id_id", table, ["tenant_id", "id"])
        op.drop_index(f"ix_{table}_tenant_id", table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])
        op.drop_index(f"ix_{table}_tenant_id_id", table_name=table)
