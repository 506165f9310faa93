"""Payments: money against a sent bill (postpaid), top-ups of a prepaid balance.

A payment's ``reference`` (the bank transfer's serial, the payment gateway's id) is unique per
billing account, so recording the same payment twice records it once: a repeat with the same
amount and target returns the first, a different one under the same reference is a conflict.
A bill moves ``sent`` → ``partiallyPaid`` → ``settled`` as payments add up; paying more than is
outstanding (the total less payments and credit notes, :mod:`satiot.bss.credit_notes`) is
refused. When credit notes took off more than was left to pay, the bill owes the customer the
difference, and a refund (a payment below zero) records the money paid back.

Prepaid accounts pay from their balance: rating debits usage as it is rated, and when their
monthly bill is sent the rest (recurring and one-time charges, VAT, rounding) is debited and
the bill settled at once. A balance at or below zero suspends the subscriptions whose contract
says ``stop_at_zero_balance``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from satiot.bss.invoices import get_bill, move
from satiot.bss.ledger_models import BalanceEntry
from satiot.bss.models import (
    OWING_STATES,
    BillingAccount,
    CustomerBill,
    Payment,
    Subscription,
    UsageRecord,
)
from satiot.bss.money import format_cny
from satiot.bss.periods import DEFAULT_TZ, period_bounds
from satiot.bss.rating_store import debit_prepaid
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.core.ids import new_id
from satiot.core.lengths import plain_text

PAYABLE = OWING_STATES
#: Largest prepaid balance (¥1 trillion): far from the 64-bit column's limit.
MAX_BALANCE_MICROS = 10**18


def payment_view(p: Payment) -> dict[str, Any]:
    return {
        "billing_account_id": str(p.billing_account_id),
        "bill_id": str(p.bill_id) if p.bill_id else None,
        "amount_micros": p.amount_micros,
        "method": p.method,
        "reference": p.reference,
    }


def _existing(
    session: Session, account_id: uuid.UUID, reference: str, bill_id: uuid.UUID | None, amount: int
) -> Payment | None:
    found = session.scalar(
        select(Payment).where(
            Payment.billing_account_id == account_id, Payment.reference == reference
        )
    )
    return same_payment(found, reference, bill_id, amount)


def same_payment(
    found: Payment | None, reference: str, bill_id: uuid.UUID | None, amount: int
) -> Payment | None:
    """``found`` (the account's payment under ``reference``, if any) when it is this very
    payment again; a conflict when the reference records another one."""
    if found is None:
        return None
    if found.bill_id != bill_id or found.amount_micros != amount:
        raise Conflict(
            f"reference {reference!r} already records another payment of this account "
            f"({format_cny(found.amount_micros)})"
        )
    return found


def _check(amount: int, method: str, reference: str) -> str:
    """The trimmed ``method``, once it and ``reference`` are known to be one line of plain
    text: both are listed with the bill and the account's payments and audited
    (``plain_text``). The reference is kept as given, since it is what a retry is matched by
    (:func:`_existing`)."""
    if amount <= 0:
        raise InvalidInput("amount must be positive", field="amount_micros")
    plain_text(reference, Payment.reference, "reference")
    return plain_text(method, Payment.method, "method")


def record_payment(
    session: Session,
    principal: Principal,
    bill_id: uuid.UUID,
    *,
    amount_micros: int,
    method: str,
    reference: str,
    at: datetime,
    received_at: datetime | None = None,
) -> tuple[Payment, bool]:
    """Record a payment against a sent bill; return it and whether it is new."""
    method = _check(amount_micros, method, reference)
    bill = get_bill(session, bill_id, for_update=True)  # serialises payments of one bill
    found = _existing(session, bill.billing_account_id, reference, bill.id, amount_micros)
    if found is not None:
        return found, False
    return pay(session, principal, bill, amount_micros, method, reference, at, received_at), True


def pay(
    session: Session,
    principal: Principal,
    bill: CustomerBill,
    amount_micros: int,
    method: str,
    reference: str,
    at: datetime,
    received_at: datetime | None,
    *,
    flush: bool = True,
) -> Payment:
    """A new payment of a bill read under lock, its ``method`` and ``reference`` checked and
    the reference new to the account (:func:`record_payment`; a statement's import reads its
    bills and references in bulk). ``flush=False`` leaves the payment's row to the next flush:
    its id is given here, so nothing needs it earlier."""
    if bill.state not in PAYABLE:
        raise Conflict(f"bill {bill.number} is {bill.state}; payments are taken on sent bills")
    outstanding = bill.due_micros
    if amount_micros > outstanding:
        raise InvalidInput(
            f"{format_cny(amount_micros)} is more than the {format_cny(outstanding)} outstanding",
            field="amount_micros",
        )
    payment = Payment(
        id=new_id(),
        tenant_id=bill.tenant_id,
        billing_account_id=bill.billing_account_id,
        bill_id=bill.id,
        amount_micros=amount_micros,
        method=method,
        reference=reference,
        received_at=received_at or at,
        recorded_by=principal.actor,
    )
    session.add(payment)
    if flush:
        session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="payment.recorded",
        target=("payment", payment.id),
        tenant_id=bill.tenant_id,
        after=payment_view(payment),
    )
    bill.paid_micros += amount_micros
    _settle_state(session, principal, bill, at)
    return payment


def record_refund(
    session: Session,
    principal: Principal,
    bill_id: uuid.UUID,
    *,
    amount_micros: int,
    method: str,
    reference: str,
    at: datetime,
) -> tuple[Payment, bool]:
    """Record money paid back to the customer of a bill that owes it (credit notes took off
    more than was left to pay); return the refund and whether it is new.

    A refund is a payment below zero on the bill, under the same rule of one reference per
    account, so that a repeat records it once and the bill's payments still add up to what it
    was paid. It pays back at most what the bill owes the customer."""
    method = _check(amount_micros, method, reference)
    bill = get_bill(session, bill_id, for_update=True)
    found = _existing(session, bill.billing_account_id, reference, bill.id, -amount_micros)
    if found is not None:
        return found, False
    owed_back = -bill.due_micros
    if owed_back <= 0:
        raise Conflict(f"bill {bill.number} owes the customer nothing to refund")
    if amount_micros > owed_back:
        raise InvalidInput(
            f"{format_cny(amount_micros)} is more than the {format_cny(owed_back)} the bill "
            "owes the customer",
            field="amount_micros",
        )
    refund = Payment(
        tenant_id=bill.tenant_id,
        billing_account_id=bill.billing_account_id,
        bill_id=bill.id,
        amount_micros=-amount_micros,
        method=method,
        reference=reference,
        received_at=at,
        recorded_by=principal.actor,
    )
    session.add(refund)
    session.flush()
    before = bill.paid_micros
    bill.paid_micros -= amount_micros
    record_change(
        session,
        principal,
        at=at,
        action="bill.refunded",
        target=("bill", bill.id),
        tenant_id=bill.tenant_id,
        before={"paid_micros": before},
        after={"paid_micros": bill.paid_micros, "reference": reference},
        payload={
            "type": "bill.refunded",
            "id": str(bill.id),
            "number": bill.number,
            "amount_micros": amount_micros,
            "reference": reference,
            "due_micros": bill.due_micros,
        },
    )
    return refund, True


def _settle_state(session: Session, principal: Principal, bill: CustomerBill, at: datetime) -> None:
    if bill.due_micros <= 0:
        move(session, principal, bill, "settled", at=at, system=True)
    elif bill.state == "sent":
        move(session, principal, bill, "partiallyPaid", at=at, system=True)


def _account(session: Session, account_id: uuid.UUID) -> BillingAccount:
    account = session.scalar(
        select(BillingAccount).where(BillingAccount.id == account_id).with_for_update()
    )
    if account is None:
        raise NotFound(f"no billing account {account_id}")
    return account


def top_up(
    session: Session,
    principal: Principal,
    account_id: uuid.UUID,
    *,
    amount_micros: int,
    method: str,
    reference: str,
    at: datetime,
) -> tuple[Payment, bool]:
    """Add to a prepaid account's balance; return the payment and whether it is new."""
    method = _check(amount_micros, method, reference)
    account = _account(session, account_id)
    found = _existing(session, account.id, reference, None, amount_micros)
    if found is not None:
        return found, False
    if account.payment_mode != "prepaid":
        raise Conflict("only a prepaid account takes top-ups; pay a postpaid account's bills")
    if account.balance_micros + amount_micros > MAX_BALANCE_MICROS:
        raise InvalidInput(
            f"the balance would exceed {format_cny(MAX_BALANCE_MICROS)}", field="amount_micros"
        )
    payment = Payment(
        tenant_id=account.tenant_id,
        billing_account_id=account.id,
        bill_id=None,
        amount_micros=amount_micros,
        method=method,
        reference=reference,
        received_at=at,
        recorded_by=principal.actor,
    )
    session.add(payment)
    before = account.balance_micros
    account.balance_micros += amount_micros
    session.add(
        BalanceEntry(
            tenant_id=account.tenant_id,
            billing_account_id=account.id,
            at=at,
            kind="top-up",
            amount_micros=amount_micros,
            balance_micros=account.balance_micros,
            reference=reference,
        )
    )
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="billing-account.topped-up",
        target=("billing-account", account.id),
        tenant_id=account.tenant_id,
        before={"balance_micros": before},
        after={"balance_micros": account.balance_micros, "reference": reference},
    )
    if account.balance_micros > 0:
        resume_stopped(session, principal, account.id, at)
    return payment, True


