"""credit_notes; customer_bills.credited_micros

A bill the customer has received is corrected by a credit note: its own gap-free number, the
amount credited, the VAT with it and the reason. The bill keeps what its credit notes took
off (``credited_micros``, VAT included) beside what was paid, so what is still owed is its
total less both. Bills issued before carry none.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_bills") as batch_op:
        batch_op.add_column(
            sa.Column("credited_micros", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("billing_account_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("subtotal_micros", sa.BigInteger(), nullable=False),
        sa.Column("tax_micros", sa.BigInteger(), nullable=False),
        sa.Column("total_micros", sa.BigInteger(), nullable=False),
        sa.Column("returned_micros", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bill_id"], ["customer_bills.id"], name=op.f("fk_credit_notes_bill_id_customer_bills")
        ),
        sa.ForeignKeyConstraint(
            ["billing_account_id"],
            ["billing_accounts.id"],
            name=op.f("fk_credit_notes_billing_account_id_billing_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_credit_notes_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint("number", name=op.f("uq_credit_notes_number")),
    )
    op.create_index("ix_credit_notes_bill_id", "credit_notes", ["bill_id"])
    op.create_index("ix_credit_notes_tenant_id", "credit_notes", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_credit_notes_tenant_id", table_name="credit_notes")
    op.drop_index("ix_credit_notes_bill_id", table_name="credit_notes")
    op.drop_table("credit_notes")
    with op.batch_alter_table("customer_bills") as batch_op:
        batch_op.drop_column("credited_micros")
