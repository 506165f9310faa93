"""A billing account's statement (对账单): every invoice, credit note, payment and refund in date
order, with what the customer owes after each, between an opening and a closing balance.

A customer's finance team reconciles its books against the operator's once a month or a
quarter, and an operator's against its bank: each asks "what do we owe, and how did it come
to that?". The bills list answers per bill; the statement answers per account and over time.
Amounts read from the customer's side: an invoice adds what it totals, a credit note takes off
its total, a payment takes off what was paid (a prepaid bill's payment from the balance too),
a refund (money paid back, or a prepaid credit returned to the balance) adds it back. Top-ups of
a prepaid balance are not bills' money and stay on the account's own page.

Only what the customer has seen counts: bills once sent, with their notes and payments. So the
closing balance on a statement that runs to today is what the account's bills still ask for
(less what they owe the customer), the sum of their ``due_micros``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.bss.invoices import CUSTOMER_VISIBLE
from satiot.bss.models import BillingAccount, CreditNote, CustomerBill, Payment
from satiot.bss.money import to_yuan
from satiot.bss.periods import zone
from satiot.core.csv_text import csv_file, safe_cell
from satiot.core.errors import InvalidInput, NotFound

COLUMNS: Final = (
    "date",
    "kind",
    "document",
    "invoice",
    "detail",
    "amount_yuan",
    "balance_yuan",
)
#: The order of entries of one instant: what is charged before what pays it.
_ORDER: Final = {"invoice": 0, "credit-note": 1, "refund": 2, "payment": 3}


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # invoice | credit-note | payment | refund
    document: str  # the invoice's or credit note's number, or the payment's reference
    invoice: str  # the invoice it concerns
    detail: str  # the invoice's period, the note's reason, the payment's method
    amount_micros: int  # what it adds to what the customer owes (below zero: takes off)
    balance_micros: int  # what the customer owes after it


@dataclass(frozen=True)
class Statement:
    account_id: uuid.UUID
    account_name: str
    start: date | None  # first day (business time zone); None: from the first entry
    end: date  # last day
    opening_micros: int
    closing_micros: int
    entries: list[Entry]


def statement(
    session: Session, account_id: uuid.UUID, *, start: date | None, end: date, tz: str
) -> Statement:
    """The account's statement from ``start`` to ``end`` (days in ``tz``, both included); the
    session's tenant scope decides whether the account is visible (404 otherwise)."""
    account = session.get(BillingAccount, account_id)
    if account is None:
        raise NotFound(f"no billing account {account_id}")
    if start is not None and start > end:
        raise InvalidInput(f"the statement starts ({start}) after it ends ({end})", field="from")
    local = zone(tz)
    until = datetime.combine(end + timedelta(days=1), time(), local)
    since = None if start is None else datetime.combine(start, time(), local)
    opening = 0
    entries: list[Entry] = []
    balance = 0
    for at, kind, document, invoice, detail, amount in sorted(
        _movements(session, account_id, until), key=lambda m: (m[0], _ORDER[m[1]], m[2])
    ):
        balance += amount
        if since is not None and at < since:
            opening = balance
            continue
        entries.append(Entry(at, kind, document, invoice, detail, amount, balance))
    return Statement(account_id, account.name, start, end, opening, balance, entries)


def _movements(
    session: Session, account_id: uuid.UUID, until: datetime
) -> Iterator[tuple[datetime, str, str, str, str, int]]:
    """(when, kind, document, invoice, detail, amount) of the account's visible bills, their
    notes and their payments, before ``until``."""
    visible = CustomerBill.state.in_(CUSTOMER_VISIBLE)
    for bill in session.scalars(
        select(CustomerBill).where(
            CustomerBill.billing_account_id == account_id, visible, CustomerBill.issued_at < until
        )
    ):
        yield bill.issued_at, "invoice", bill.number, bill.number, bill.period, bill.total_micros
    notes = session.execute(
        select(CreditNote, CustomerBill.number)
        .join(CustomerBill, CustomerBill.id == CreditNote.bill_id)
        .where(CreditNote.billing_account_id == account_id, CreditNote.issued_at < until)
    )
    for note, number in notes:
        yield note.issued_at, "credit-note", note.number, number, note.reason, -note.total_micros
    payments = session.execute(
        select(Payment, CustomerBill.number)
        .join(CustomerBill, CustomerBill.id == Payment.bill_id)
        .where(Payment.billing_account_id == account_id, visible, Payment.received_at < until)
    )
    for p, number in payments:
        kind = "payment" if p.amount_micros > 0 else "refund"
        yield p.received_at, kind, p.reference, number, p.method, -p.amount_micros


def file_name(s: Statement) -> str:
    since = s.start.isoformat() if s.start else "start"
    return f"satiot-statement-{s.account_id.hex[:8]}-{since}-{s.end.isoformat()}.csv"


def export_statement(s: Statement, tz: str) -> Iterator[bytes]:
    """The statement as CSV (a line per entry, opening and closing as lines of their own), as
    the bills export writes files (:func:`satiot.core.csv_text.csv_file`)."""
    local = zone(tz)

    def row(e: Entry) -> list[str]:
        return [
            e.at.astimezone(local).date().isoformat(),
            e.kind,
            safe_cell(e.document),
            e.invoice,
            safe_cell(e.detail),
            "" if e.kind in ("opening", "closing") else f"{to_yuan(e.amount_micros):.2f}",
            f"{to_yuan(e.balance_micros):.2f}",
        ]

    opening = Entry(
        datetime.combine(s.start or s.end, time(), local), "opening", "", "", "", 0,
        s.opening_micros,
    )  # fmt: skip
    closing = Entry(
        datetime.combine(s.end, time(), local), "closing", "", "", "", 0, s.closing_micros
    )
    yield from csv_file(COLUMNS, [[opening], s.entries, [closing]], row)
