"""The business side's periodic work, run by ``satiot up`` as the ``bss-housekeeping`` service.

Each step is a plain function of (database, time) so that tests drive it with a manual clock
and the CLI can run it once; the service only repeats them:

- lift quota suspensions whose month is over (the contract says "until the next month");
- fulfil orders that became due (a pending order's requested start, an interrupted one);
- send handles whose copy at the identification node is missing or stale;
- announce bills still owed after their due date (``bill.overdue``, once each).

Bill runs are not started here: a month's bills are the billing staff's decision (they check
the dry run first), through ``satiot bills run`` or ``POST /api/v1/bill-runs``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from satiot.bss.models import Subscription
from satiot.bss.overdue import announce_overdue
from satiot.bss.periods import DEFAULT_TZ, period_of
from satiot.bss.subscriptions import resume_subscription
from satiot.core.auth.principal import Principal, system_principal
from satiot.core.clock import Clock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.core.models import Tenant
from satiot.core.services import BackgroundService, periodic
from satiot.network.keys import Kek

log = logging.getLogger(__name__)

NAME = "bss-housekeeping"


def lift_quota_suspensions(db: Database, now: datetime, *, tz: str = DEFAULT_TZ) -> list[uuid.UUID]:
    """Resume subscriptions suspended at their monthly quota in an earlier month; return them.

    Each is resumed in its own transaction, as the system, audited like any resumption."""
    current = period_of(now, tz)
    with db.read() as session:
        due = [
            sub_id
            for sub_id, at in session.execute(
                select(Subscription.id, Subscription.suspended_at).where(
                    Subscription.status == "suspended", Subscription.suspended_by == "quota"
                )
            )
            if at is None or period_of(at, tz) < current
        ]
    lifted: list[uuid.UUID] = []
    for sub_id in due:
        with db.write() as session:
            operator = session.scalar(select(Tenant.id).where(Tenant.kind == "operator"))
            principal = system_principal(operator or uuid.UUID(int=0), "quota-month")
            sub = session.get(Subscription, sub_id)
            if sub is None or sub.status != "suspended" or sub.suspended_by != "quota":
                continue  # someone acted on it meanwhile
            resume_subscription(session, principal, sub_id, f"a new month: {current}", now)
            lifted.append(sub_id)
    return lifted


def _system(db: Database, why: str) -> Principal:
    """The system acting for the operator (what the audit log names for an automatic step)."""
    with db.read() as session:
        operator = session.scalar(select(Tenant.id).where(Tenant.kind == "operator"))
    return system_principal(operator or uuid.UUID(int=0), why)


@dataclass
class HousekeepingRun:
    lifted: list[uuid.UUID] = field(default_factory=list)
    orders: dict[uuid.UUID, str] = field(default_factory=dict)
    handles: int = 0
    overdue: list[uuid.UUID] = field(default_factory=list)


def run_once(db: Database, clock: Clock, settings: Settings, kek: Kek) -> HousekeepingRun:
    """One round of every step; a failing step is logged and does not stop the others."""
    from satiot.bss.activation import ActivationConfig, register_pending_handles
    from satiot.bss.order_fulfilment import fulfil_due_orders
    from satiot.oss.handle_client import NodeConfig

    run = HousekeepingRun()
    try:
        run.lifted = lift_quota_suspensions(db, clock.now(), tz=settings.business_timezone)
    except Exception:
        log.exception("lifting quota suspensions failed")
    try:
        config = ActivationConfig.from_settings(settings, kek)
        run.orders = fulfil_due_orders(db, clock=clock, config=config)
    except Exception:
        log.exception("fulfilling due orders failed")
    try:
        run.overdue = announce_overdue(db, _system(db, "overdue-bills"), clock.now())
    except Exception:
        log.exception("announcing overdue bills failed")
    node = NodeConfig.from_settings(settings)
    if node is not None:
        try:
            sent = register_pending_handles(db, node, at=clock.now())
            run.handles = len(sent.registered) if sent is not None else 0
        except Exception:
            log.exception("registering handles failed")
    return run


def housekeeping_service(*, interval_s: float = 60.0) -> BackgroundService:
    """The ``bss-housekeeping`` service: :func:`run_once` every ``interval_s``."""
    return periodic(
        NAME, interval_s, lambda ctx: run_once(ctx.db, ctx.clock, ctx.settings, ctx.kek)
    )
