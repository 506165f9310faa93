"""Billing accounts of a customer: open (postpaid or prepaid), list, read with the balance;
and every account the caller sees, across customers (``GET /api/v1/billing-accounts``).

Opening an account is for operator staff (``customers:write``); the customer's own users see
their accounts and balances, and its administrators, like staff, choose when a prepaid balance
is announced as running low (``notices:write``). Top-ups and charges belong to billing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.api import problems
from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    Input,
    LimitParam,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.deps import Call, requires
from satiot.bss import accounts
from satiot.bss.customers import get_customer
from satiot.bss.models import BillingAccount
from satiot.bss.money import fen_text, to_micros, to_yuan
from satiot.core.pagination import paginate

router = APIRouter(prefix="/customers/{customer_id}/billing-accounts", tags=["customers"])
Reader = Annotated[Call, Depends(requires("customers:read"))]
Writer = Annotated[Call, Depends(requires("customers:write"))]
Notices = Annotated[Call, Depends(requires("notices:write"))]

problems.CATALOG.setdefault(
    accounts.AccountNotFound.slug,
    (accounts.AccountNotFound.title, "No such billing account for this customer."),
)


class BillingAccountIn(Input):
    payment_mode: Literal["postpaid", "prepaid"]
    name: str | None = Field(default=None, max_length=200, description="Defaults to the customer's")


LowBalance = Annotated[
    Decimal | None,
    Field(
        ge=0,
        le=100_000_000,
        max_digits=11,
        decimal_places=2,
        description="Yuan: announce the prepaid balance once it falls below this "
        "(billing-account.balance-low); null: never",
        examples=["50.00"],
    ),
]


class LowBalanceIn(Input):
    low_balance: LowBalance


class BillingAccountOut(BaseModel):
    id: uuid.UUID
    href: str
    customer_id: uuid.UUID
    name: str
    payment_mode: str
    status: str
    currency: str
    balance_micros: int = Field(description="Balance in micro-yuan (negative: money owed)")
    balance: str = Field(description="Balance in yuan, exact", examples=["120.50"])
    balance_text: str = Field(examples=["¥120.50"])
    low_balance: str | None = Field(
        description="Yuan below which the balance is announced once (null: never)",
        examples=["50.00"],
    )
    created_at: datetime


def account_out(account: BillingAccount) -> BillingAccountOut:
    return BillingAccountOut(
        id=account.id,
        href=f"/api/v1/customers/{account.customer_id}/billing-accounts/{account.id}",
        customer_id=account.customer_id,
        name=account.name,
        payment_mode=account.payment_mode,
        status=account.status,
        currency=account.currency,
        balance_micros=account.balance_micros,
        balance=f"{to_yuan(account.balance_micros):f}",
        balance_text=accounts.balance_text(account),
        low_balance=None
        if account.low_balance_micros is None
        else fen_text(account.low_balance_micros),
        created_at=account.created_at,
    )


@router.post("", status_code=201, response_model=BillingAccountOut, summary="Open an account")
def post_account(
    call: Writer,
    request: Request,
    customer_id: uuid.UUID,
    body: BillingAccountIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create(session: Session) -> BillingAccountOut:
        account = accounts.open_account(
            session,
            call.principal,
            customer_id,
            payment_mode=body.payment_mode,
            name=body.name,
            at=call.now(),
        )
        return account_out(account)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("", response_model=Page[BillingAccountOut], summary="The customer's accounts")
def list_accounts(
    call: Reader,
    request: Request,
    response: Response,
    customer_id: uuid.UUID,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[BillingAccountOut]:
    with call.read() as session:
        get_customer(session, customer_id)
        stmt = select(BillingAccount).where(BillingAccount.customer_id == customer_id)
        page = paginate(session, stmt, BillingAccount.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, account_out)


@router.get("/{account_id}", response_model=BillingAccountOut, summary="One account")
def get_account(call: Reader, customer_id: uuid.UUID, account_id: uuid.UUID) -> BillingAccountOut:
    with call.read() as session:
        return account_out(accounts.get_account(session, account_id, customer_id=customer_id))


@router.put(
    "/{account_id}/low-balance",
    response_model=BillingAccountOut,
    summary="Set (or clear, with null) when a prepaid balance is announced as running low",
)
def put_low_balance(
    call: Notices, customer_id: uuid.UUID, account_id: uuid.UUID, body: LowBalanceIn
) -> BillingAccountOut:
    with call.write() as session:
        account = accounts.set_low_balance(
            session,
            call.principal,
            account_id,
            None if body.low_balance is None else to_micros(body.low_balance),
            at=call.now(),
            customer_id=customer_id,
        )
        return account_out(account)


#: Every account the caller sees, whoever the customer: collections staff look across
#: customers (which prepaid balances want a top-up), a customer's users at their own.
everyone = APIRouter(prefix="/billing-accounts", tags=["customers"])


@everyone.get(
    "",
    response_model=Page[BillingAccountOut],
    summary="Billing accounts across customers (a customer's users: their own), oldest first",
)
def list_all_accounts(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    payment_mode: Annotated[Literal["postpaid", "prepaid"] | None, Query()] = None,
    running_low: Annotated[
        bool,
        Query(
            description="Only prepaid accounts that want a top-up: at or below zero, or below "
            "their low-balance threshold"
        ),
    ] = False,
) -> Page[BillingAccountOut]:
    stmt = select(BillingAccount)
    if payment_mode is not None:
        stmt = stmt.where(BillingAccount.payment_mode == payment_mode)
    if running_low:
        stmt = stmt.where(accounts.running_low())
    with call.read() as session:
        page = paginate(session, stmt, BillingAccount.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, account_out)
