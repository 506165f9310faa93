"""uplinks: the tenant's index holds the id too

A customer's Messages page shows its newest uplinks (polled every few seconds) with the last
hour's traffic. With the tenant alone indexed, each poll took every uplink the tenant ever sent
from that index and sorted them, and the hour's count read them all: the cost grew with every
message. Indexed as (tenant_id, id) (ids are time-ordered), the newest are read in order from
the end of the tenant's range, and an hour is a range of it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 08:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_uplinks_tenant_id_id", "uplinks", ["tenant_id", "id"])
    op.drop_index("ix_uplinks_tenant_id", table_name="uplinks")


def downgrade() -> None:
    op.create_index("ix_uplinks_tenant_id", "uplinks", ["tenant_id"])
    op.drop_index("ix_uplinks_tenant_id_id", table_name="uplinks")
