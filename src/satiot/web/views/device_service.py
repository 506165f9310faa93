"""What a device's page says of its service: the binding, this month's usage so far, and
for those who read the audit log, what was done to the device and its subscriptions.

"One device, one code, one number" is looked up device by device: the device page is where
staff and a customer's field team land from a DevEUI, and they ask which IoT number, handle
and terminal the device is bound to, under which offering, whether its service is live, and
what it has used and cost this month. The network's view of the device says none of that, so
the page adds the device's latest subscription and one aggregate of its usage records for the
business month (through the (subscription, period) index: the month's records of one device).
Support staff asked why a device stopped find the answer in its history: each status change,
suspension, offering change and termination, with who made it and why, newest first, read
through the audit log's target index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from satiot.bss.models import Customer, ProductOffering, Subscription, UsageRecord
from satiot.bss.periods import period_of
from satiot.core.models import AuditEntry
from satiot.network.models import Device


@dataclass(frozen=True)
class MonthUsage:
    """A device's usage records of one business month: charged ones (rated or billed) and
    those refused a charge (over a quota cap, before activation …)."""

    period: str
    messages: int
    billable_bytes: int
    charge_micros: int
    rejected: int


@dataclass(frozen=True)
class ServiceFacts:
    subscription: Subscription
    customer: str
    offering: str
    month: MonthUsage


def service_facts(
    session: Session, device: Device, *, now: datetime, tz: str
) -> ServiceFacts | None:
    """The device's latest subscription (None when it never had one) and its month so far."""
    found = session.execute(
        select(Subscription, Customer.name, ProductOffering.code, ProductOffering.version)
        .join(Customer, Customer.id == Subscription.customer_id)
        .join(ProductOffering, ProductOffering.id == Subscription.offering_id)
        .where(Subscription.device_id == device.id)
        .order_by(Subscription.created_at.desc(), Subscription.id.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    sub, customer, code, version = found
    period = period_of(now, tz)
    charged = UsageRecord.state != "rejected"
    messages, billable, charge, rejected = session.execute(
        select(
            func.count().filter(charged),
            func.coalesce(func.sum(case((charged, UsageRecord.billable_bytes))), 0),
            func.coalesce(func.sum(case((charged, UsageRecord.charge_micros))), 0),
            func.count().filter(~charged),
        ).where(UsageRecord.subscription_id == sub.id, UsageRecord.period == period)
    ).one()
    month = MonthUsage(period, int(messages), int(billable), int(charge), int(rejected))
    return ServiceFacts(sub, customer, f"{code} v{version}", month)


#: The entries of a device's history shown on its page.
HISTORY_ROWS = 20


def history(session: Session, device: Device, *, limit: int = HISTORY_ROWS) -> list[AuditEntry]:
    """The audit entries about the device and every subscription it has had, newest first."""
    subs = [str(i) for i in session.scalars(select(Subscription.id).where(
        Subscription.device_id == device.id
    ))]  # fmt: skip
    about = or_(
        and_(AuditEntry.target_type == "device", AuditEntry.target_id == str(device.id)),
        and_(AuditEntry.target_type == "subscription", AuditEntry.target_id.in_(subs)),
    )
    return list(
        session.scalars(
            select(AuditEntry).where(about).order_by(AuditEntry.seq.desc()).limit(limit)
        )
    )
