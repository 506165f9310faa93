"""The Payments page: money paid against bills, paid back, and put on prepaid balances,
newest first, by kind and by the business month it was received in.

A finance team holds it against a bank statement or closes a month with it; a customer sees
its own (the read session is tenant-scoped). The filter is
:func:`satiot.bss.payments.listed`, as ``GET /api/v1/payments`` applies it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from starlette.responses import Response

from satiot.bss import payments
from satiot.bss.models import BillingAccount, CustomerBill, Payment
from satiot.bss.periods import check_period, period_bounds
from satiot.core.errors import DomainError
from satiot.core.pagination import paginate
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import SignedIn

router = APIRouter()
PATH = "/payments"
PAGE = 50


@router.get(PATH)
def payments_page(
    request: Request,
    signed_in: SignedIn,
    kind: str = "",
    period: str = "",
    after: str | None = None,
) -> Response:
    signed_in.require_any("bills:read")
    flash = None
    kind = kind if kind in payments.KINDS else ""
    period = period.strip()
    bounds = None
    if period:
        try:
            check_period(period)
            bounds = period_bounds(period, signed_in.ctx.settings.business_timezone)
        except DomainError as exc:
            flash, period = Flash("error", exc.detail), ""
    where = payments.listed(
        kind=kind or None,
        received_from=bounds.start if bounds else None,
        received_before=bounds.end if bounds else None,
    )
    with signed_in.call.read() as session:
        try:
            found = paginate(
                session, select(Payment).where(*where), Payment.id, cursor=after, limit=PAGE,
                descending=True,
            )  # fmt: skip
        except DomainError as exc:
            found = paginate(session, select(Payment).where(*where), Payment.id, cursor=None,
                             limit=PAGE, descending=True)  # fmt: skip
            flash = Flash("error", exc.detail)
        count, total = session.execute(
            select(func.count(), func.coalesce(func.sum(Payment.amount_micros), 0)).where(*where)
        ).one()
        accounts = {
            a.id: a.name
            for a in session.scalars(
                select(BillingAccount).where(
                    BillingAccount.id.in_({p.billing_account_id for p in found.items})
                )
            )
        }
        bills = {
            b.id: b.number
            for b in session.scalars(
                select(CustomerBill).where(
                    CustomerBill.id.in_({p.bill_id for p in found.items if p.bill_id})
                )
            )
        }
    kept = {k: v for k, v in {"kind": kind, "period": period}.items() if v}
    next_url = None
    if found.next_cursor:
        next_url = f"{PATH}?{urlencode(kept | {'after': found.next_cursor})}"
    return page(
        request,
        signed_in,
        "payments.html",
        {
            "title": "Payments",
            "rows": [(p, payments.kind_of(p)) for p in found.items],
            "accounts": accounts,
            "bills": bills,
            "kind": kind,
            "kinds": payments.KINDS,
            "period": period,
            "count": int(count),
            "total": int(total),
            "next_url": next_url,
        },
        flash=flash,
    )
