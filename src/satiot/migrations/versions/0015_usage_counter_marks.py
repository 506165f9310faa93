"""usage: a mark that changes with every write to the usage counters

Rating read the counters of every device in a batch, though they are the values it wrote in
its earlier batches. It now keeps them between batches, and writes a new random mark with
every batch that changes counters; it uses what it kept only while the mark is still its own.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    marks = op.create_table(
        "usage_counter_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_usage_counter_marks")),
    )
    op.bulk_insert(marks, [{"name": "usage", "mark": 0}])


def downgrade() -> None:
    op.drop_table("usage_counter_marks")
