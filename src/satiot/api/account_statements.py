"""A billing account's statement (对账单) through the API, as JSON or as a CSV file.

``GET /billing-accounts/{id}/statement?from=&to=`` lists the account's invoices, credit notes,
payments and refunds from one day to another (the business time zone's days, both included;
``to`` defaults to today, ``from`` to the first entry) with the balance after each, between an
opening and a closing balance (:mod:`satiot.bss.account_statement`). Customers read their own
accounts' statements; another tenant's account is a 404, as everywhere.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from satiot.api.bills import Reader
from satiot.api.common import Output
from satiot.api.csv_files import CSV_FILE, file_response
from satiot.api.deps import Call
from satiot.bss import account_statement
from satiot.bss.money import fen_text
from satiot.bss.periods import local_date

router = APIRouter(prefix="/billing-accounts", tags=["billing"])

From = Annotated[
    date | None, Query(alias="from", description="First day, YYYY-MM-DD (default: the first entry)")
]
To = Annotated[date | None, Query(alias="to", description="Last day, YYYY-MM-DD (default: today)")]


class EntryOut(Output):
    at: datetime
    kind: str = Field(description="invoice, credit-note, payment or refund")
    document: str = Field(description="The invoice's or credit note's number, or the reference")
    invoice: str
    detail: str = Field(description="The invoice's period, the note's reason, the method")
    amount: str = Field(description="Yuan it adds to what is owed (below zero: takes off)")
    balance: str = Field(description="Yuan owed after it (below zero: owed to the customer)")


class StatementOut(Output):
    billing_account_id: uuid.UUID
    account_name: str
    start: date | None
    end: date
    opening: str
    closing: str
    entries: list[EntryOut]


def _statement(
    call: Call, account_id: uuid.UUID, start: date | None, end: date | None
) -> account_statement.Statement:
    tz = call.ctx.settings.business_timezone
    with call.read() as session:
        return account_statement.statement(
            session, account_id, start=start, end=end or local_date(call.now(), tz), tz=tz
        )


@router.get(
    "/{account_id}/statement",
    response_model=StatementOut,
    summary="The account's statement: invoices, credit notes, payments and refunds with balances",
)
def get_statement(
    call: Reader, account_id: uuid.UUID, start: From = None, end: To = None
) -> StatementOut:
    s = _statement(call, account_id, start, end)
    return StatementOut(
        billing_account_id=s.account_id,
        account_name=s.account_name,
        start=s.start,
        end=s.end,
        opening=fen_text(s.opening_micros),
        closing=fen_text(s.closing_micros),
        entries=[
            EntryOut(
                at=e.at,
                kind=e.kind,
                document=e.document,
                invoice=e.invoice,
                detail=e.detail,
                amount=fen_text(e.amount_micros),
                balance=fen_text(e.balance_micros),
            )
            for e in s.entries
        ],
    )


@router.get(
    "/{account_id}/statement/csv",
    summary="The account's statement as a CSV file (opening and closing as lines of their own)",
    response_class=Response,
    responses=CSV_FILE,
)
def get_statement_csv(
    call: Reader, account_id: uuid.UUID, start: From = None, end: To = None
) -> Response:
    s = _statement(call, account_id, start, end)
    data = b"".join(account_statement.export_statement(s, call.ctx.settings.business_timezone))
    return file_response(data, account_statement.file_name(s))
