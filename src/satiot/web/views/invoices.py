"""The Invoices pages: bills by month and state, one bill with its lines, payments, credit
notes and PDF, and for billing staff the moves (validate, send), adjusting a bill not yet
validated, crediting one the customer has received, and recording payments and refunds.

Customers see their bills once sent, as through the API; every move and payment goes through
:mod:`satiot.bss.invoices` and :mod:`satiot.bss.payments` in the person's scoped session.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.api.csv_files import streamed_download
from satiot.bss import (
    bill_adjustments,
    bill_export,
    bill_statement,
    credit_note_export,
    credit_notes,
    invoices,
    payments,
)
from satiot.bss.invoice_pdf import Issuer, render_credit_note, render_invoice
from satiot.bss.models import BillingAccount, CustomerBill, Payment
from satiot.bss.money import format_cny, yuan_amount
from satiot.bss.periods import PERIOD_PATTERN
from satiot.bss.states import BILL
from satiot.core.errors import DomainError
from satiot.core.pagination import paginate
from satiot.web.flash import Flash, set_flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn
from satiot.web.views.network_rows import parse_uuid

router = APIRouter()
PATH = "/invoices"
PAGE = 50
#: The moves the invoice page offers billing staff, with the state each leads to (a hold takes
#: a new or validated bill aside; releasing it makes it new again, to adjust and validate).
_MOVES = (("validate", "validated"), ("send", "sent"), ("hold", "onHold"), ("release", "new"))
#: Devices of a bill's usage statement shown at a time.
DEVICES_PAGE = 50


def _bill(signed_in: ConsoleSession, session: Session, bill_id: uuid.UUID) -> CustomerBill:
    bill = invoices.get_bill(session, bill_id)
    if not signed_in.principal.all_tenants and bill.state not in invoices.CUSTOMER_VISIBLE:
        raise invoices.BillNotFound(f"no bill {bill_id}")
    return bill


def _where(
    signed_in: ConsoleSession,
    period: str,
    state: str,
    account_id: uuid.UUID | None,
    to_refund: str = "",
    overdue: str = "",
) -> list[ColumnElement[bool]]:
    """The page's filters, which its export shares (a month or state that is none is no
    filter); a customer sees its bills once sent."""
    return invoices.bill_filters(
        period=period if _is_period(period) else None,
        state=state if state in BILL.states else None,
        account_id=account_id,
        all_tenants=signed_in.principal.all_tenants,
        to_refund=bool(to_refund),
        overdue_at=signed_in.now() if overdue else None,
    )


def _is_period(text: str) -> bool:
    """A month as the filter takes it (anything else is no filter, and never a file name)."""
    return re.fullmatch(PERIOD_PATTERN, text) is not None


def _query(
    period: str,
    state: str,
    account: uuid.UUID | None,
    to_refund: str,
    overdue: str,
    **more: str | None,
) -> str:
    given = {
        "period": period,
        "state": state,
        "account": account and str(account),
        "to_refund": "1" if to_refund else "",
        "overdue": "1" if overdue else "",
        **more,
    }
    return urlencode({k: v for k, v in given.items() if v})


@router.get(PATH)
def invoices_page(
    request: Request,
    signed_in: SignedIn,
    period: str = "",
    state: str = "",
    account: str = "",
    to_refund: str = "",
    overdue: str = "",
    after: str | None = None,
) -> Response:
    """Bills newest first, by month, state and (from an account's page) billing account."""
    signed_in.require_any("bills:read")
    flash = None
    account_id = parse_uuid(account) if account else None
    if account and account_id is None:
        flash = Flash("error", f"{account!r} is not a billing account id: every account shown")
    where = _where(signed_in, period, state, account_id, to_refund, overdue)
    stmt = select(CustomerBill).where(*where)
    with signed_in.call.read() as session:
        shown = session.get(BillingAccount, account_id) if account_id else None
        try:
            found = paginate(
                session, stmt, CustomerBill.id, cursor=after, limit=PAGE, descending=True
            )
        except DomainError as exc:
            found = paginate(session, stmt, CustomerBill.id, cursor=None, limit=PAGE)
            flash = Flash("error", exc.detail)
        accounts = {
            a.id: a.name
            for a in session.scalars(
                select(BillingAccount).where(
                    BillingAccount.id.in_({b.billing_account_id for b in found.items})
                )
            )
        }
    query = _query(period, state, account_id, to_refund, overdue)
    next_url = None
    if found.next_cursor:
        following = _query(period, state, account_id, to_refund, overdue, after=found.next_cursor)
        next_url = f"{PATH}?{following}"
    return page(
        request,
        signed_in,
        "invoices.html",
        {
            "title": "Invoices",
            "bills": found.items,
            "accounts": accounts,
            "period": period,
            "state": state,
            "states": BILL.states,
            "next_url": next_url,
            "account": shown,
            "account_id": account_id,
            "export_url": f"{PATH}/export.csv?{query}".rstrip("?"),
            "notes_url": f"{PATH}/credit-notes.csv"
            + (f"?{urlencode({'period': period})}" if _is_period(period) else ""),
            "to_refund": bool(to_refund),
            "overdue": bool(overdue),
        },
        flash=flash,
    )


@router.get(PATH + "/export.csv")
def invoices_csv(
    signed_in: SignedIn,
    period: str = "",
    state: str = "",
    account: str = "",
    to_refund: str = "",
    overdue: str = "",
) -> Response:
    """Every invoice the page's filters keep, as the API's CSV."""
    signed_in.require_any("bills:read")
    account_id = parse_uuid(account) if account else None
    if account and account_id is None:
        return Response("not a billing account id", status_code=422, media_type="text/plain")
    where = _where(signed_in, period, state, account_id, to_refund, overdue)
    return streamed_download(
        signed_in.call.read,
        lambda session: bill_export.export_bills(session, where),
        bill_export.file_name(period if _is_period(period) else None, signed_in.now()),
    )


@router.get(PATH + "/credit-notes.csv")
def credit_notes_csv(signed_in: SignedIn, period: str = "") -> Response:
    """The credit notes issued in the page's month (every one without a month), as the API's
    CSV register."""
    signed_in.require_any("bills:read")
    month = period if _is_period(period) else None
    where = credit_note_export.note_filters(
        month=month, account_id=None, tz=signed_in.ctx.settings.business_timezone
    )
    return streamed_download(
        signed_in.call.read,
        lambda session: credit_note_export.export_notes(session, where),
        credit_note_export.file_name(month, signed_in.now()),
    )


@router.get(PATH + "/{bill_id}")
def invoice_page(
    request: Request, signed_in: SignedIn, bill_id: uuid.UUID, devices_after: str | None = None
) -> Response:
    signed_in.require_any("bills:read")
    flash = None
    with signed_in.call.read() as session:
        try:
            bill = _bill(signed_in, session, bill_id)
        except DomainError:
            return page(
                request, signed_in, "not_found.html", {"title": "Not found"}, status_code=404
            )
        try:
            devices = bill_statement.statement_page(
                session, bill.id, cursor=devices_after, limit=DEVICES_PAGE
            )
        except DomainError as exc:
            devices = bill_statement.statement_page(
                session, bill.id, cursor=None, limit=DEVICES_PAGE
            )
            flash = Flash("error", exc.detail)
        lines = invoices.lines_of(session, bill.id)
        paid = list(
            session.scalars(select(Payment).where(Payment.bill_id == bill.id).order_by(Payment.id))
        )
        account = session.get(BillingAccount, bill.billing_account_id)
        notes = credit_notes.notes_of(session, bill.id)
    writer = "bills:write" in signed_in.principal.scopes
    moves = (
        [m for m, target in _MOVES if (bill.state, target) in BILL.transitions] if writer else []
    )
    return page(
        request,
        signed_in,
        "invoice.html",
        {
            "title": f"Invoice {bill.number}",
            "bill": bill,
            "lines": lines,
            "payments": paid,
            "account": account,
            "moves": moves,
            "can_pay": writer and bill.state in payments.PAYABLE,
            "can_refund": writer and bill.due_micros < 0,
            "overdue": bill.is_overdue(signed_in.now()),
            "can_adjust": writer and bill.state in bill_adjustments.ADJUSTABLE,
            "notes": notes,
            "can_credit": writer and bill.state in credit_notes.CREDITABLE,
            "devices": devices.items,
            "devices_next": (
                f"{PATH}/{bill.id}?{urlencode({'devices_after': devices.next_cursor})}#devices"
                if devices.next_cursor
                else None
            ),
            "devices_paged": devices_after is not None,
        },
        flash=flash,
    )


@router.get(PATH + "/{bill_id}/devices.csv")
def invoice_devices_csv(signed_in: SignedIn, bill_id: uuid.UUID) -> Response:
    """The bill's usage statement, every device, as the API's CSV."""
    signed_in.require_any("bills:read")
    with signed_in.call.read() as session:
        try:
            number = _bill(signed_in, session, bill_id).number
        except DomainError:
            return Response("not found", status_code=404, media_type="text/plain")
    return streamed_download(
        signed_in.call.read,
        lambda session: bill_statement.export_statement(session, bill_id, number),
        bill_statement.file_name(number),
    )


@router.get(PATH + "/{bill_id}/pdf")
def invoice_pdf(signed_in: SignedIn, bill_id: uuid.UUID) -> Response:
    signed_in.require_any("bills:read")
    issuer = Issuer.from_settings(signed_in.ctx.settings)
    with signed_in.call.read() as session:
        try:
            bill = _bill(signed_in, session, bill_id)
        except DomainError:
            return Response("not found", status_code=404, media_type="text/plain")
        pdf = render_invoice(session, bill.id, issuer)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="invoice-{bill.number}.pdf"'},
    )


