"""integrations: login and CA for a customer's own MQTT broker

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("username", sa.String(256), nullable=True))
        batch.add_column(sa.Column("password_sealed", sa.LargeBinary(512), nullable=True))
        batch.add_column(sa.Column("ca_pem", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("ca_pem")
        batch.drop_column("password_sealed")
        batch.drop_column("username")
