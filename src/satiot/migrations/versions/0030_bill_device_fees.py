"""bill_device_fees: each device's recurring and one-time fees on a bill

A bill's statement lists its devices with their usage; a customer reconciling a bill also asks
what each device's monthly fee and activation fee came to (prorated for a device that joined
or left during the month), and which devices it paid a fee for without any traffic. A bill run
writes one row per device it charged a fee (``bss.device_fees``); bills issued before this
revision have none, and their statements show usage alone.

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-29 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bill_device_fees",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("first_day", sa.SmallInteger(), nullable=False),
        sa.Column("last_day", sa.SmallInteger(), nullable=False),
        sa.Column("recurring_micros", sa.BigInteger(), nullable=False),
        sa.Column("one_time_micros", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bill_id", "subscription_id", name=op.f("pk_bill_device_fees")),
    )


def downgrade() -> None:
    op.drop_table("bill_device_fees")
