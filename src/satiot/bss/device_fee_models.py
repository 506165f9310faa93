"""What each device was charged in fees on a bill: the per-device side of its recurring and
one-time lines.

Apart from :mod:`satiot.bss.models` because it is its own capability: written once by a bill
run (:mod:`satiot.bss.device_fees`) and read by a bill's device statement
(:mod:`satiot.bss.bill_statement`).
"""

from __future__ import annotations

import uuid

from sqlalchemy import SmallInteger, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from satiot.bss.models import Micros
from satiot.core.auth.tenancy import TenantScoped
from satiot.core.db import Base


class BillDeviceFee(TenantScoped, Base):
    """One device's fees on one bill: the days of the month it had service, its recurring
    charges prorated over those days, and its one-time charges (activation in the month),
    each exact in micro-yuan. A bill's recurring (one-time) lines, before rounding to the fen,
    are the sum of its devices' recurring (one-time) fees.

    A device's fees are kept as the run computed them rather than worked out again when the
    statement is read: the subscription's offering, add-ons or dates may change after the
    bill, and the statement must still add up to what was billed. A device with no fee (an
    offering charged by use only) has no row.

    Like a usage record, the row names its tenant, bill and subscription without foreign keys
    or an index of the tenant: the run that writes it is its only writer and takes them from
    the rows it has just written or read in the same transaction, and none is ever deleted; on
    PostgreSQL a key is a trigger per row, and a run writes one row per device (a million at
    month end). Rows are read by bill, from the key; the tenant, checked on each, keeps a
    reader scoped to one tenant from another's bills.
    """

    __tablename__ = "bill_device_fees"

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    bill_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    #: The first and last day of the bill's month with service (1-based, local days).
    first_day: Mapped[int] = mapped_column(SmallInteger)
    last_day: Mapped[int] = mapped_column(SmallInteger)
    recurring_micros: Mapped[int] = mapped_column(Micros)
    one_time_micros: Mapped[int] = mapped_column(Micros)
