"""Credit notes: billing staff correct a bill the customer has already received.

Before validation a bill is corrected in place (:mod:`satiot.bss.bill_adjustments`). Once sent,
its figures are what the customer holds and what the tax system was told, so they stay; a
correction is a separate document, numbered in its own gap-free series
(``<prefix>CN<year>-<8 digits>``, as tax rules ask of red-letter invoices, 红字发票), that says
how much is credited before VAT, the VAT that goes with it and why. The bill keeps the sum
(``credited_micros``), and what the customer still owes is its total less payments and credits.

The VAT of a credit is worked out on everything credited so far, less what earlier notes
already took, so that crediting a bill's whole subtotal in any number of notes gives back
exactly the VAT it charged. A bill is never credited beyond its subtotal.

Where the money goes: on a postpaid bill a credit lowers what is owed, and a bill owed nothing
more is settled; a credit beyond what is still owed leaves the bill owing the customer (what
is due falls below zero) until billing staff record the refund that pays it back
(:func:`satiot.bss.payments.record_refund`). A prepaid bill was paid from the balance when it
was sent, so its credit goes back to the balance at once (a payment below zero on the bill, so
that the bill's payments still add up to what it was paid), and service stopped at a zero
balance starts again. Each note is audited and announced as ``bill.credited``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.bss.bill_adjustments import MAX_ADJUSTMENT_MICROS, one_line_reason
from satiot.bss.invoices import CUSTOMER_VISIBLE, bill_view, get_bill, move, take_numbers
from satiot.bss.models import OWING_STATES, BillingAccount, CreditNote, CustomerBill, Payment
from satiot.bss.money import MICROS_PER_FEN, format_cny, vat_micros
from satiot.bss.payments import resume_stopped
from satiot.bss.periods import zone
from satiot.bss.rating_store import debit_prepaid
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound


class CreditNoteNotFound(NotFound):
    slug = "credit-note-not-found"
    title = "Credit note not found"


#: The bills a credit note corrects: those the customer has received.
CREDITABLE: Final = CUSTOMER_VISIBLE


def credit_series(prefix: str, at: datetime, tz: str) -> str:
    """The series credit notes issued at ``at`` are numbered in (one per business year)."""
    return f"{prefix}CN{at.astimezone(zone(tz)).year}"


def _checked_amount(amount_micros: int) -> int:
    if amount_micros <= 0:
        raise InvalidInput("a credit note credits an amount above ¥0.00", field="amount")
    if amount_micros % MICROS_PER_FEN:
        raise InvalidInput("amount has more than two decimals", field="amount")
    if amount_micros > MAX_ADJUSTMENT_MICROS:
        raise InvalidInput(f"amount is beyond {format_cny(MAX_ADJUSTMENT_MICROS)}", field="amount")
    return amount_micros


def credited_before_vat(session: Session, bill_id: uuid.UUID) -> int:
    """What the bill's credit notes credited so far, before VAT."""
    total = session.scalar(
        select(func.coalesce(func.sum(CreditNote.subtotal_micros), 0)).where(
            CreditNote.bill_id == bill_id
        )
    )
    return int(total or 0)


def get_note(session: Session, note_id: uuid.UUID) -> CreditNote:
    """One credit note the session sees; :class:`CreditNoteNotFound` otherwise."""
    note = session.get(CreditNote, note_id)
    if note is None:
        raise CreditNoteNotFound(f"no credit note {note_id}")
    return note


def notes_of(session: Session, bill_id: uuid.UUID) -> list[CreditNote]:
    """A bill's credit notes, in the order they were issued."""
    return list(
        session.scalars(
            select(CreditNote).where(CreditNote.bill_id == bill_id).order_by(CreditNote.number)
        )
    )


