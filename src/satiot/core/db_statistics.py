"""The embedded database's planner statistics, gathered while the platform runs.

SQLite chooses among a table's indexes by statistics that only ``ANALYZE`` writes; without
them it treats every equality as equally selective. Every tenant-scoped statement carries
``tenant_id = ?``, so it often read a whole tenant through the tenant index where another
index named one device, one delivery or one order: a device's downlinks or an order page's
item counts read every downlink or order item of the tenant. PostgreSQL gathers its own
statistics (autovacuum), so this runs on SQLite only.

``ANALYZE`` reads at most :data:`ANALYSIS_LIMIT` rows of each index, at a cost that does not
grow with the tables. Its estimates come from the first rows of each index, and that misleads
on the tenant column: the first thousand rows of a tenant index hold one tenant, so SQLite
took a tenant to hold a thousand rows, while a device index's first thousand rows, over a few
devices, said a few hundred a device. A customer with 100 devices of 500 uplinks each then had
its Devices page count the uplinks of 50 devices by reading all 50,000 of its uplinks, and
every page read more as its history grew. So, once ``ANALYZE`` is done, each index that leads
with ``tenant_id`` is given what a tenant really holds on average: the index's rows over the
tenants that have any (one probe of the index per tenant). Against that, an index naming a
device, a subscription or a bill wins whenever the statement names one.

It takes the writer's turn like any other write, and new statistics reach every connection
(``ANALYZE sqlite_schema`` makes SQLite reload them).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import text
from sqlalchemy.orm import Session

from satiot.core.db import Database
from satiot.core.services import BackgroundService, periodic

NAME: Final = "db-statistics"
#: Rows ANALYZE reads per index.
ANALYSIS_LIMIT: Final = 1000
#: How often ``satiot up`` gathers them. A new database starts nearly empty (statistics of
#: empty tables mislead as they fill), and gathering costs tens of milliseconds (78 ms at
#: 44,000 uplinks and 9,450 subscriptions), so every ten minutes keeps them near the data.
INTERVAL_S: Final = 600.0


def refresh_statistics(db: Database) -> bool:
    """Gather the planner's statistics on SQLite (True); on other databases do nothing."""
    if not db.is_sqlite:
        return False
    with db.write() as session:
        session.execute(text(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}"))
        session.execute(text("ANALYZE"))
        if _spread_tenants(session):
            session.execute(text("ANALYZE sqlite_schema"))
    return True


def _spread_tenants(session: Session) -> bool:
    """Set the rows per tenant of each index that leads with ``tenant_id`` to the index's rows
    over the tenants that have any; True if any statistic changed."""
    stats = session.execute(
        text(
            "SELECT s.tbl, s.idx, s.stat FROM sqlite_stat1 s "
            "JOIN pragma_index_info(s.idx) i ON i.seqno = 0 AND i.name = 'tenant_id'"
        )
    ).all()
    holding: dict[str, int] = {}
    changed = False
    for table, index, stat in stats:
        if table not in holding:
            # one probe of the index per tenant; the names are the database's own
            holding[table] = int(
                session.execute(
                    text(
                        "SELECT count(*) FROM tenants t WHERE EXISTS "  # noqa: S608
                        f'(SELECT 1 FROM "{table}" INDEXED BY "{index}" WHERE tenant_id = t.id)'
                    )
                ).scalar_one()
            )
        parts = str(stat).split()
        if len(parts) < 2 or not parts[0].isdigit() or holding[table] == 0:
            continue
        per_tenant = str(-(-int(parts[0]) // holding[table]))
        if parts[1] != per_tenant:
            parts[1] = per_tenant
            session.execute(
                text("UPDATE sqlite_stat1 SET stat = :stat WHERE tbl = :tbl AND idx = :idx"),
                {"stat": " ".join(parts), "tbl": table, "idx": index},
            )
            changed = True
    return changed


def statistics_refresher(interval_s: float = INTERVAL_S) -> BackgroundService:
    """The ``db-statistics`` service: :func:`refresh_statistics` at start, then every
    ``interval_s``."""
    return periodic(NAME, interval_s, lambda ctx: refresh_statistics(ctx.db))
