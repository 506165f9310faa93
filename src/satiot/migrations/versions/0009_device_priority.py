"""devices: downlink priority (the emergency-priority add-on)

Devices whose live subscription already carries an offering or add-on with a priority price
get the priority at once; from then on the BSS keeps it in step with the subscription.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_EMERGENCY = 1


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("priority", sa.SmallInteger(), nullable=False, server_default=sa.text("0"))
        )
    bind = op.get_bind()
    priced = {
        _uuid(row[0])
        for row in bind.execute(
            sa.text("SELECT DISTINCT offering_id FROM product_offering_prices WHERE priority")
        )
    }
    if not priced:
        return
    subs = bind.execute(
        sa.text(
            "SELECT device_id, offering_id, add_on_ids FROM subscriptions "
            "WHERE device_id IS NOT NULL "
            "AND status NOT IN ('terminated', 'cancelled', 'aborted')"
        )
    )
    wanted = []
    for device_id, offering_id, add_ons in subs:
        if isinstance(add_ons, str):
            add_ons = json.loads(add_ons)
        offerings = {_uuid(offering_id), *(_uuid(a) for a in add_ons or ())}
        if offerings & priced:
            wanted.append({"id": device_id, "p": _EMERGENCY})
    if wanted:
        bind.execute(sa.text("UPDATE devices SET priority = :p WHERE id = :id"), wanted)


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("priority")
