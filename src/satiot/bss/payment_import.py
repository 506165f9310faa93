"""Payments imported from a CSV file: a bank statement's transfers recorded against bills.

A finance team learns of payments from its bank, a few thousand lines a month, each naming
the invoice the customer wrote in its transfer. Typing them in one at a time is where
payments get lost or recorded twice, so the statement is imported whole. The columns are named
on the header line, in any order and any case:

==================  ========  ===============================================================
column              needed    meaning
==================  ========  ===============================================================
``bill``            yes       the invoice number (``SAT2026-00000042``) or the bill's id
``amount``          yes       yuan received, at most two decimals (``1,060.00``)
``reference``       yes       the bank's reference of the transfer (what a retry is matched by)
``method``          no        how it was paid (default ``bank-transfer``)
``received_on``     no        the day the money arrived, ``YYYY-MM-DD`` (default: today)
==================  ========  ===============================================================

Every line is checked, and every payment on a readable line tried, before anything is kept: a
file with any bad line is refused as a whole with every bad line named at once, those the file
itself gets wrong and those the bills refuse (:class:`PaymentImportRejected`), so a file fixed
and sent again is recorded exactly once. Each payment is recorded as ``POST
/bills/{id}/payments`` records one (:mod:`satiot.bss.payments`), so a reference already
recorded with the same bill and amount counts as *already recorded* and is not taken twice:
importing the same statement again changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Final

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from satiot.bss.models import CustomerBill, Payment
from satiot.bss.money import yuan_amount
from satiot.bss.payments import pay, same_payment
from satiot.bss.periods import zone
from satiot.core.auth.principal import Principal
from satiot.core.csv_text import (
    FileRejected,
    RowError,
    UnreadableText,
    decode_file,
    header_only,
    named_rows,
)
from satiot.core.errors import DomainError, InvalidInput
from satiot.core.lengths import plain_text

#: The columns, in the order a template lists them.
COLUMNS: Final = ("bill", "amount", "reference", "method", "received_on")
REQUIRED: Final = COLUMNS[:3]
#: The most lines a file may hold: one transaction records them all.
MAX_ROWS: Final = 20_000
DEFAULT_METHOD: Final = "bank-transfer"
#: What a downloaded template is saved as.
TEMPLATE_NAME: Final = "satiot-payments.csv"


class PaymentImportRejected(FileRejected):
    """The file is refused as a whole; ``rows`` names every bad line (nothing was recorded)."""

    slug = "payment-import-rejected"
    title = "Payment import rejected"
    done = "recorded"


@dataclass(frozen=True)
class PaymentLine:
    """One line of the file, checked: what it asks to record."""

    line: int
    bill: str
    amount_micros: int
    reference: str
    method: str
    received_on: date | None


@dataclass(frozen=True)
class ParsedPayments:
    """The readable lines of a file, and why the others cannot be read."""

    lines: list[PaymentLine]
    errors: list[RowError]


@dataclass(frozen=True)
class ImportResult:
    recorded: int
    already: int
    amount_micros: int  # of the payments recorded now
    settled: int  # bills this import's new payments left settled


def template() -> bytes:
    """An empty statement to fill in (see :func:`~satiot.core.csv_text.header_only`)."""
    return header_only(COLUMNS)


def read_payments(data: bytes, *, encoding: str, at: datetime, tz: str) -> ParsedPayments:
    """The payments a file lists, every line checked; PaymentImportRejected for a file that
    cannot be read at all (no CSV text, a bad header, no lines), and ValueError an unknown
    encoding."""
    try:
        text = decode_file(data, encoding)
    except UnreadableText as exc:
        raise PaymentImportRejected([RowError(exc.line, "", exc.reason)]) from None
    return parse_payments(text, today=at.astimezone(zone(tz)).date())


def parse_payments(text: str, *, today: date) -> ParsedPayments:
    """The lines of a statement (see the module), checked on their own: amounts, references
    (once each in the file), methods and days (none after ``today``). The bad ones are kept
    as errors, so that :func:`import_payments` names them with those the bills refuse."""
    read = named_rows(text, COLUMNS, REQUIRED, max_rows=MAX_ROWS, rejected=PaymentImportRejected)
    errors = read.errors
    found: list[PaymentLine] = []
    seen: dict[str, int] = {}
    for line, cells in read.rows:
        checked = _line(line, cells, today)
        if isinstance(checked, RowError):
            errors.append(checked)
            continue
        earlier = seen.setdefault(checked.reference, line)
        if earlier != line:
            errors.append(RowError(line, "reference", f"reference already on line {earlier}"))
            continue
        found.append(checked)
    if not found and not errors:
        raise PaymentImportRejected([RowError(2, "", "the file holds no payments")])
    return ParsedPayments(found, errors)


def _line(line: int, cells: dict[str, str], today: date) -> PaymentLine | RowError:
    try:
        if not cells["bill"]:
            raise InvalidInput("bill must name an invoice number or a bill id", field="bill")
        amount = yuan_amount(cells["amount"], "amount", example="1060.00")
        reference = plain_text(cells["reference"], Payment.reference, "reference")
        method = plain_text(cells.get("method") or DEFAULT_METHOD, Payment.method, "method")
    except InvalidInput as exc:
        return RowError(line, str(exc.extensions.get("field", "")), exc.detail)
    received: date | None = None
    if cells.get("received_on"):
        try:
            received = date.fromisoformat(cells["received_on"])
        except ValueError:
            reason = f"received_on {cells['received_on']!r} is not a date (YYYY-MM-DD)"
            return RowError(line, "received_on", reason)
        if received > today:
            return RowError(line, "received_on", f"received_on {received} is after today")
    return PaymentLine(line, cells["bill"], amount, reference, method, received)


def import_payments(
    session: Session,
    principal: Principal,
    parsed: ParsedPayments,
    *,
    at: datetime,
    tz: str,
) -> ImportResult:
    """Record every line's payment in ``session``'s transaction, or none: a line the file gets
    wrong, or one the bills refuse (unknown, not sent, more than is owed, a reference recorded
    for another payment), raises PaymentImportRejected naming all of them, and the caller's
    transaction rolls back."""
    bills = _bills(session, [x.bill for x in parsed.lines])
    named = [(x, bills.get(_key(x.bill))) for x in parsed.lines]
    earlier = _earlier_payments(
        session, ((bill.billing_account_id, x.reference) for x, bill in named if bill is not None)
    )
    errors: list[RowError] = list(parsed.errors)
    recorded = already = amount = 0
    paid: dict[uuid.UUID, CustomerBill] = {}
    for x, bill in named:
        if bill is None:
            errors.append(RowError(x.line, "bill", f"no bill {x.bill!r}"))
            continue
        received = None
        if x.received_on is not None:
            received = datetime.combine(x.received_on, time(), zone(tz))
        try:
            # As record_payment records one, from the bills and payments read above: each
            # refusal comes before anything is written, so the lines after it are still tried
            # against what is really owed.
            found = same_payment(
                earlier.get((bill.billing_account_id, x.reference)),
                x.reference,
                bill.id,
                x.amount_micros,
            )
            if found is not None:
                already += 1
                continue
            made = pay(
                session, principal, bill, x.amount_micros, x.method, x.reference, at, received,
                flush=False,
            )  # fmt: skip
        except DomainError as exc:
            errors.append(RowError(x.line, _column(exc), exc.detail))
            continue
        earlier[(bill.billing_account_id, x.reference)] = made
        paid[bill.id] = bill
        recorded += 1
        amount += x.amount_micros
    if errors:
        raise PaymentImportRejected(errors)
    settled = sum(1 for bill in paid.values() if bill.state == "settled")
    return ImportResult(recorded, already, amount, settled)


def _key(ref: str) -> uuid.UUID | str:
    """A bill as the file names it, as looked up: its id, or its number in capitals."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        return ref.strip().upper()


