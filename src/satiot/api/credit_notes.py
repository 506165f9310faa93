"""Credit notes: corrections of bills the customer has received, their PDF and register.

Billing staff issue them on a sent bill (``bills:write``); the customer reads a bill's notes
and their PDFs as it reads the bill, and lists and exports its own. The rules are in
:mod:`satiot.bss.credit_notes`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from satiot.api.bills import BillOut, Reader, Writer, bill_out, visible_bill
from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    Input,
    LimitParam,
    Output,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.csv_files import CSV_FILE, streamed_download
from satiot.api.deps import Call
from satiot.bss import bill_adjustments, credit_note_export, credit_notes, invoices
from satiot.bss.invoice_pdf import Issuer, render_credit_note
from satiot.bss.models import CreditNote
from satiot.bss.money import MICROS_PER_YUAN, fen_text
from satiot.bss.periods import PERIOD_PATTERN
from satiot.core.pagination import paginate

router = APIRouter(tags=["billing"])


class CreditNoteIn(Input):
    amount: Decimal = Field(
        gt=0,
        max_digits=14,
        decimal_places=2,
        description="Yuan credited before VAT (the note adds the VAT that goes with it)",
        examples=["50.00"],
    )
    reason: str = Field(
        min_length=1,
        max_length=bill_adjustments.MAX_REASON,
        description="Why: printed on the credit note",
        examples=["Credit for the outage of 12 November"],
    )


class CreditNoteOut(Output):
    id: uuid.UUID
    number: str = Field(examples=["SATCN2026-00000001"])
    bill_id: uuid.UUID
    billing_account_id: uuid.UUID
    subtotal_micros: int = Field(description="Credited before VAT")
    tax_micros: int = Field(description="The VAT credited with it")
    total_micros: int = Field(description="Credited in all")
    total: str = Field(description="The same in yuan, two decimals")
    returned_micros: int = Field(description="Of the total, given back to a prepaid balance")
    reason: str
    issued_at: datetime
    issued_by: str


class IssuedOut(Output):
    credit_note: CreditNoteOut
    bill: BillOut


def note_out(n: CreditNote) -> CreditNoteOut:
    return CreditNoteOut.model_validate(
        {k: getattr(n, k) for k in CreditNoteOut.model_fields if k != "total"}
        | {"total": fen_text(n.total_micros)}
    )


@router.get(
    "/bills/{bill_id}/credit-notes",
    response_model=list[CreditNoteOut],
    summary="A bill's credit notes, in the order issued",
)
def list_credit_notes(call: Reader, bill_id: uuid.UUID) -> list[CreditNoteOut]:
    with call.read() as session:
        bill = visible_bill(call, session, bill_id)
        return [note_out(n) for n in credit_notes.notes_of(session, bill.id)]


@router.post(
    "/bills/{bill_id}/credit-notes",
    status_code=201,
    response_model=IssuedOut,
    summary="Credit a sent bill: a numbered credit note for an amount and its VAT",
)
def post_credit_note(
    call: Writer,
    request: Request,
    bill_id: uuid.UUID,
    body: CreditNoteIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """409 for a bill not yet sent (adjust it instead); 422 for a credit beyond the subtotal
    not yet credited, or on a postpaid bill beyond what is still owed (a refund). With an
    ``Idempotency-Key`` a repeat issues nothing and returns the first answer."""
    s = call.ctx.settings

    def issue(session: Session) -> IssuedOut:
        note = credit_notes.issue_credit_note(
            session,
            call.principal,
            bill_id,
            amount_micros=int(body.amount * MICROS_PER_YUAN),
            reason=body.reason,
            at=call.now(),
            series_prefix=s.invoice_series_prefix,
            tz=s.business_timezone,
        )
        bill = invoices.get_bill(session, bill_id)
        return IssuedOut(credit_note=note_out(note), bill=bill_out(bill))

    return create_idempotently(call, request, idempotency_key, body, issue)


Month = Annotated[
    str | None,
    Query(
        pattern=PERIOD_PATTERN,
        description="Only notes issued in this month (YYYY-MM, business time zone)",
        examples=["2026-12"],
    ),
]


def _note_filters(
    call: Call, month: str | None, account_id: uuid.UUID | None
) -> list[ColumnElement[bool]]:
    return credit_note_export.note_filters(
        month=month, account_id=account_id, tz=call.ctx.settings.business_timezone
    )


@router.get(
    "/credit-notes",
    response_model=Page[CreditNoteOut],
    summary="Credit notes, newest first (a customer's own)",
)
def list_notes(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    month: Month = None,
    billing_account_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[CreditNoteOut]:
    stmt = select(CreditNote).where(*_note_filters(call, month, billing_account_id))
    with call.read() as session:
        page = paginate(session, stmt, CreditNote.id, cursor=cursor, limit=limit, descending=True)
        return page_response(request, response, page, note_out)


@router.get(
    "/credit-notes/csv",
    summary="Every credit note the list's filters keep, as one CSV register for the ledger",
    response_class=StreamingResponse,
    responses=CSV_FILE,
)
def export_notes(
    call: Reader,
    month: Month = None,
    billing_account_id: Annotated[uuid.UUID | None, Query()] = None,
) -> StreamingResponse:
    """One line per note, oldest first: number, issue date (China), the invoice it corrects
    and its period, customer and credit code, account, amount before VAT, VAT, total, what went
    back to a prepaid balance, reason and who issued it; the columns are in
    :mod:`satiot.bss.credit_note_export`."""
    where = _note_filters(call, month, billing_account_id)
    return streamed_download(
        call.read,
        lambda session: credit_note_export.export_notes(session, where),
        credit_note_export.file_name(month, call.now()),
    )


@router.get(
    "/credit-notes/{note_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The credit note"}},
    summary="A credit note as a PDF",
)
def get_credit_note_pdf(call: Reader, note_id: uuid.UUID) -> Response:
    issuer = Issuer.from_settings(call.ctx.settings)
    with call.read() as session:
        note = credit_notes.get_note(session, note_id)
        visible_bill(call, session, note.bill_id)
        pdf = render_credit_note(session, note.id, issuer)
        number = note.number
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="credit-note-{number}.pdf"'},
    )