def issue_credit_note(
    session: Session,
    principal: Principal,
    bill_id: uuid.UUID,
    *,
    amount_micros: int,
    reason: str,
    at: datetime,
    series_prefix: str,
    tz: str,
) -> CreditNote:
    """Credit ``amount_micros`` (before VAT) on a bill the customer has received; see the
    module's docstring for the VAT, the limits and where the money goes."""
    why = one_line_reason(reason, CreditNote.reason, "say why the bill is credited")
    amount = _checked_amount(amount_micros)
    bill = get_bill(session, bill_id, for_update=True)  # serialises a bill's notes and payments
    if bill.state not in CREDITABLE:
        raise Conflict(
            f"bill {bill.number} is {bill.state}: a credit note corrects a bill the customer "
            "has received; adjust a bill that is not yet validated",
            field="amount",
        )
    before_vat = credited_before_vat(session, bill.id)
    left = bill.subtotal_micros - before_vat
    if amount > left:
        raise InvalidInput(
            f"a credit of {format_cny(amount)} is more than the {format_cny(left)} of the "
            "bill's subtotal not yet credited",
            field="amount",
        )
    tax = vat_micros(before_vat + amount, bill.tax_rate_bp) - vat_micros(
        before_vat, bill.tax_rate_bp
    )
    total = amount + tax
    account = session.scalar(
        select(BillingAccount).where(BillingAccount.id == bill.billing_account_id).with_for_update()
    )
    assert account is not None  # a bill's key
    prepaid = account.payment_mode == "prepaid"
    due = bill.due_micros
    returned = max(0, total - max(due, 0)) if prepaid else 0
    series = credit_series(series_prefix, at, tz)
    first = take_numbers(session, series, 1)
    before = bill_view(bill)
    note = CreditNote(
        tenant_id=bill.tenant_id,
        bill_id=bill.id,
        billing_account_id=bill.billing_account_id,
        number=f"{series}-{first:08d}",
        subtotal_micros=amount,
        tax_micros=tax,
        total_micros=total,
        returned_micros=returned,
        reason=why,
        issued_at=at,
        issued_by=principal.actor,
    )
    session.add(note)
    bill.credited_micros += total
    if returned:
        _return_to_balance(session, principal, bill, note, at)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="bill.credited",
        target=("bill", bill.id),
        tenant_id=bill.tenant_id,
        before=before,
        after=bill_view(bill),
        reason=why,
        payload={
            "type": "bill.credited",
            "id": str(bill.id),
            "number": bill.number,
            "credit_note_id": str(note.id),
            "credit_note_number": note.number,
            "subtotal_micros": amount,
            "tax_micros": tax,
            "total_micros": total,
            "returned_micros": returned,
            "credited_micros": bill.credited_micros,
            "due_micros": bill.due_micros,
        },
    )
    if bill.state in OWING_STATES and bill.due_micros <= 0:  # nothing owed: settled
        move(session, principal, bill, "settled", at=at, reason=f"credit note {note.number}",
             system=True)  # fmt: skip
    return note


def _return_to_balance(
    session: Session, principal: Principal, bill: CustomerBill, note: CreditNote, at: datetime
) -> None:
    """A prepaid bill's credit beyond what is owed goes back to the balance it was paid from."""
    returned = note.returned_micros
    session.add(
        Payment(
            tenant_id=bill.tenant_id,
            billing_account_id=bill.billing_account_id,
            bill_id=bill.id,
            amount_micros=-returned,
            method="prepaid-balance",
            reference=f"credit:{note.number}",
            received_at=at,
            recorded_by=principal.actor,
        )
    )
    bill.paid_micros -= returned
    session.flush()
    debit_prepaid(
        session, {bill.billing_account_id: -returned}, at, kind="credit", reference=note.number
    )
    balance = session.scalar(
        select(BillingAccount.balance_micros).where(BillingAccount.id == bill.billing_account_id)
    )
    if balance is not None and balance > 0:
        resume_stopped(
            session, principal, bill.billing_account_id, at, "prepaid balance credited by a note"
        )
