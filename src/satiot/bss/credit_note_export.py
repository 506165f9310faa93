"""The credit notes as a register: one line per note, for the accounts department.

A finance team books each month's red-letter invoices beside its invoices (the bills export,
:mod:`satiot.bss.bill_export`): which note, when, against which invoice of which customer, how
much before VAT, the VAT and the total, and why. The export streams every note the filters
keep (the month it was issued in, in the business time zone; a billing account) as CSV in
chunks read by key inside one read transaction, as the bills export does, in the same file
form: UTF-8 with a byte-order mark, CRLF, amounts in yuan with two decimals and no symbol,
China's dates, a leading ``'`` before a name a spreadsheet would run as a formula.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.orm import Session

from satiot.bss.models import BillingAccount, CreditNote, Customer, CustomerBill
from satiot.bss.money import fen_text
from satiot.bss.periods import period_bounds
from satiot.core.csv_text import csv_file, safe_cell
from satiot.core.days import business_day
from satiot.core.pagination import walk_rows

COLUMNS: Final = (
    "number",
    "issued_on",
    "bill_number",
    "bill_period",
    "customer",
    "customer_credit_code",
    "billing_account",
    "credited_before_vat_yuan",
    "vat_yuan",
    "total_credited_yuan",
    "returned_to_balance_yuan",
    "reason",
    "issued_by",
)
#: Notes read per statement.
CHUNK: Final = 1_000
_READ: Final = (
    CreditNote.id,
    CreditNote.number,
    CreditNote.issued_at,
    CreditNote.subtotal_micros,
    CreditNote.tax_micros,
    CreditNote.total_micros,
    CreditNote.returned_micros,
    CreditNote.reason,
    CreditNote.issued_by,
    CustomerBill.number.label("bill_number"),
    CustomerBill.period,
    BillingAccount.name.label("account"),
    Customer.name.label("customer"),
    Customer.uscc,
)


def note_filters(
    *, month: str | None, account_id: uuid.UUID | None, tz: str
) -> list[ColumnElement[bool]]:
    """The criteria of a list of credit notes (and of its export): issued in ``month``
    (``YYYY-MM`` in the business time zone ``tz``; checked here), of one billing account."""
    where: list[ColumnElement[bool]] = []
    if month is not None:
        bounds = period_bounds(month, tz)
        where += [CreditNote.issued_at >= bounds.start, CreditNote.issued_at < bounds.end]
    if account_id is not None:
        where.append(CreditNote.billing_account_id == account_id)
    return where


def export_notes(
    session: Session,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The CSV file, header first, then a piece per chunk of notes (oldest first) that the
    session sees and ``where`` keeps; ``progress`` is told each chunk's count."""
    stmt = (
        select(*_READ)
        .join(CustomerBill, CustomerBill.id == CreditNote.bill_id)
        .join(BillingAccount, BillingAccount.id == CreditNote.billing_account_id)
        .join(Customer, Customer.id == BillingAccount.customer_id)
        .where(*where)
    )
    return csv_file(COLUMNS, walk_rows(session, stmt, CreditNote.id, chunk), _row, progress)


def _row(n: Row[*tuple[Any, ...]]) -> list[str]:
    return [
        n.number,
        business_day(n.issued_at).isoformat(),
        n.bill_number,
        n.period,
        safe_cell(n.customer),
        n.uscc,
        safe_cell(n.account),
        fen_text(n.subtotal_micros),
        fen_text(n.tax_micros),
        fen_text(n.total_micros),
        fen_text(n.returned_micros),
        safe_cell(n.reason),
        safe_cell(n.issued_by),
    ]


def file_name(month: str | None, now: datetime) -> str:
    """What a download is saved as: named for the month exported, else for China's day."""
    if month:
        return f"satiot-credit-notes-{month}.csv"
    return f"satiot-credit-notes-{business_day(now):%Y%m%d}.csv"
