"""Payments against bills, refunds, and top-ups of prepaid accounts; and all of them as one
list (``GET /api/v1/payments``).

A payment's ``reference`` (the bank transfer's serial, the gateway's id) is unique per billing
account, so a repeat is recorded once: 201 for a new payment, 200 with the first when the
reference had it. A refund is a payment below zero on a bill that owes its customer money
after credit notes. The rules are in :mod:`satiot.bss.payments`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime, Field
from sqlalchemy import select

from satiot.api.bills import Reader, Writer, micros, visible_bill
from satiot.api.common import CursorParam, Input, LimitParam, Output, Page, page_response
from satiot.api.csv_files import CSV_FILE, streamed_download
from satiot.bss import payment_export, payments
from satiot.bss.models import Payment
from satiot.bss.money import fen_text
from satiot.core.pagination import paginate

router = APIRouter(prefix="/bills", tags=["billing"])
accounts_router = APIRouter(prefix="/billing-accounts", tags=["billing"])


class PaymentIn(Input):
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2, description="Yuan, e.g. 106.01")
    method: str = Field(min_length=1, max_length=32, examples=["bank-transfer"])
    reference: str = Field(
        min_length=1, max_length=100, description="Unique per account: a repeat is recorded once"
    )
    received_at: AwareDatetime | None = Field(default=None, description="ISO-8601 with a zone")


class TopUpIn(Input):
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    method: str = Field(min_length=1, max_length=32)
    reference: str = Field(min_length=1, max_length=100)


class PaymentOut(Output):
    id: uuid.UUID
    billing_account_id: uuid.UUID
    bill_id: uuid.UUID | None
    amount_micros: int
    amount: str
    method: str
    reference: str
    received_at: datetime
    recorded_by: str


def _payment_out(p: Payment) -> PaymentOut:
    return PaymentOut.model_validate(
        {**{k: getattr(p, k) for k in PaymentOut.model_fields if k != "amount"}}
        | {"amount": fen_text(p.amount_micros)}
    )


def _recorded(payment: Payment, new: bool) -> JSONResponse:
    """A payment, top-up or refund as recorded: 201 when new, 200 when its reference had it."""
    return JSONResponse(jsonable_encoder(_payment_out(payment)), status_code=201 if new else 200)


@router.get("/{bill_id}/payments", response_model=list[PaymentOut], summary="Payments of a bill")
def list_payments(call: Reader, bill_id: uuid.UUID) -> list[PaymentOut]:
    with call.read() as session:
        bill = visible_bill(call, session, bill_id)
        rows = session.scalars(
            select(Payment).where(Payment.bill_id == bill.id).order_by(Payment.id)
        )
        return [_payment_out(p) for p in rows]


@router.post(
    "/{bill_id}/payments",
    status_code=201,
    response_model=PaymentOut,
    responses={200: {"model": PaymentOut, "description": "Already recorded (same reference)"}},
    summary="Record a payment against a sent bill",
)
def post_payment(call: Writer, bill_id: uuid.UUID, body: PaymentIn) -> JSONResponse:
    with call.write() as session:
        payment, new = payments.record_payment(
            session,
            call.principal,
            bill_id,
            amount_micros=micros(body.amount),
            method=body.method,
            reference=body.reference,
            at=call.now(),
            received_at=body.received_at,
        )
        return _recorded(payment, new)


class RefundIn(Input):
    amount: Decimal = Field(
        gt=0, max_digits=14, decimal_places=2, description="Yuan paid back, e.g. 10.00"
    )
    method: str = Field(min_length=1, max_length=32, examples=["bank-transfer"])
    reference: str = Field(
        min_length=1, max_length=100, description="Unique per account: a repeat is recorded once"
    )


@router.post(
    "/{bill_id}/refunds",
    status_code=201,
    response_model=PaymentOut,
    responses={200: {"model": PaymentOut, "description": "Already recorded (same reference)"}},
    summary="Record money paid back on a bill that owes the customer (after credit notes)",
)
def post_refund(call: Writer, bill_id: uuid.UUID, body: RefundIn) -> JSONResponse:
    """A refund is listed with the bill's payments, below zero. 409 when the bill owes the
    customer nothing; 422 beyond what it owes."""
    with call.write() as session:
        refund, new = payments.record_refund(
            session,
            call.principal,
            bill_id,
            amount_micros=micros(body.amount),
            method=body.method,
            reference=body.reference,
            at=call.now(),
        )
        return _recorded(refund, new)


@accounts_router.post(
    "/{account_id}/top-ups",
    status_code=201,
    response_model=PaymentOut,
    responses={200: {"model": PaymentOut, "description": "Already recorded (same reference)"}},
    summary="Top up a prepaid account's balance",
)
def post_top_up(call: Writer, account_id: uuid.UUID, body: TopUpIn) -> JSONResponse:
    with call.write() as session:
        payment, new = payments.top_up(
            session,
            call.principal,
            account_id,
            amount_micros=micros(body.amount),
            method=body.method,
            reference=body.reference,
            at=call.now(),
        )
        return _recorded(payment, new)


#: Money in and out across bills and accounts, for reconciling a bank statement or a month.
listing_router = APIRouter(prefix="/payments", tags=["billing"])
PaymentKind = Literal["payment", "refund", "top-up"]


KindParam = Annotated[
    PaymentKind | None,
    Query(description="payment (against a bill), refund (paid back) or top-up (prepaid)"),
]
ReceivedFrom = Annotated[
    AwareDatetime | None, Query(description="Received at or after (ISO-8601 with a zone)")
]
ReceivedBefore = Annotated[
    AwareDatetime | None, Query(description="Received before (ISO-8601 with a zone)")
]


@listing_router.get(
    "/csv",
    summary="The payments the list's filters keep as one CSV file, oldest first (streamed)",
    response_class=StreamingResponse,
    responses=CSV_FILE,
)
def payments_csv(
    call: Reader,
    billing_account_id: Annotated[uuid.UUID | None, Query()] = None,
    kind: KindParam = None,
    received_from: ReceivedFrom = None,
    received_before: ReceivedBefore = None,
) -> StreamingResponse:
    """Received time (China), kind, amount in yuan (a refund below zero), method, reference,
    the invoice and its month, customer and credit code, account, who recorded it, the id;
    the columns are in :mod:`satiot.bss.payment_export`."""
    where = payments.listed(
        kind=kind,
        billing_account_id=billing_account_id,
        received_from=received_from,
        received_before=received_before,
    )
    tz = call.ctx.settings.business_timezone
    return streamed_download(
        call.read,
        lambda session: payment_export.export_payments(session, where, tz=tz),
        payment_export.file_name(None, call.now()),
    )


@listing_router.get(
    "",
    response_model=Page[PaymentOut],
    summary="Payments, refunds and top-ups the caller sees, newest first",
)
def list_all_payments(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 100,
    billing_account_id: Annotated[uuid.UUID | None, Query()] = None,
    kind: KindParam = None,
    received_from: ReceivedFrom = None,
    received_before: ReceivedBefore = None,
) -> Page[PaymentOut]:
    stmt = select(Payment).where(
        *payments.listed(
            kind=kind,
            billing_account_id=billing_account_id,
            received_from=received_from,
            received_before=received_before,
        )
    )
    with call.read() as session:
        page = paginate(session, stmt, Payment.id, cursor=cursor, limit=limit, descending=True)
        return page_response(request, response, page, _payment_out)