def _bills(session: Session, refs: Sequence[str]) -> dict[uuid.UUID | str, CustomerBill]:
    """The bills the file names, by :func:`_key` (id and number), read under lock in id order
    (as payments of one bill are serialised), a thousand at a time."""
    keys = {_key(r) for r in refs}
    ids = [k for k in keys if isinstance(k, uuid.UUID)]
    numbers = [k for k in keys if isinstance(k, str)]
    out: dict[uuid.UUID | str, CustomerBill] = {}
    for column, values in ((CustomerBill.number, numbers), (CustomerBill.id, ids)):
        for i in range(0, len(values), 1000):
            found = session.scalars(
                select(CustomerBill)
                .where(column.in_(values[i : i + 1000]))
                .order_by(CustomerBill.id)
                .with_for_update()
            )
            for bill in found:
                out[bill.number] = out[bill.id] = bill
    return out


def _earlier_payments(
    session: Session, pairs: Iterable[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], Payment]:
    """The payments recorded before under these (account, reference) pairs, read from the
    unique index that holds them, 500 pairs at a time."""
    wanted = sorted(set(pairs))
    out: dict[tuple[uuid.UUID, str], Payment] = {}
    for i in range(0, len(wanted), 500):
        key = tuple_(Payment.billing_account_id, Payment.reference)
        for p in session.scalars(select(Payment).where(key.in_(wanted[i : i + 500]))):
            out[(p.billing_account_id, p.reference)] = p
    return out


def _column(exc: DomainError) -> str:
    """The file's column a refusal is about (the payment's own field names differ)."""
    field = str(exc.extensions.get("field", ""))
    return {"amount_micros": "amount"}.get(field, field or "bill")
