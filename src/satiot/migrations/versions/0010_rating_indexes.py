"""rating: a usage record is named by its event; an index for counting a pool's devices

A usage record's id is its event's id, so the primary key already keeps an event from being
rated twice: the separate unique index on ``event_id`` only cost every write. Records made
before ids followed events are renamed to their event's id (nothing refers to a usage
record's id), the unique index is dropped and a check keeps the two equal.

Rating counts a pool's devices in each month it rates; ``ix_subscriptions_pool`` answers that
count from the index alone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE usage_records SET id = event_id WHERE id <> event_id"))
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_constraint("uq_usage_records_event_id", type_="unique")
        batch.create_check_constraint("id_is_event", "id = event_id")
    op.create_index(
        "ix_subscriptions_pool",
        "subscriptions",
        ["billing_account_id", "offering_id", "activated_at", "terminated_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_pool", table_name="subscriptions")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_constraint("id_is_event", type_="check")
        batch.create_unique_constraint("uq_usage_records_event_id", ["event_id"])
