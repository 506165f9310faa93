"""Payments, refunds and top-ups as one file, for holding against a bank statement.

A finance team ticks a month's incoming transfers off against the bank's statement, and books
refunds and prepaid top-ups beside them. The export streams every entry the list's filters
keep (:func:`satiot.bss.payments.listed`: kind, account, time received), oldest first, in
chunks read by key inside one read transaction, in the form of the other ledger files: UTF-8
with a byte-order mark, CRLF, amounts in yuan with two decimals and no symbol (a refund below
zero), China's dates and times, a leading ``'`` before a name a spreadsheet would run as a
formula.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.orm import Session

from satiot.bss.models import BillingAccount, Customer, CustomerBill, Payment
from satiot.bss.money import fen_text
from satiot.bss.payments import kind_of
from satiot.bss.periods import zone
from satiot.core.csv_text import csv_file, safe_cell
from satiot.core.days import business_day
from satiot.core.pagination import walk_rows

COLUMNS: Final = (
    "received_at",
    "kind",
    "amount_yuan",
    "method",
    "reference",
    "bill_number",
    "bill_period",
    "customer",
    "customer_credit_code",
    "billing_account",
    "recorded_by",
    "payment_id",
)
#: Entries read per statement.
CHUNK: Final = 1_000
_READ: Final = (
    Payment.id,
    Payment.received_at,
    Payment.bill_id,
    Payment.amount_micros,
    Payment.method,
    Payment.reference,
    Payment.recorded_by,
    CustomerBill.number.label("bill_number"),
    CustomerBill.period,
    BillingAccount.name.label("account"),
    Customer.name.label("customer"),
    Customer.uscc,
)


def export_payments(
    session: Session,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    tz: str,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The CSV file, header first, then a piece per chunk of entries (oldest first) that the
    session sees and ``where`` keeps, times in the business time zone ``tz``; ``progress``
    is told each chunk's count."""
    local = zone(tz)
    stmt = (
        select(*_READ)
        .outerjoin(CustomerBill, CustomerBill.id == Payment.bill_id)
        .join(BillingAccount, BillingAccount.id == Payment.billing_account_id)
        .join(Customer, Customer.id == BillingAccount.customer_id)
        .where(*where)
    )

    def row(p: Row[*tuple[Any, ...]]) -> list[str]:
        return [
            p.received_at.astimezone(local).strftime("%Y-%m-%d %H:%M:%S"),
            kind_of(p.bill_id, p.amount_micros),
            fen_text(p.amount_micros),
            safe_cell(p.method),
            safe_cell(p.reference),
            p.bill_number or "",
            p.period or "",
            safe_cell(p.customer),
            p.uscc,
            safe_cell(p.account),
            safe_cell(p.recorded_by),
            str(p.id),
        ]

    return csv_file(COLUMNS, walk_rows(session, stmt, Payment.id, chunk), row, progress)


def file_name(period: str | None, now: datetime) -> str:
    """What a download is saved as: named for the month received, else for China's day."""
    if period:
        return f"satiot-payments-{period}.csv"
    return f"satiot-payments-{business_day(now):%Y%m%d}.csv"
