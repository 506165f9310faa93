"""The Billing accounts pages: who pays and how (postpaid or prepaid) with the balance; one
account's dry run for a month and, for billing staff, a prepaid account's top-up form.

Customers see their own accounts (the read session is tenant-scoped) with their balances and
dry runs; top-ups need ``bills:write``, which only operator staff hold, as through the API.
The dry run is :func:`satiot.bss.billing.dry_run` and writes nothing; a top-up goes through
:func:`satiot.bss.payments.top_up`, whose reference makes a repeat record once.
"""

from __future__ import annotations

import contextlib
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.bss import accounts, balance_history, billing, invoices, payments
from satiot.bss.accounts import balance_text
from satiot.bss.ledger_models import BalanceEntry
from satiot.bss.models import BillingAccount, Customer, CustomerBill, Payment
from satiot.bss.money import fen_text, format_cny, yuan_amount
from satiot.bss.periods import check_period, period_of
from satiot.core.errors import DomainError, NotFound
from satiot.core.pagination import paginate
from satiot.web.flash import Flash
from satiot.web.once import FormKey, Sent, redirect, submit_once
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn
from satiot.web.views.network_rows import parse_uuid

router = APIRouter()
PATH = "/billing-accounts"
PAGE = 50
MODES = ("postpaid", "prepaid")
RECENT_TOP_UPS = 20
#: The latest changes of a prepaid balance shown on the account's page.
RECENT_ENTRIES = 10
#: The account's latest invoices shown on its page (a year of months).
RECENT_BILLS = 12


def amount_micros(amount: str) -> int:
    """A positive yuan amount typed into a form (``1,200.50``) as micro-yuan."""
    return yuan_amount(amount)


@router.get(PATH)
def billing_accounts_page(
    request: Request, signed_in: SignedIn, mode: str = "", low: str = "", after: str | None = None
) -> Response:
    signed_in.require_any("bills:read")
    stmt = select(BillingAccount)
    if mode in MODES:
        stmt = stmt.where(BillingAccount.payment_mode == mode)
    else:
        mode = ""
    low = "1" if low else ""
    if low:  # prepaid balances that want a top-up
        stmt = stmt.where(accounts.running_low())
    flash = None
    with signed_in.call.read() as session:
        try:
            found = paginate(session, stmt, BillingAccount.id, cursor=after, limit=PAGE)
        except DomainError as exc:
            found = paginate(session, stmt, BillingAccount.id, cursor=None, limit=PAGE)
            flash = Flash("error", exc.detail)
        customers = {
            c.id: c.name
            for c in session.scalars(
                select(Customer).where(Customer.id.in_({a.customer_id for a in found.items}))
            )
        }
    next_url = None
    if found.next_cursor:
        query = {"mode": mode, "low": low, "after": found.next_cursor}
        next_url = f"{PATH}?{urlencode({k: v for k, v in query.items() if v})}"
    return page(
        request,
        signed_in,
        "billing_accounts.html",
        {
            "title": "Billing accounts",
            "accounts": found.items,
            "customers": customers,
            "mode": mode,
            "low": low,
            "modes": MODES,
            "balance": balance_text,
            "running_low": accounts.is_running_low,
            "next_url": next_url,
        },
        flash=flash,
    )


def account_not_found(request: Request, signed_in: ConsoleSession, account_id: str) -> Response:
    """The 404 page of a billing account the person cannot see or that does not exist."""
    context = {
        "title": "Not found",
        "message": f"No billing account {account_id}.",
        "back": PATH,
        "back_label": "Back to billing accounts",
    }
    return page(request, signed_in, "not_found.html", context, status_code=404)


