"""usage: records without keys to their tenant, subscription and account; roomier counters

Rating writes a usage record per message and rewrites a counter per device in each batch.
On PostgreSQL, the record's three foreign keys (tenant, subscription, billing account) each
ran a trigger and locked the row it named: two thirds of the time a batch's records took to
write. Rating takes those ids from the subscription it joins, in the same transaction, and
none of those rows is ever deleted, so the keys are dropped (the bill's key stays: billing sets
it once). The counters' pages are filled to half (PostgreSQL only), so that an update writes
the new version on the same page without touching the indexes: half the time per counter.
Pages already written keep their fill until the table is rewritten (``VACUUM FULL``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 14:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: (constraint, column, referred table) of the keys dropped.
KEYS = (
    ("fk_usage_records_tenant_id_tenants", "tenant_id", "tenants"),
    ("fk_usage_records_subscription_id_subscriptions", "subscription_id", "subscriptions"),
    (
        "fk_usage_records_billing_account_id_billing_accounts",
        "billing_account_id",
        "billing_accounts",
    ),
)


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for name, _column, _table in KEYS:
            batch.drop_constraint(name, type_="foreignkey")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_counters SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE usage_counters RESET (fillfactor)")
    with op.batch_alter_table("usage_records") as batch:
        for name, column, table in KEYS:
            batch.create_foreign_key(name, table, [column], ["id"])
