"""The business side's numbers on the dashboard: what waits for a person, and what is owed.

Each figure answers "is there work for me?" for the team that reads it: customers waiting to
be verified (sales, compliance), contracts waiting for a signature, orders still open or gone
wrong, subscriptions suspended, invoices sent and not yet paid, prepaid balances running low,
and for billing staff the bills a run made that still wait to be validated or sent. A figure
is shown only to people whose scopes open the page it links to, and it is an aggregate over
the caller's tenant-scoped session, so a customer counts only its own orders, subscriptions
and invoices. The bills' figures come from one pass over the bills.

Usage is not summed here: a month's usage records are the platform's largest table, and the
Usage page (one scan of the month, on request) is where it is read.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from satiot.bss import accounts, billing_jobs
from satiot.bss.models import (
    OWING_STATES,
    BillingAccount,
    Contract,
    Customer,
    CustomerBill,
    ProductOrder,
    Subscription,
)
from satiot.bss.money import format_cny
from satiot.bss.states import ORDER_OPEN_STATES
from satiot.bss.subscriptions import SUSPENDED_BY_LABEL
from satiot.core import jobs
from satiot.web.session import ConsoleSession
from satiot.web.views.figures import Figure, counted

#: How far back failed and partial orders are counted as needing a look.
RECENT_ORDERS = timedelta(days=30)


def _customers(session: Session) -> Figure:
    validated, new, review, unassessed = (
        int(n or 0)
        for n in session.execute(
            select(
                func.count(Customer.id).filter(Customer.status == "validated"),
                func.count(Customer.id).filter(Customer.status == "initialized"),
                func.count(Customer.id).filter(Customer.status == "manual-review"),
                func.count(Customer.id).filter(
                    Customer.status == "validated", Customer.risk_status != "passed"
                ),
            )
        ).one()
    )
    parts = [f"{new:,} to verify"]
    if review:
        parts.append(f"{review:,} in manual review")
    if unassessed:
        parts.append(f"{unassessed:,} without a passed risk assessment")
    status = "manual-review" if review else "initialized" if new else ""
    return Figure(
        "Customers verified",
        f"{validated:,}",
        f"/customers?status={status}" if status else "/customers",
        ", ".join(parts),
        "review" if status else "customers",
        alert=bool(review or new or unassessed),
    )


def _contracts(session: Session) -> Figure:
    newer = aliased(Contract)
    superseded = exists().where(newer.supersedes_id == Contract.id, newer.signed_at.is_not(None))
    in_force, drafts = session.execute(
        select(
            func.count(Contract.id).filter(Contract.status == "signed", ~superseded),
            func.count(Contract.id).filter(Contract.status == "draft"),
        )
    ).one()
    return Figure(
        "Contracts in force",
        f"{int(in_force or 0):,}",
        "/contracts",
        f"{counted(int(drafts or 0), 'draft')} awaiting signature",
        "contracts",
    )


def _orders(session: Session, signed_in: ConsoleSession) -> Figure:
    since = signed_in.now() - RECENT_ORDERS
    open_, held, failed = session.execute(
        select(
            func.count(ProductOrder.id).filter(ProductOrder.state.in_(ORDER_OPEN_STATES)),
            func.count(ProductOrder.id).filter(ProductOrder.state == "held"),
            func.count(ProductOrder.id).filter(
                ProductOrder.state.in_(("failed", "partial")), ProductOrder.created_at >= since
            ),
        )
    ).one()
    failed = int(failed or 0)
    return Figure(
        "Open orders",
        f"{int(open_ or 0):,}",
        "/orders",
        f"{int(held or 0):,} held, {failed:,} failed or partial in the last 30 days",
        "orders",
        alert=failed > 0,
    )


def _subscriptions(session: Session, *, customer: bool) -> Figure:
    """Active subscriptions, and the suspended ones by who suspended them: a customer sees at a
    glance which it may resume itself (its own) and which not."""
    suspended_by = Subscription.status == "suspended"
    active, suspended, *origins = session.execute(
        select(
            func.count(Subscription.id).filter(Subscription.status == "active"),
            func.count(Subscription.id).filter(suspended_by),
            *(
                func.count(Subscription.id).filter(suspended_by, Subscription.suspended_by == o)
                for o in SUSPENDED_BY_LABEL
            ),
        )
    ).one()
    suspended = int(suspended or 0)
    note = f"{suspended:,} suspended"
    own = "by you" if customer else "by customers"  # the customer's own suspensions
    parts = [
        f"{int(n):,} {own if o == 'customer' else label}"
        for (o, label), n in zip(SUSPENDED_BY_LABEL.items(), origins, strict=True)
        if n
    ]
    if parts:
        note += ": " + ", ".join(parts)
    link = "/subscriptions"
    if suspended:  # straight to the one kind of suspension there is, if only one
        only = [o for o, n in zip(SUSPENDED_BY_LABEL, origins, strict=True) if n == suspended]
        link += f"?status=suspended&by={only[0]}" if only else "?status=suspended"
    return Figure(
        "Subscriptions active",
        f"{int(active or 0):,}",
        link,
        note,
        "review" if suspended else "subscriptions",
    )


def _bills(session: Session, signed_in: ConsoleSession) -> list[Figure]:
    """What customers owe, and what is owed back to them (a credit note that took off more
    than was left to pay leaves its bill settled and below zero until a refund pays it); for
    billing staff, the bills a run made that are not yet with their customers."""
    now = signed_in.now()
    owing = CustomerBill.state.in_(OWING_STATES)
    back = CustomerBill.due_micros < 0
    row = session.execute(
        select(
            func.count(CustomerBill.id).filter(owing),
            func.coalesce(func.sum(CustomerBill.due_micros).filter(owing), 0),
            func.count(CustomerBill.id).filter(owing, CustomerBill.due_at < now),
            func.count(CustomerBill.id).filter(back),
            func.coalesce(func.sum(CustomerBill.due_micros).filter(back), 0),
            func.count(CustomerBill.id).filter(CustomerBill.state == "new"),
            func.count(CustomerBill.id).filter(CustomerBill.state == "validated"),
            func.count(CustomerBill.id).filter(CustomerBill.state == "onHold"),
        )
    ).one()
    count, due, overdue, refunds, owed_back, new, validated, held = (int(n or 0) for n in row)
    customer = signed_in.audience == "customer"
    note = f"{counted(count, 'invoice')} unpaid"
    if overdue:
        note += f", {overdue:,} past due"
    if refunds:
        owed = format_cny(-owed_back)
        note += f", {owed} owed to you" if customer else f", {owed} to refund"
    if overdue:
        link = "/invoices?overdue=1"
    elif count:
        link = "/invoices?state=sent"
    elif refunds:
        link = "/invoices?to_refund=1"
    else:
        link = "/invoices"
    out = [
        Figure(
            "Amount due" if customer else "Receivable",
            format_cny(due),
            link,
            note,
            "invoices",
            alert=overdue > 0 or (refunds > 0 and not customer),
        )
    ]
    principal = signed_in.principal
    if "bills:write" in principal.scopes and principal.all_tenants:
        note = f"{new:,} to validate, {validated:,} to send, {held:,} on hold"
        # The month-end work queued last (the Bill runs page follows it): a run or a release
        # that failed in the background is news, and one under way explains moving figures.
        latest = jobs.recent(session, billing_jobs.KINDS, limit=1)
        failed = bool(latest) and latest[0].state == "failed"
        if latest and latest[0].state in jobs.ACTIVE:
            note += f"; {jobs.describe(latest[0])} is {latest[0].state}"
        elif failed:
            note += f"; {jobs.describe(latest[0])} failed: {jobs.outcome(latest[0])}"
        out.append(
            Figure(
                "Bills to release",
                f"{new + validated:,}",
                "/bill-runs",
                note,
                "bill runs",
                alert=bool(new or validated) or failed,
            )
        )
    return out


def _prepaid(session: Session, signed_in: ConsoleSession) -> Figure | None:
    """Prepaid balances (none shown without a prepaid account): a customer sees what it holds
    and whether an account wants a top-up (at or below zero, or below its notice); staff see
    how many customers' balances are running low."""
    prepaid = BillingAccount.payment_mode == "prepaid"
    count, held, low = session.execute(
        select(
            func.count(BillingAccount.id).filter(prepaid),
            func.coalesce(func.sum(BillingAccount.balance_micros).filter(prepaid), 0),
            func.count(BillingAccount.id).filter(accounts.running_low()),
        )
    ).one()
    if not count:
        return None
    link = "/billing-accounts?mode=prepaid" + ("&low=1" if low else "")
    note = f"{counted(int(count), 'account')}, {int(low):,} running low"
    if signed_in.audience == "customer":
        held_text = format_cny(int(held))
        return Figure("Prepaid balance", held_text, link, note, "accounts", alert=low > 0)
    return Figure("Prepaid accounts", f"{int(count):,}", link, note, "accounts")


def figures(session: Session, signed_in: ConsoleSession) -> list[Figure]:
    scopes = signed_in.principal.scopes
    out: list[Figure] = []
    if "customers:read" in scopes and signed_in.audience != "customer":
        out.append(_customers(session))
    if "contracts:read" in scopes:
        out.append(_contracts(session))
    if "orders:read" in scopes:
        out.append(_orders(session, signed_in))
    if "subscriptions:read" in scopes:
        out.append(_subscriptions(session, customer=signed_in.audience == "customer"))
    if "bills:read" in scopes:
        out += _bills(session, signed_in)
        prepaid = _prepaid(session, signed_in)
        if prepaid is not None:
            out.append(prepaid)
    return out
