"""network inventory

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 19:41:38.068957
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ground_stations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("alt_m", sa.Float(), nullable=False),
        sa.Column("min_elevation_deg", sa.Float(), nullable=False),
        sa.Column("antennas", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ground_stations")),
        sa.UniqueConstraint("name", name=op.f("uq_ground_stations_name")),
    )
    op.create_table(
        "satellites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("norad_id", sa.Integer(), nullable=False),
        sa.Column("tle_line1", sa.String(length=69), nullable=False),
        sa.Column("tle_line2", sa.String(length=69), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("uplink_frequency_hz", sa.Integer(), nullable=False),
        sa.Column("channel_spacing_hz", sa.Integer(), nullable=False),
        sa.Column("g_over_t_db_k", sa.Float(), nullable=False),
        sa.Column("eirp_dbw", sa.Float(), nullable=False),
        sa.Column("storage_bytes", sa.Integer(), nullable=False),
        sa.Column("downlink_rate_bps", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_satellites")),
        sa.UniqueConstraint("name", name=op.f("uq_satellites_name")),
    )


def downgrade() -> None:
    op.drop_table("satellites")
    op.drop_table("ground_stations")
