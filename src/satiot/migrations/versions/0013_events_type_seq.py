"""events: index by type, then position

Rating asks every batch for the last event that moved a device between pools; with the index
on the type alone, PostgreSQL finds it by walking the log backwards from its end, past every
uplink since. An index on (type, seq) answers "the last event of this type" with one seek on
both databases (SQLite's old index held the rowid after the type, which is the same thing),
and serves every query the old one did.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 04:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_type_seq", "events", ["type", "seq"])
    op.drop_index("ix_events_type", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_type", "events", ["type"])
    op.drop_index("ix_events_type_seq", table_name="events")
