"""devices: when each last became active

A device is silent when it has not reported for some days since it could: since it was last
heard, or, never heard, since it became active. The device's registration time stood in for
the second, so a terminal provisioned into inventory months ago and activated yesterday was
listed as silent at once. Devices active now take the latest activation of their
subscription where the BSS holds one; the others keep none (their registration time counts,
as before).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch_op:
        batch_op.add_column(sa.Column("active_since", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE devices SET active_since = (SELECT max(s.activated_at) FROM subscriptions s "
        "WHERE s.device_id = devices.id) WHERE status = 'active'"
    )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch_op:
        batch_op.drop_column("active_since")