def resume_stopped(
    session: Session,
    principal: Principal,
    account_id: uuid.UUID,
    at: datetime,
    why: str = "prepaid balance topped up",
) -> list[uuid.UUID]:
    """Service stopped at a zero balance returns once the balance is above zero again (the
    operator's system does it for whoever topped up: a customer could not lift it itself)."""
    from satiot.bss.activation import on_behalf
    from satiot.bss.subscriptions import resume_subscription

    stopped = list(
        session.scalars(
            select(Subscription.id)
            .where(
                Subscription.billing_account_id == account_id,
                Subscription.status == "suspended",
                Subscription.suspended_by == "balance",
            )
            .order_by(Subscription.id)
        )
    )
    acting = on_behalf(principal, "top-up")
    for sub_id in stopped:
        resume_subscription(session, acting, sub_id, why, at)
    return stopped


def settle_from_balance(
    session: Session,
    principal: Principal,
    bill: CustomerBill,
    account: BillingAccount,
    *,
    at: datetime,
) -> Payment:
    """Pay a prepaid account's sent bill from its balance.

    Usage was debited as it was rated, so only the rest is debited now: the bill's total
    less the unrounded usage charges it carries. Below zero (a credit adjustment larger
    than the rest) the difference is returned to the balance.
    """
    already = session.scalar(
        select(func.coalesce(func.sum(UsageRecord.charge_micros), 0)).where(
            UsageRecord.bill_id == bill.id
        )
    )
    outstanding = bill.total_micros - bill.paid_micros
    payment = Payment(
        tenant_id=bill.tenant_id,
        billing_account_id=account.id,
        bill_id=bill.id,
        amount_micros=max(outstanding, 0),
        method="prepaid-balance",
        reference=f"balance:{bill.number}",
        received_at=at,
        recorded_by=principal.actor,
    )
    session.add(payment)
    session.flush()
    rest = bill.total_micros - int(already or 0)
    debit_prepaid(session, {account.id: rest}, at, kind="bill", reference=bill.number)
    session.refresh(account)
    if rest < 0 and account.balance_micros > 0:
        # A credit on the bill (an adjustment) beyond its other charges went back to the
        # balance, as a top-up would have.
        resume_stopped(session, principal, account.id, at, "prepaid balance credited by a bill")
    bill.paid_micros = bill.total_micros
    move(
        session,
        principal,
        bill,
        "settled",
        at=at,
        reason="paid from the prepaid balance",
        system=True,
    )
    return payment


