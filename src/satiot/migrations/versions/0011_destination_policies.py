"""network: each tenant's destination allow-list, as the contracts in force make it

Directional access is enforced on delivery from a network-side copy of the allow-lists of a
tenant's contracts in force. Tenants that ever signed a contract get their row now: the union
of the lists of their contracts in force, or an empty list if none is in force any more.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 15:00:00
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_contracts = sa.table(
    "contracts",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("number", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("supersedes_id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("signed_at", sa.DateTime(timezone=True)),
    sa.column("destination_allow_list", sa.JSON()),
)


def upgrade() -> None:
    policies = op.create_table(
        "destination_policies",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_destination_policies_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_destination_policies")),
    )
    signed = (
        op.get_bind()
        .execute(sa.select(_contracts).where(_contracts.c.signed_at.is_not(None)))
        .all()
    )
    replaced = {row.supersedes_id for row in signed if row.supersedes_id is not None}
    entries: dict[uuid.UUID, set[str]] = {}  # every tenant that ever signed gets a row
    sources: dict[uuid.UUID, list[str]] = defaultdict(list)
    for row in signed:
        listed = entries.setdefault(row.tenant_id, set())
        if row.status == "signed" and row.id not in replaced:
            listed.update(row.destination_allow_list or ())
            sources[row.tenant_id].append(f"{row.number} v{row.version}")
    now = datetime.now(UTC)
    rows = [
        {
            "tenant_id": tenant,
            "entries": sorted(listed),
            "source": ", ".join(sorted(sources[tenant]))[:500],
            "updated_at": now,
        }
        for tenant, listed in entries.items()
    ]
    if rows:
        op.bulk_insert(policies, rows)


def downgrade() -> None:
    op.drop_table("destination_policies")