@router.get(PATH + "/credit-notes/{note_id}/pdf")
def credit_note_pdf(signed_in: SignedIn, note_id: uuid.UUID) -> Response:
    signed_in.require_any("bills:read")
    issuer = Issuer.from_settings(signed_in.ctx.settings)
    with signed_in.call.read() as session:
        try:
            note = credit_notes.get_note(session, note_id)
            _bill(signed_in, session, note.bill_id)
        except DomainError:
            return Response("not found", status_code=404, media_type="text/plain")
        pdf = render_credit_note(session, note.id, issuer)
        number = note.number
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="credit-note-{number}.pdf"'},
    )


@router.post(PATH + "/{bill_id}/{move}")
def invoice_move(
    signed_in: Posted,
    bill_id: uuid.UUID,
    move: str,
    amount: Annotated[str, Form()] = "",
    method: Annotated[str, Form()] = "bank-transfer",
    reference: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    signed_in.require_any("bills:write")
    response = RedirectResponse(f"{PATH}/{bill_id}", status_code=303)
    principal, now = signed_in.principal, signed_in.now()
    try:
        with signed_in.call.write() as session:
            if move == "validate":
                invoices.validate_bill(session, principal, bill_id, at=now)
                done = "Invoice validated."
            elif move == "send":
                invoices.send_bill(session, principal, bill_id, at=now)
                done = "Invoice sent to the customer."
            elif move in ("hold", "release"):
                invoices.set_held(
                    session,
                    principal,
                    bill_id,
                    held=move == "hold",
                    at=now,
                    reason=reason.strip()[:500] or None,
                )
                done = "Invoice put on hold." if move == "hold" else "Invoice released: new again."
            elif move in ("payments", "refunds"):
                record = payments.record_payment if move == "payments" else payments.record_refund
                record(
                    session,
                    principal,
                    bill_id,
                    amount_micros=_micros(amount),
                    method=method.strip()[:32] or "bank-transfer",
                    reference=reference.strip()[:100],
                    at=now,
                )
                done = "Payment recorded." if move == "payments" else "Refund recorded."
            elif move == "adjustments":
                bill_adjustments.adjust_bill(
                    session,
                    principal,
                    bill_id,
                    amount_micros=yuan_amount(amount, example="-50.00", signed=True),
                    reason=reason,
                    at=now,
                )
                done = "Adjustment added; VAT and total worked out again."
            elif move == "credit-notes":
                settings = signed_in.ctx.settings
                note = credit_notes.issue_credit_note(
                    session,
                    principal,
                    bill_id,
                    amount_micros=yuan_amount(amount, example="50.00"),
                    reason=reason,
                    at=now,
                    series_prefix=settings.invoice_series_prefix,
                    tz=settings.business_timezone,
                )
                done = f"Credit note {note.number} issued for {format_cny(note.total_micros)}."
            else:
                raise invoices.BillNotFound(f"no move {move!r}")
        flash = Flash("success", done)
    except DomainError as exc:
        flash = Flash("error", exc.detail)
    set_flash(response, flash, secure=signed_in.ctx.settings.cookie_secure)
    return response


def _micros(amount: str) -> int:
    return yuan_amount(amount, example="106.01")
