"""Payments imported from a bank statement in the console, and the empty file to fill in.

Billing staff reach it from the Invoices page. A refused file comes back on the page with every
bad line's line, column and reason, nothing recorded, as ``POST /api/v1/payments/csv`` and
``satiot bills payments`` answer; an accepted one leads to the month's invoices with what was
recorded. The form is sent once (``form_key``): a second click records nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.api.csv_files import file_response
from satiot.bss.money import format_cny
from satiot.bss.payment_import import (
    COLUMNS,
    TEMPLATE_NAME,
    ParsedPayments,
    PaymentImportRejected,
    import_payments,
    read_payments,
    template,
)
from satiot.web.flash import Flash
from satiot.web.once import FormKey, Sent
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn
from satiot.web.uploads import apply_upload
from satiot.web.views.figures import counted

router = APIRouter()
PATH = "/payments/import"


def _page(
    request: Request,
    signed_in: ConsoleSession,
    *,
    rejected: PaymentImportRejected | None = None,
    flash: Flash | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        signed_in,
        "payment_import.html",
        {"title": "Import payments", "columns": COLUMNS, "rejected": rejected},
        flash=flash,
        status_code=status_code,
    )


@router.get(PATH)
def import_page(request: Request, signed_in: SignedIn) -> Response:
    signed_in.require_any("bills:write")
    return _page(request, signed_in)


@router.get(PATH + "/template.csv")
def payments_template(signed_in: SignedIn) -> Response:
    signed_in.require_any("bills:write")
    return file_response(template(), TEMPLATE_NAME)


@router.post(PATH)
def import_file(
    request: Request,
    signed_in: Posted,
    file: Annotated[UploadFile, File()],
    encoding: Annotated[str, Form()] = "utf-8",
    form_key: FormKey = "",
) -> Response:
    signed_in.require_any("bills:write")
    tz = signed_in.ctx.settings.business_timezone

    def work(session: Session, lines: ParsedPayments) -> Sent:
        done = import_payments(session, signed_in.principal, lines, at=signed_in.now(), tz=tz)
        told = f"{counted(done.recorded, 'payment')} recorded ({format_cny(done.amount_micros)})"
        if done.already:
            told += f", {done.already:,} recorded before"
        if done.settled:
            told += f"; {counted(done.settled, 'bill')} now settled"
        return Sent("/invoices", f"Payments imported: {told}.")

    response, _ = apply_upload(
        request,
        signed_in,
        file,
        form_key,
        rejected=PaymentImportRejected,
        read=lambda data: read_payments(data, encoding=encoding, at=signed_in.now(), tz=tz),
        work=work,
        form_page=lambda **shown: _page(request, signed_in, **shown),
    )
    return response
