"""Overdue bills: a sent bill still owed after its due date is announced, once.

Billing staff chase what is unpaid, and a customer's own systems (its ERP, its accounts payable)
want to hear of a bill they let run late as they hear of one sent. Housekeeping looks for
bills that are ``sent`` or ``partiallyPaid``, owe money and are past their due date, and
announces each as ``bill.overdue`` (audited as the system, tenant-tagged, pushed to the
customer's integrations with its other business notices) with what is still owed and how many
days late it is. The bill keeps when it was announced, so a bill is announced once however often
housekeeping looks; paying it, crediting it or anything else is not undone by the notice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, TextClause, select, text

from satiot.bss.invoices import bill_view
from satiot.bss.models import OVERDUE_WATCH_SQL, CustomerBill
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.db import Database

OVERDUE_EVENT: Final = "bill.overdue"
#: Bills announced per transaction.
CHUNK: Final = 200


def watched_overdue(now: datetime) -> list[ColumnElement[bool] | TextClause]:
    """Overdue (as ``CustomerBill.overdue_criteria`` has it, its states written out) and not
    yet announced: read from the partial index that holds only the bills still watched
    (``OVERDUE_WATCH_SQL``, written out so SQLite sees it applies)."""
    return [
        text(OVERDUE_WATCH_SQL),
        CustomerBill.due_at < now,
        CustomerBill.due_micros > 0,
    ]


def announce_overdue(
    db: Database, principal: Principal, now: datetime, *, chunk: int = CHUNK
) -> list[uuid.UUID]:
    """Announce every bill overdue at ``now`` and not announced yet; return their ids.

    A chunk of bills is announced per transaction, each bill read again under its lock, so a
    payment that settles it meanwhile (or a second housekeeper) leaves it unannounced."""
    with db.read() as session:
        # Unordered, so that the planner reads the watch index rather than walk the bills in
        # key order; sorted here, so chunks lock in one order.
        due = sorted(session.scalars(select(CustomerBill.id).where(*watched_overdue(now))))
    announced: list[uuid.UUID] = []
    for start in range(0, len(due), chunk):
        with db.write() as session:
            bills = session.scalars(
                select(CustomerBill)
                .where(CustomerBill.id.in_(due[start : start + chunk]), *watched_overdue(now))
                .order_by(CustomerBill.id)
                .with_for_update()
            )
            for bill in bills:
                bill.overdue_announced_at = now
                late = (now - bill.due_at).days
                record_change(
                    session,
                    principal,
                    at=now,
                    action=OVERDUE_EVENT,
                    target=("bill", bill.id),
                    tenant_id=bill.tenant_id,
                    before=None,
                    after=bill_view(bill),
                    reason=f"{late} days past its due date",
                    payload={
                        "type": OVERDUE_EVENT,
                        "id": str(bill.id),
                        "number": bill.number,
                        "period": bill.period,
                        "state": bill.state,
                        "due_at": bill.due_at.isoformat(),
                        "days_overdue": late,
                        "total_micros": bill.total_micros,
                        "paid_micros": bill.paid_micros,
                        "credited_micros": bill.credited_micros,
                        "due_micros": bill.due_micros,
                    },
                )
                announced.append(bill.id)
    return announced
