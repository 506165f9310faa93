"""Bills (TMF678 customerBill), their lines, PDF and moves; bill runs; dry runs (payments,
refunds and top-ups are in :mod:`satiot.api.payments`, credit notes in
:mod:`satiot.api.credit_notes`).

Customers see their own bills once sent (``sent``, ``partiallyPaid``, ``settled``); billing
staff see every bill and move them through the lifecycle. Money is returned both as integer
micro-yuan (``*_micros``, exact) and as yuan text with two decimals (``total``, ``amount_due``).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

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
from satiot.api.deps import Call, requires
from satiot.bss import (
    bill_adjustments,
    bill_export,
    bill_statement,
    billing,
    invoices,
)
from satiot.bss.bill_statement import DeviceUsage
from satiot.bss.invoice_pdf import Issuer, render_invoice
from satiot.bss.models import BillingAccount, BillLine, CustomerBill
from satiot.bss.money import MICROS_PER_YUAN, fen_text
from satiot.bss.periods import PERIOD_PATTERN, check_period
from satiot.core.errors import Conflict, NotFound
from satiot.core.pagination import paginate

router = APIRouter(prefix="/bills", tags=["billing"])
accounts_router = APIRouter(prefix="/billing-accounts", tags=["billing"])
Reader = Annotated[Call, Depends(requires("bills:read"))]
Writer = Annotated[Call, Depends(requires("bills:write"))]

BillState = Literal["new", "onHold", "validated", "sent", "partiallyPaid", "settled"]
Period = Annotated[str, Query(pattern=PERIOD_PATTERN, examples=["2026-11"])]


class BillOut(Output):
    id: uuid.UUID
    number: str
    tenant_id: uuid.UUID
    billing_account_id: uuid.UUID
    bill_run_id: uuid.UUID | None
    period: str
    period_start: date
    period_end: date
    state: str
    recurring_micros: int
    usage_micros: int
    one_time_micros: int
    adjustment_micros: int = Field(
        description="Adjustments by billing staff before validation (below zero: credits)"
    )
    subtotal_micros: int = Field(description="Before VAT: every line, adjustments included")
    tax_rate_bp: int = Field(description="VAT rate in basis points (600 = 6 %)")
    tax_micros: int
    total_micros: int
    paid_micros: int
    credited_micros: int = Field(
        description="What credit notes took off once the bill was sent, VAT included"
    )
    due_micros: int = Field(
        description="Still owed: the total less payments and credit notes (below zero: owed to "
        "the customer after credit notes, until refunded)"
    )
    total: str = Field(description="Total in yuan, two decimals")
    amount_due: str = Field(
        description="Still owed, in yuan (below zero: owed to the customer, to be refunded)"
    )
    issued_at: datetime
    due_at: datetime


class LineOut(Output):
    id: uuid.UUID
    kind: str
    description: str
    quantity: int
    unit: str
    amount_micros: int
    amount: str


class DeviceUsageOut(Output):
    subscription_id: uuid.UUID
    dev_eui: str
    imei: str | None
    iot_number: str | None
    uplink_messages: int
    downlink_messages: int
    bytes: int
    billable_bytes: int
    charge_micros: int = Field(description="The device's usage charge on the bill, exactly")
    charge: str = Field(description="The same in yuan, six decimals (exact)")
    first_day: int | None = Field(
        description="First day of the month the device's fees were charged for (1-based); "
        "null for a device charged by use alone, or on a bill issued before fees were kept "
        "per device"
    )
    last_day: int | None = Field(description="Last day of the month its fees were charged for")
    service_days: int | None = Field(description="Days its fees were charged for")
    recurring_micros: int = Field(
        description="Its recurring fees on the bill (offering and add-ons), prorated over its "
        "days of service, exactly"
    )
    one_time_micros: int = Field(description="Its one-time fees (activation in the month)")
    total_micros: int = Field(description="Fees and usage charge: its share before VAT")
    total: str = Field(description="The same in yuan, six decimals (exact)")

    @classmethod
    def of(cls, d: DeviceUsage) -> DeviceUsageOut:
        return cls(
            **asdict(d),
            charge=d.charge_yuan,
            service_days=d.service_days,
            total_micros=d.total_micros,
            total=d.total_yuan,
        )


class DraftOut(Output):
    billing_account_id: uuid.UUID
    period: str
    lines: list[LineOut]
    recurring_micros: int
    usage_micros: int
    one_time_micros: int
    tax_rate_bp: int
    tax_micros: int
    total_micros: int
    total: str


class AdjustmentIn(Input):
    amount: Decimal = Field(
        max_digits=14,
        decimal_places=2,
        description="Yuan: below zero a credit, above a charge, e.g. -50.00",
        examples=["-50.00"],
    )
    reason: str = Field(
        min_length=1,
        max_length=bill_adjustments.MAX_REASON,
        description="Why: the line's description, on the invoice",
        examples=["Credit for the outage of 12 November"],
    )


class AdjustmentOut(Output):
    line: LineOut
    bill: BillOut


class HoldIn(Input):
    reason: str = Field(min_length=1, max_length=500)


def bill_out(b: CustomerBill) -> BillOut:
    return BillOut.model_validate(
        {
            **{k: getattr(b, k) for k in BillOut.model_fields if hasattr(b, k)},
            "total": fen_text(b.total_micros),
            "amount_due": fen_text(b.due_micros),
        }
    )


def _line_out(ln: BillLine) -> LineOut:
    return LineOut(
        id=ln.id,
        kind=ln.kind,
        description=ln.description,
        quantity=ln.quantity,
        unit=ln.unit,
        amount_micros=ln.amount_micros,
        amount=fen_text(ln.amount_micros),
    )


def micros(amount: Decimal) -> int:
    """Yuan as the API takes them (two decimals, checked by the model) in micro-yuan."""
    return int(amount * MICROS_PER_YUAN)


def visible_bill(call: Call, session: Session, bill_id: uuid.UUID) -> CustomerBill:
    bill = invoices.get_bill(session, bill_id)
    if not call.principal.all_tenants and bill.state not in invoices.CUSTOMER_VISIBLE:
        raise invoices.BillNotFound(f"no bill {bill_id}")
    return bill


def _bill_filters(
    call: Call,
    period: str | None,
    state: str | None,
    account_id: uuid.UUID | None,
    to_refund: bool,
    overdue: bool,
) -> list[ColumnElement[bool]]:
    return invoices.bill_filters(
        period=period,
        state=state,
        account_id=account_id,
        all_tenants=call.principal.all_tenants,
        to_refund=to_refund,
        overdue_at=call.now() if overdue else None,
    )


Overdue = Annotated[
    bool, Query(description="Only bills sent, still owed and past their due date now")
]
ToRefund = Annotated[
    bool,
    Query(
        description="Only bills that owe their customer money (credit notes beyond what was "
        "left to pay), to be refunded"
    ),
]


@router.get("", response_model=Page[BillOut], summary="List bills, newest first")
def list_bills(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    period: Period | None = None,
    state: Annotated[BillState | None, Query()] = None,
    billing_account_id: Annotated[uuid.UUID | None, Query()] = None,
    to_refund: ToRefund = False,
    overdue: Overdue = False,
) -> Page[BillOut]:
    where = _bill_filters(call, period, state, billing_account_id, to_refund, overdue)
    stmt = select(CustomerBill).where(*where)
    with call.read() as session:
        page = paginate(session, stmt, CustomerBill.id, cursor=cursor, limit=limit, descending=True)
        return page_response(request, response, page, bill_out)


@router.get(
    "/csv",
    summary="Every bill the list's filters keep, as one CSV file for the ledger (streamed)",
    response_class=StreamingResponse,
    responses=CSV_FILE,
)
def export_bills(
    call: Reader,
    period: Period | None = None,
    state: Annotated[BillState | None, Query()] = None,
    billing_account_id: Annotated[uuid.UUID | None, Query()] = None,
    to_refund: ToRefund = False,
    overdue: Overdue = False,
) -> StreamingResponse:
    """One line per bill, oldest first: number, period, state, customer and credit code,
    account, issue and due dates (China), each charge, adjustments, subtotal, VAT, total,
    paid, credited and balance due in yuan; the columns are in :mod:`satiot.bss.bill_export`."""
    where = _bill_filters(call, period, state, billing_account_id, to_refund, overdue)
    return streamed_download(
        call.read,
        lambda session: bill_export.export_bills(session, where),
        bill_export.file_name(period, call.now()),
    )


@router.get("/{bill_id}", response_model=BillOut, summary="One bill")
def get_bill(call: Reader, bill_id: uuid.UUID) -> BillOut:
    with call.read() as session:
        return bill_out(visible_bill(call, session, bill_id))


@router.get("/{bill_id}/lines", response_model=list[LineOut], summary="A bill's lines")
def get_lines(call: Reader, bill_id: uuid.UUID) -> list[LineOut]:
    with call.read() as session:
        bill = visible_bill(call, session, bill_id)
        return [_line_out(ln) for ln in invoices.lines_of(session, bill.id)]


@router.get(
    "/{bill_id}/device-usage",
    response_model=Page[DeviceUsageOut],
    summary="A bill's device statement: each device's fees, messages, bytes and charges",
)
def list_device_usage(
    call: Reader,
    request: Request,
    response: Response,
    bill_id: uuid.UUID,
    cursor: CursorParam = None,
    limit: LimitParam = 100,
) -> Page[DeviceUsageOut]:
    """The devices on this bill, by subscription id: those it charged a fee for and those
    that used the network. The charges are exact; they add up to the bill's recurring,
    one-time and usage lines before each line is rounded to the fen."""
    with call.read() as session:
        bill = visible_bill(call, session, bill_id)
        page = bill_statement.statement_page(session, bill.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, DeviceUsageOut.of)


@router.get(
    "/{bill_id}/device-usage/csv",
    summary="A bill's usage statement as one CSV file (streamed)",
    response_class=StreamingResponse,
    responses=CSV_FILE,
)
def export_device_usage(call: Reader, bill_id: uuid.UUID) -> StreamingResponse:
    """One line per device, as the list has it; the columns are in
    :mod:`satiot.bss.bill_statement`."""
    with call.read() as session:
        bill = visible_bill(call, session, bill_id)
        number = bill.number
    return streamed_download(
        call.read,
        lambda session: bill_statement.export_statement(session, bill_id, number),
        bill_statement.file_name(number),
    )


@router.get(
    "/{bill_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The invoice as PDF"}},
    summary="The invoice as a PDF",
)
def get_pdf(call: Reader, bill_id: uuid.UUID) -> Response:
    issuer = Issuer.from_settings(call.ctx.settings)
    with call.read() as session:
        bill = visible_bill(call, session, bill_id)
        pdf = render_invoice(session, bill.id, issuer)
        number = bill.number
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="invoice-{number}.pdf"'},
    )


@router.post("/{bill_id}/validate", response_model=BillOut, summary="new → validated")
def validate(call: Writer, bill_id: uuid.UUID) -> BillOut:
    with call.write() as session:
        return bill_out(invoices.validate_bill(session, call.principal, bill_id, at=call.now()))


@router.post(
    "/{bill_id}/send",
    response_model=BillOut,
    summary="validated → sent (a prepaid account's bill is then paid from its balance)",
)
def send(call: Writer, bill_id: uuid.UUID) -> BillOut:
    with call.write() as session:
        return bill_out(invoices.send_bill(session, call.principal, bill_id, at=call.now()))


@router.post("/{bill_id}/hold", response_model=BillOut, summary="Hold a new bill, or release it")
def hold(call: Writer, bill_id: uuid.UUID, body: HoldIn) -> BillOut:
    with call.write() as session:
        bill = invoices.hold_bill(
            session, call.principal, bill_id, at=call.now(), reason=body.reason
        )
        return bill_out(bill)


@router.post(
    "/{bill_id}/adjustments",
    status_code=201,
    response_model=AdjustmentOut,
    summary="Adjust a new or held bill: a credit or charge line, VAT and total worked out again",
)
def post_adjustment(
    call: Writer,
    request: Request,
    bill_id: uuid.UUID,
    body: AdjustmentIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """409 once the bill is validated; 422 for ¥0, or a credit beyond the subtotal. With an
    ``Idempotency-Key`` a repeat adds nothing and returns the first answer."""

    def adjust(session: Session) -> AdjustmentOut:
        done = bill_adjustments.adjust_bill(
            session,
            call.principal,
            bill_id,
            amount_micros=micros(body.amount),
            reason=body.reason,
            at=call.now(),
        )
        return AdjustmentOut(line=_line_out(done.line), bill=bill_out(done.bill))

    return create_idempotently(call, request, idempotency_key, body, adjust)


# -- per account: dry run ----------------------------------------------------------


def _account(session: Session, account_id: uuid.UUID) -> BillingAccount:
    account = session.get(BillingAccount, account_id)
    if account is None:
        raise NotFound(f"no billing account {account_id}")
    return account


@accounts_router.get(
    "/{account_id}/dry-run",
    response_model=DraftOut,
    summary="The bill this account would get for a period, computed now; writes nothing",
)
def get_dry_run(call: Reader, account_id: uuid.UUID, period: Period) -> DraftOut:
    check_period(period)
    s = call.ctx.settings
    with call.read() as session:
        _account(session, account_id)
        draft = billing.dry_run(
            session,
            account_id,
            period,
            at=call.now(),
            tax_rate_bp=s.tax_rate_bp,
            tz=s.business_timezone,
        )
        if draft is None:
            existing = session.scalar(
                select(CustomerBill.number).where(
                    CustomerBill.billing_account_id == account_id, CustomerBill.period == period
                )
            )
            if existing is not None:
                raise Conflict(f"{period} is billed already: bill {existing}")
            draft = billing.Draft(str(account_id), "", period, tax_rate_bp=s.tax_rate_bp)
    return DraftOut(
        billing_account_id=account_id,
        period=period,
        lines=[
            LineOut(
                id=uuid.UUID(int=i + 1),
                kind=ln.kind,
                description=ln.description,
                quantity=ln.quantity,
                unit=ln.unit,
                amount_micros=ln.amount_micros,
                amount=fen_text(ln.amount_micros),
            )
            for i, ln in enumerate(draft.lines)
        ],
        recurring_micros=draft.recurring_micros,
        usage_micros=draft.usage_micros,
        one_time_micros=draft.one_time_micros,
        tax_rate_bp=draft.tax_rate_bp,
        tax_micros=draft.tax_micros,
        total_micros=draft.total_micros,
        total=fen_text(draft.total_micros),
    )