@router.get(PATH + "/{account_id}")
def billing_account_page(
    request: Request, signed_in: SignedIn, account_id: str, period: str = ""
) -> Response:
    signed_in.require_any("bills:read")
    wanted = parse_uuid(account_id)
    if wanted is None:
        return account_not_found(request, signed_in, account_id)
    s = signed_in.ctx.settings
    flash = None
    period = period.strip()
    try:
        check_period(period)
        billing.begun_period(period, at=signed_in.now(), tz=s.business_timezone)
    except DomainError as exc:
        if period:
            flash = Flash("error", exc.detail)
        period = period_of(signed_in.now(), s.business_timezone)
    staff = signed_in.principal.all_tenants
    with signed_in.call.read() as session:
        account = session.get(BillingAccount, wanted)
        if account is None:
            return account_not_found(request, signed_in, account_id)
        customer = session.get(Customer, account.customer_id)
        draft = billing.dry_run(
            session,
            account.id,
            period,
            at=signed_in.now(),
            tax_rate_bp=s.tax_rate_bp,
            tz=s.business_timezone,
        )
        billed = None
        if draft is None:
            billed = session.scalar(
                select(CustomerBill).where(
                    CustomerBill.billing_account_id == account.id, CustomerBill.period == period
                )
            )
        shown = invoices.bill_filters(
            period=None, state=None, account_id=account.id, all_tenants=staff
        )
        recent = select(CustomerBill).where(*shown)
        bills = list(
            session.scalars(recent.order_by(CustomerBill.id.desc()).limit(RECENT_BILLS + 1))
        )
        ledger = list(
            session.scalars(
                balance_history.entries_of(account.id)
                .order_by(BalanceEntry.id.desc())
                .limit(RECENT_ENTRIES)
            )
        )
        top_ups = list(
            session.scalars(
                select(Payment)
                .where(Payment.billing_account_id == account.id, Payment.bill_id.is_(None))
                .order_by(Payment.received_at.desc(), Payment.id.desc())
                .limit(RECENT_TOP_UPS)
            )
        )
    return page(
        request,
        signed_in,
        "billing_account.html",
        {
            "title": f"Billing account {account.name}",
            "account": account,
            "customer": customer,
            "balance": balance_text(account),
            "period": period,
            "draft": draft,
            "billed": billed,
            "bill_visible": staff
            or (billed is not None and billed.state in invoices.CUSTOMER_VISIBLE),
            "top_ups": top_ups,
            "entries": ledger,
            "kinds": balance_history.KINDS,
            "bills": bills[:RECENT_BILLS],
            "more_bills": len(bills) > RECENT_BILLS,
            "can_top_up": account.payment_mode == "prepaid"
            and "bills:write" in signed_in.principal.scopes,
            "can_set_low": account.payment_mode == "prepaid"
            and "notices:write" in signed_in.principal.scopes,
            "can_read_usage": "usage:read" in signed_in.principal.scopes,
            "yuan_text": fen_text,
            "cny": format_cny,
        },
        flash=flash,
    )


@router.post(PATH + "/{account_id}/top-ups")
def top_up(
    signed_in: Posted,
    account_id: uuid.UUID,
    amount: Annotated[str, Form()] = "",
    method: Annotated[str, Form()] = "bank-transfer",
    reference: Annotated[str, Form()] = "",
    period: Annotated[str, Form()] = "",
    form_key: FormKey = "",
) -> Response:
    signed_in.require_any("bills:write")
    back = f"{PATH}/{account_id}"
    with contextlib.suppress(DomainError):  # keep the month the dry run showed, if any
        back += "?" + urlencode({"period": check_period(period.strip())})

    def work(session: Session) -> Sent:
        if session.get(BillingAccount, account_id) is None:
            raise NotFound(f"no billing account {account_id}")
        payment, new = payments.top_up(
            session,
            signed_in.principal,
            account_id,
            amount_micros=micros,
            method=method.strip()[:32] or "bank-transfer",
            reference=reference.strip()[:100],
            at=signed_in.now(),
        )
        done = format_cny(payment.amount_micros)
        if new:
            return Sent(back, f"Top-up of {done} recorded.")
        return Sent(back, f"Top-up {reference.strip()!r} was recorded already ({done}).", "info")

    try:
        micros = amount_micros(amount)
        sent, _ = submit_once(signed_in, form_key, f"{PATH}/{account_id}/top-ups", work)
    except DomainError as exc:
        sent = Sent(back, exc.detail, "error")
    return redirect(signed_in, sent)


def _threshold(text: str) -> int | None:
    """The form's amount: empty is no notice, zero a notice below zero, else yuan."""
    text = text.strip()
    if not text:
        return None
    with contextlib.suppress(InvalidOperation):
        if Decimal(text.replace(",", "")).is_zero():
            return 0
    return amount_micros(text)


@router.post(PATH + "/{account_id}/low-balance")
def set_low_balance(
    signed_in: Posted, account_id: uuid.UUID, amount: Annotated[str, Form()] = ""
) -> Response:
    """Set (or clear, with an empty amount) the balance below which the customer is told its
    prepaid balance is running low: staff, or the customer's own administrators."""
    signed_in.require_any("notices:write")
    back = f"{PATH}/{account_id}"
    try:
        threshold = _threshold(amount)
        with signed_in.call.write() as session:
            accounts.set_low_balance(
                session, signed_in.principal, account_id, threshold, at=signed_in.now()
            )
        done = "off" if threshold is None else f"below {format_cny(threshold)}"
        sent = Sent(back, f"Low-balance notice {done}.")
    except DomainError as exc:
        sent = Sent(back, exc.detail, "error")
    return redirect(signed_in, sent)
