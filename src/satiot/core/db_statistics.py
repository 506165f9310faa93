"""The embedded database's planner statistics, gathered while the platform runs.

SQLite chooses among a table's indexes by statistics that only ``ANALYZE`` writes; without
them it treats every equality as equally selective. Every tenant-scoped statement carries
``tenant_id = ?``, so it often read a whole tenant through the tenant index where another
index named one device, one delivery or one order: a device's downlinks or an order page's
item counts read every downlink or order item of the tenant. PostgreSQL gathers its own
statistics (autovacuum), so this runs on SQLite only.

``ANALYZE`` reads at most :data:`ANALYSIS_LIMIT` rows of each index: approximate statistics,
which are all the planner needs to tell a column of a few tenants from a column of many
devices, at a cost that does not grow with the tables. It takes the writer's turn like any
other write, and new statistics reach every connection (SQLite reloads them with the schema).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import text

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
    return True


def statistics_refresher(interval_s: float = INTERVAL_S) -> BackgroundService:
    """The ``db-statistics`` service: :func:`refresh_statistics` at start, then every
    ``interval_s``."""
    return periodic(NAME, interval_s, lambda ctx: refresh_statistics(ctx.db))
