"""Payments imported from a bank statement (CSV): every line recorded, or none.

``POST /payments/csv`` takes the file as multipart (field ``file``) or as a ``text/csv`` body,
as the other imports do (:mod:`satiot.api.csv_files`); the columns and rules are in
:mod:`satiot.bss.payment_import`. Any bad line refuses the whole file: 422
``payment-import-rejected`` with ``errors`` naming each ``{line, column, reason}``. Sent again
with the same ``Idempotency-Key``, the first answer is replayed; sent again without one, the
payments already recorded count as ``already`` and nothing is recorded twice.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.orm import Session

from satiot.api import problems
from satiot.api.bills import Reader, Writer
from satiot.api.common import IdempotencyKey, Output
from satiot.api.csv_files import (
    CSV_415,
    CSV_BODY,
    CSV_FILE,
    EncodingParam,
    file_response,
    import_file,
)
from satiot.bss import payment_import

router = APIRouter(prefix="/payments", tags=["billing"])

problems.CATALOG.setdefault(
    payment_import.PaymentImportRejected.slug,
    (
        payment_import.PaymentImportRejected.title,
        "One or more lines of the payment file cannot be recorded; none was. The errors member "
        "lists each one: line (the header is 1), column and reason.",
    ),
)


class ImportOut(Output):
    recorded: int = Field(description="Payments recorded now")
    already: int = Field(description="Lines whose payment was recorded before (same reference)")
    amount_micros: int = Field(description="Micro-yuan of the payments recorded now")
    settled: int = Field(description="Bills the payments recorded now leave settled")


@router.get(
    "/csv-template",
    summary="An empty payment file to fill in: the header line",
    response_class=Response,
    responses=CSV_FILE,
)
def get_csv_template(call: Reader) -> Response:
    return file_response(payment_import.template(), payment_import.TEMPLATE_NAME)


@router.post(
    "/csv",
    response_model=ImportOut,
    summary="Record payments from a bank statement (multipart 'file', or a text/csv body)",
    responses=CSV_415,
    openapi_extra=CSV_BODY,
)
async def post_csv(
    call: Writer,
    request: Request,
    encoding: EncodingParam = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Columns ``bill`` (invoice number or id), ``amount`` (yuan), ``reference`` (the bank's),
    and optionally ``method`` and ``received_on`` (YYYY-MM-DD). Every payment is recorded as
    ``POST /bills/{id}/payments`` records one, in one transaction."""
    tz = call.ctx.settings.business_timezone

    def load(session: Session, data: bytes, codec: str) -> ImportOut:
        lines = payment_import.read_payments(data, encoding=codec, at=call.now(), tz=tz)
        done = payment_import.import_payments(session, call.principal, lines, at=call.now(), tz=tz)
        return ImportOut(**asdict(done))

    return await import_file(call, request, encoding, idempotency_key, load)
