"""Invoices: gap-free numbers and the bill lifecycle (TMF678 customerBill).

Numbers are ``<prefix><year>-<8 digits>`` (``SAT2026-00000042``), one series per calendar year
of issue in the business time zone. :func:`take_numbers` moves the series' row in the issuing
transaction, under its row lock on PostgreSQL (the write lock on SQLite): a transaction that
rolls back gives its numbers back, and two that issue at once queue on the lock, so numbers
have no gaps and no repeats, as tax rules require of invoices.

States: ``new`` (issued by a bill run) → ``validated`` (checked by billing staff) → ``sent``
(the customer may see and pay it) → ``partiallyPaid`` → ``settled`` by payments; ``onHold``
parks a new bill, or takes back a validated one not yet sent (released, it is ``new`` again).
Every move is checked against :data:`satiot.bss.states.BILL`, audited and announced as
``bill.<state>`` (tenant-tagged, so the customer's event feed has it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from satiot.bss.models import BillingAccount, BillLine, CustomerBill, InvoiceSequence
from satiot.bss.periods import zone
from satiot.bss.states import BILL
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, NotFound


class BillNotFound(NotFound):
    slug = "bill-not-found"
    title = "Bill not found"


#: What a customer sees of its bills: those sent to it (through the API and the console alike).
CUSTOMER_VISIBLE: Final = ("sent", "partiallyPaid", "settled")


def bill_filters(
    *,
    period: str | None,
    state: str | None,
    account_id: uuid.UUID | None,
    all_tenants: bool,
    to_refund: bool = False,
    overdue_at: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """The criteria of a list of bills (and of its export): a month, a state, an account,
    those that owe their customer money (credit notes took off more than was left to pay, and
    no refund has paid it back yet), those overdue at ``overdue_at``, and for a customer only
    the bills sent to it. Callers check ``period`` and ``state`` first."""
    where: list[ColumnElement[bool]] = []
    if to_refund:
        where.append(CustomerBill.due_micros < 0)
    if overdue_at is not None:
        where += CustomerBill.overdue_criteria(overdue_at)
    if period is not None:
        where.append(CustomerBill.period == period)
    if state is not None:
        where.append(CustomerBill.state == state)
    if account_id is not None:
        where.append(CustomerBill.billing_account_id == account_id)
    if not all_tenants:
        where.append(CustomerBill.state.in_(CUSTOMER_VISIBLE))
    return where


def invoice_series(prefix: str, at: datetime, tz: str) -> str:
    """The series invoices issued at ``at`` are numbered in (one per business year)."""
    return f"{prefix}{at.astimezone(zone(tz)).year}"


def take_numbers(session: Session, series: str, count: int) -> int:
    """Reserve ``count`` consecutive numbers of ``series`` in this transaction; return the
    first. The row stays locked until the transaction ends."""
    if count < 1:
        raise ValueError("take at least one number")
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = InvoiceSequence.__table__
    assert isinstance(table, Table)
    session.execute(
        insert(table)
        .values(series=series, next_value=1)
        .on_conflict_do_nothing(index_elements=["series"])
    )
    after = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.series == series)
        .values(next_value=InvoiceSequence.next_value + count)
        .returning(InvoiceSequence.next_value)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return int(after) - count


def get_bill(session: Session, bill_id: uuid.UUID, *, for_update: bool = False) -> CustomerBill:
    stmt = select(CustomerBill).where(CustomerBill.id == bill_id)
    if for_update:
        stmt = stmt.with_for_update()
    bill = session.scalar(stmt)
    if bill is None:
        raise BillNotFound(f"no bill {bill_id}")
    return bill


def lines_of(session: Session, bill_id: uuid.UUID) -> list[BillLine]:
    kinds = {"recurring": 0, "usage": 1, "one-time": 2, "adjustment": 3}
    lines = list(session.scalars(select(BillLine).where(BillLine.bill_id == bill_id)))
    return sorted(lines, key=lambda ln: (kinds.get(ln.kind, 9), ln.description))


def bill_view(bill: CustomerBill) -> dict[str, Any]:
    return {
        "number": bill.number,
        "state": bill.state,
        "total_micros": bill.total_micros,
        "paid_micros": bill.paid_micros,
    }


def move(
    session: Session,
    principal: Principal,
    bill: CustomerBill,
    target: str,
    *,
    at: datetime,
    reason: str | None = None,
    system: bool = False,
) -> CustomerBill:
    """Move ``bill`` to ``target``: checked against the lifecycle (``system``: a move no
    person makes, such as a payment settling the bill), audited and announced in the
    caller's transaction."""
    BILL.check(bill.state, target, None if system else principal.role)
    before = bill_view(bill)
    bill.state = target
    record_change(
        session,
        principal,
        at=at,
        action=f"bill.{target}",
        target=("bill", bill.id),
        tenant_id=bill.tenant_id,
        before=before,
        after=bill_view(bill),
        reason=reason,
        payload={
            "type": f"bill.{target}",
            "id": str(bill.id),
            "number": bill.number,
            "period": bill.period,
            "state": bill.state,
            "total_micros": bill.total_micros,
            "paid_micros": bill.paid_micros,
            "due_at": bill.due_at.isoformat(),
        },
    )
    return bill


def validate_bill(
    session: Session, principal: Principal, bill_id: uuid.UUID, *, at: datetime
) -> CustomerBill:
    return move(session, principal, get_bill(session, bill_id, for_update=True), "validated", at=at)


def hold_bill(
    session: Session, principal: Principal, bill_id: uuid.UUID, *, at: datetime, reason: str | None
) -> CustomerBill:
    bill = get_bill(session, bill_id, for_update=True)
    target = "new" if bill.state == "onHold" else "onHold"
    return move(session, principal, bill, target, at=at, reason=reason)


def set_held(
    session: Session,
    principal: Principal,
    bill_id: uuid.UUID,
    *,
    held: bool,
    at: datetime,
    reason: str | None,
) -> CustomerBill:
    """Hold a bill (``held``) or release it; 409 if it is already so. A person's button or
    command says which it means: a page shown before someone else moved the bill must not do
    the opposite of what it says (the API's ``/hold`` toggles)."""
    bill = get_bill(session, bill_id, for_update=True)
    if (bill.state == "onHold") == held:
        wanted = "hold" if held else "release"
        raise Conflict(f"bill {bill.number} is {bill.state}: nothing to {wanted}")
    return move(session, principal, bill, "onHold" if held else "new", at=at, reason=reason)


def send_bill(
    session: Session, principal: Principal, bill_id: uuid.UUID, *, at: datetime
) -> CustomerBill:
    """Send a validated bill to its customer; a prepaid account's bill is then paid from its
    balance at once (see :func:`satiot.bss.payments.settle_from_balance`)."""
    return send(session, principal, get_bill(session, bill_id, for_update=True), at=at)


def send(
    session: Session, principal: Principal, bill: CustomerBill, *, at: datetime
) -> CustomerBill:
    """:func:`send_bill` for a bill already read under lock (a run's release reads a chunk of
    them in one query)."""
    from satiot.bss import payments  # payments moves bills, so it imports this module

    bill = move(session, principal, bill, "sent", at=at)
    account = session.get(BillingAccount, bill.billing_account_id)
    if account is not None and account.payment_mode == "prepaid":
        payments.settle_from_balance(session, principal, bill, account, at=at)
    return bill
