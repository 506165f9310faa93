"""The bills as a spreadsheet: one line per invoice, for the accounts department.

At month end a finance team books the month's invoices into its ledger and chases what is
unpaid, from a file, not from pages of a list. The export streams every bill the filters keep
(a period, a state, an account) as CSV in chunks read by key, each chunk one statement that
also names the account and the customer, inside one read transaction, so the file is one
consistent picture however long the download takes.

Amounts are yuan with two decimals and no symbol, as a spreadsheet sums them (a credit
adjustment below zero); dates are China's. The file is UTF-8 with a byte-order mark and CRLF
line ends; a name a spreadsheet would run as a formula gets a leading ``'``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.orm import Session

from satiot.bss.models import BillingAccount, Customer, CustomerBill
from satiot.bss.money import fen_text
from satiot.core.csv_text import csv_file, safe_cell
from satiot.core.days import business_day
from satiot.core.pagination import walk_rows

COLUMNS: Final = (
    "number",
    "period",
    "state",
    "customer",
    "customer_credit_code",
    "billing_account",
    "issued_on",
    "due_on",
    "recurring_yuan",
    "usage_yuan",
    "one_time_yuan",
    "adjustments_yuan",
    "subtotal_yuan",
    "vat_rate_pct",
    "vat_yuan",
    "total_yuan",
    "paid_yuan",
    "credited_yuan",
    "balance_due_yuan",
)
#: Bills read per statement.
CHUNK: Final = 1_000
_READ: Final = (
    CustomerBill.id,
    CustomerBill.number,
    CustomerBill.period,
    CustomerBill.state,
    CustomerBill.issued_at,
    CustomerBill.due_at,
    CustomerBill.recurring_micros,
    CustomerBill.usage_micros,
    CustomerBill.one_time_micros,
    CustomerBill.adjustment_micros,
    CustomerBill.subtotal_micros.label("subtotal"),
    CustomerBill.tax_rate_bp,
    CustomerBill.tax_micros,
    CustomerBill.total_micros,
    CustomerBill.paid_micros,
    CustomerBill.credited_micros,
    BillingAccount.name.label("account"),
    Customer.name.label("customer"),
    Customer.uscc,
)


def export_bills(
    session: Session,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The CSV file, header first, then a piece per chunk of bills (oldest first) that the
    session sees and ``where`` keeps; ``progress`` is told each chunk's count."""
    stmt = (
        select(*_READ)
        .join(BillingAccount, BillingAccount.id == CustomerBill.billing_account_id)
        .join(Customer, Customer.id == BillingAccount.customer_id)
        .where(*where)
    )
    return csv_file(COLUMNS, walk_rows(session, stmt, CustomerBill.id, chunk), _row, progress)


def _row(b: Row[*tuple[Any, ...]]) -> list[str]:
    return [
        b.number,
        b.period,
        b.state,
        safe_cell(b.customer),
        b.uscc,
        safe_cell(b.account),
        business_day(b.issued_at).isoformat(),
        business_day(b.due_at).isoformat(),
        fen_text(b.recurring_micros),
        fen_text(b.usage_micros),
        fen_text(b.one_time_micros),
        fen_text(b.adjustment_micros),
        fen_text(b.subtotal),
        f"{b.tax_rate_bp / 100:g}",
        fen_text(b.tax_micros),
        fen_text(b.total_micros),
        fen_text(b.paid_micros),
        fen_text(b.credited_micros),
        fen_text(b.total_micros - b.paid_micros - b.credited_micros),
    ]


def file_name(period: str | None, now: datetime) -> str:
    """What a download is saved as: named for the period exported, else for China's day."""
    if period:
        return f"satiot-bills-{period}.csv"
    return f"satiot-bills-{business_day(now):%Y%m%d}.csv"
