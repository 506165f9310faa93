"""The Payments page: money paid against bills, paid back, and put on prepaid balances,
newest first, by kind and by the business month it was received in; and all of what the
filter keeps as a spreadsheet (:mod:`satiot.bss.payment_export`).

A finance team holds it against a bank statement or closes a month with it; a customer sees
its own (the read session is tenant-scoped). The filter is
:func:`satiot.bss.payments.listed`, as ``GET /api/v1/payments`` applies it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import ColumnElement, func, select
from starlette.responses import Response

from satiot.api.csv_files import streamed_download
from satiot.bss import payment_export, payments
from satiot.bss.models import BillingAccount, CustomerBill, Payment
from satiot.core.errors import DomainError
from satiot.core.pagination import paginate
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import SignedIn

router = APIRouter()
PATH = "/payments"
PAGE = 50


def _filters(
    signed_in: SignedIn, kind: str, period: str
) -> tuple[str, str, list[ColumnElement[bool]], Flash | None]:
    """The page's kind and month as kept (an unknown kind or a malformed month dropped, the
    latter said in a flash), and the list's filter."""
    kind, period, flash = kind if kind in payments.KINDS else "", period.strip(), None
    tz = signed_in.ctx.settings.business_timezone
    try:
        where = payments.listed(kind=kind or None, month=period or None, tz=tz)
    except DomainError as exc:
        flash, period = Flash("error", exc.detail), ""
        where = payments.listed(kind=kind or None)
    return kind, period, where, flash


@router.get(PATH + "/export.csv")
def payments_csv(signed_in: SignedIn, kind: str = "", period: str = "") -> Response:
    """Every entry the page's filters keep, oldest first, as a spreadsheet (all pages)."""
    signed_in.require_any("bills:read")
    _kind, period, where, _flash = _filters(signed_in, kind, period)
    tz = signed_in.ctx.settings.business_timezone
    return streamed_download(
        signed_in.call.read,
        lambda session: payment_export.export_payments(session, where, tz=tz),
        payment_export.file_name(period or None, signed_in.now()),
    )


@router.get(PATH)
def payments_page(
    request: Request,
    signed_in: SignedIn,
    kind: str = "",
    period: str = "",
    after: str | None = None,
) -> Response:
    signed_in.require_any("bills:read")
    kind, period, where, flash = _filters(signed_in, kind, period)
    stmt = select(Payment).where(*where)
    with signed_in.call.read() as session:
        try:
            found = paginate(session, stmt, Payment.id, cursor=after, limit=PAGE, descending=True)
        except DomainError as exc:  # a bad cursor: the first page, and why
            found = paginate(session, stmt, Payment.id, cursor=None, limit=PAGE, descending=True)
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
            "rows": [(p, payments.kind_of(p.bill_id, p.amount_micros)) for p in found.items],
            "accounts": accounts,
            "bills": bills,
            "kind": kind,
            "kinds": payments.KINDS,
            "period": period,
            "count": int(count),
            "total": int(total),
            "next_url": next_url,
            "export_url": f"{PATH}/export.csv?{urlencode(kept)}".rstrip("?"),
        },
        flash=flash,
    )