#: What the lists of payments tell apart: money paid against a bill, paid back on one, or
#: put on a prepaid balance.
KINDS: Final = ("payment", "refund", "top-up")


def kind_of(bill_id: uuid.UUID | None, amount_micros: int) -> str:
    """A payment's kind (:data:`KINDS`) from its bill (none for a top-up) and its sign."""
    if bill_id is None:
        return "top-up"
    return "payment" if amount_micros > 0 else "refund"


def listed(
    *,
    kind: str | None = None,
    billing_account_id: uuid.UUID | None = None,
    received_from: datetime | None = None,
    received_before: datetime | None = None,
    month: str | None = None,
    tz: str = DEFAULT_TZ,
) -> list[ColumnElement[bool]]:
    """The filter of a list of payments (the API's, the console's and the CLI's): one kind,
    one account, received in ``[received_from, received_before)`` and in ``month``
    (``YYYY-MM`` in the business time zone ``tz``; checked here)."""
    where: list[ColumnElement[bool]] = []
    if month is not None:
        bounds = period_bounds(month, tz)
        where += [Payment.received_at >= bounds.start, Payment.received_at < bounds.end]
    if kind == "top-up":
        where.append(Payment.bill_id.is_(None))
    elif kind in ("payment", "refund"):
        paid_in = Payment.amount_micros > 0
        where += [Payment.bill_id.is_not(None), paid_in if kind == "payment" else ~paid_in]
    elif kind is not None:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if billing_account_id is not None:
        where.append(Payment.billing_account_id == billing_account_id)
    if received_from is not None:
        where.append(Payment.received_at >= received_from)
    if received_before is not None:
        where.append(Payment.received_at < received_before)
    return where
