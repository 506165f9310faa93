"""Each device's fees on the bills of a run: what the statement shows next to its usage.

A bill's recurring line says "1,000 devices, prorated: 29,400 of 30,000 device-days"; a
customer reconciling it asks which devices those were, what each one's monthly fee came to,
and which of them it paid for without any traffic. The run that prices the bills writes, in
its transaction, one :class:`~satiot.bss.device_fee_models.BillDeviceFee` per device it charged
a fee: the same subscriptions, the same days and the same prices the bill's lines were summed
from (:mod:`satiot.bss.billing_sql`), so a bill's devices' fees add up to its lines before
they are rounded to the fen.

A million devices are read in (account, subscription) order, which is the order of the bills'
ids (numbered in account order) and so of the table's key: the rows go to the end of its index
rather than to a random page each, written a chunk at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from itertools import islice
from typing import Final

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from satiot.bss import billing_sql as q
from satiot.bss.models import CustomerBill, ProductOfferingPrice
from satiot.bss.money import prorate
from satiot.bss.periods import Period
from satiot.core.bulk import insert_rows

COLUMNS: Final = (
    "tenant_id",
    "bill_id",
    "subscription_id",
    "first_day",
    "last_day",
    "recurring_micros",
    "one_time_micros",
)
#: Rows written per statement (the read streams; the rows of a chunk are held at once).
CHUNK: Final = 20_000

#: An offering's fees as (kind, amount): its recurring and one-time prices.
Plan = Sequence[tuple[str, int]]


def device_fee(
    plans: dict[uuid.UUID, Plan],
    offering: str,
    add_ons: Sequence[str],
    days: int,
    days_in_month: int,
    new: bool,
) -> tuple[int, int]:
    """One device's (recurring, one-time) fees, in micro-yuan: each recurring price of its
    offering and add-ons prorated over ``days`` (as the bill's recurring lines are), and each
    one-time price if its service began in the month. Ids are text in either form: the
    database's (32 hex digits on SQLite) for the offering, the dashed one for add-ons."""
    recurring = one_time = 0
    for item in (offering, *add_ons):
        for kind, amount in plans.get(uuid.UUID(item), ()):
            if kind == "recurring":
                recurring += prorate(amount, days, days_in_month)
            elif kind == "one-time" and new:
                one_time += amount
    return recurring, one_time


def _plans(session: Session) -> dict[uuid.UUID, Plan]:
    """The fee prices of every offering: a catalog holds tens of offerings' versions, not
    thousands."""
    out: dict[uuid.UUID, list[tuple[str, int]]] = {}
    p = ProductOfferingPrice
    for offering, kind, amount in session.execute(
        select(p.offering_id, p.kind, p.amount_micros)
        .where(p.kind.in_(("recurring", "one-time")))
        .order_by(p.offering_id, p.id)
    ):
        out.setdefault(offering, []).append((kind, int(amount)))
    return dict(out)


def write_run_fees(
    session: Session,
    run_id: uuid.UUID,
    period: Period,
    accounts: Collection[uuid.UUID] | None,
) -> int:
    """Write the fees of every device on the bills of run ``run_id`` (over ``accounts``, or
    all); return how many rows were written."""
    bills = select(
        cast(CustomerBill.billing_account_id, String),
        cast(CustomerBill.id, String),
        cast(CustomerBill.tenant_id, String),
    ).where(CustomerBill.bill_run_id == run_id)
    bill_of = {account: (bill, tenant) for account, bill, tenant in session.execute(bills)}
    if not bill_of:
        return 0
    plans = _plans(session)
    rows = _rows(q.served_devices(session, period, accounts), bill_of, plans, period.days)
    written = 0
    while chunk := list(islice(rows, CHUNK)):
        written += insert_rows(session, "bill_device_fees", COLUMNS, chunk)
    return written


def _rows(
    devices: Iterator[tuple[str, str, str, tuple[str, ...], int, int, bool]],
    bill_of: dict[str, tuple[str, str]],
    plans: dict[uuid.UUID, Plan],
    month: int,
) -> Iterator[tuple[str, str, str, int, int, int, int]]:
    fees: dict[tuple[str, tuple[str, ...], int, int, bool], tuple[int, int]] = {}
    for sub_id, account, offering, add_ons, first, last, new in devices:
        billed = bill_of.get(account)
        if billed is None:  # billed for the month before this run
            continue
        key = (offering, add_ons, first, last, new)
        fee = fees.get(key)
        if fee is None:
            fee = fees[key] = device_fee(plans, offering, add_ons, last - first + 1, month, new)
        if fee[0] or fee[1]:
            yield billed[1], billed[0], sub_id, first, last, fee[0], fee[1]
