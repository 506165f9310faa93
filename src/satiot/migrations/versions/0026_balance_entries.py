"""balance_entries: a prepaid balance's ledger

Every change of a prepaid balance (a top-up, usage rated, a bill paid from the balance, a
credit note's refund to it) is written with the balance after it, so that a prepaid customer
can see where its money went. A balance that is not zero when the ledger begins gets an
``opening`` entry of that amount, so that an account's entries add up to its balance.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-29 12:10:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from satiot.core.ids import new_id

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_accounts = sa.table(
    "billing_accounts",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("payment_mode", sa.String()),
    sa.column("balance_micros", sa.BigInteger()),
)


def upgrade() -> None:
    entries = op.create_table(
        "balance_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("billing_account_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["billing_account_id"],
            ["billing_accounts.id"],
            name=op.f("fk_balance_entries_billing_account_id_billing_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_balance_entries_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_entries")),
    )
    op.create_index(
        "ix_balance_entries_account_id", "balance_entries", ["billing_account_id", "id"]
    )
    op.create_index("ix_balance_entries_tenant_id", "balance_entries", ["tenant_id"])
    held = (
        op.get_bind()
        .execute(
            sa.select(_accounts).where(
                _accounts.c.payment_mode == "prepaid", _accounts.c.balance_micros != 0
            )
        )
        .all()
    )
    now = datetime.now(UTC)
    rows = [
        {
            "id": new_id(),  # time-ordered: before every later entry
            "tenant_id": row.tenant_id,
            "billing_account_id": row.id,
            "at": now,
            "kind": "opening",
            "amount_micros": row.balance_micros,
            "balance_micros": row.balance_micros,
            "reference": None,
        }
        for row in held
    ]
    if rows:
        op.bulk_insert(entries, rows)


def downgrade() -> None:
    op.drop_index("ix_balance_entries_tenant_id", table_name="balance_entries")
    op.drop_index("ix_balance_entries_account_id", table_name="balance_entries")
    op.drop_table("balance_entries")
