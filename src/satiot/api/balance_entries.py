"""A prepaid billing account's balance history through the API.

``GET /billing-accounts/{id}/balance-entries`` pages the account's ledger newest first: each
top-up, usage debit, bill paid from the balance and credit refunded to it, with the balance
after it (:mod:`satiot.bss.balance_history`); ``/balance-entries/csv`` streams the whole ledger
as a file, oldest first. Customers read their own accounts'; another tenant's account is a
404. A postpaid account has no entries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from satiot.api.bills import Reader
from satiot.api.common import CursorParam, LimitParam, Output, Page, page_response
from satiot.api.csv_files import CSV_FILE, streamed_download
from satiot.bss import accounts, balance_history
from satiot.bss.ledger_models import BalanceEntry
from satiot.bss.money import fen_text
from satiot.core.pagination import paginate

router = APIRouter(prefix="/billing-accounts", tags=["billing"])


class BalanceEntryOut(Output):
    id: uuid.UUID
    at: datetime
    kind: Literal["opening", "top-up", "usage", "bill", "credit"]
    description: str = Field(examples=["usage rated"])
    reference: str | None = Field(
        description="The top-up's reference, the bill's or the credit note's number"
    )
    amount_micros: int = Field(description="The change, in micro-yuan (below zero: a debit)")
    amount: str = Field(description="The change in yuan, to the fen", examples=["-0.02"])
    balance_micros: int = Field(description="The balance after it, in micro-yuan")
    balance: str = Field(description="The balance after it in yuan, to the fen")


def entry_out(entry: BalanceEntry) -> BalanceEntryOut:
    return BalanceEntryOut(
        id=entry.id,
        at=entry.at,
        kind=entry.kind,  # one of KINDS, written by the domain
        description=balance_history.KINDS.get(entry.kind, entry.kind),
        reference=entry.reference,
        amount_micros=entry.amount_micros,
        amount=fen_text(entry.amount_micros),
        balance_micros=entry.balance_micros,
        balance=fen_text(entry.balance_micros),
    )


@router.get(
    "/{account_id}/balance-entries",
    response_model=Page[BalanceEntryOut],
    summary="A prepaid account's balance history, newest first: each change and the balance after",
)
def list_balance_entries(
    call: Reader,
    request: Request,
    response: Response,
    account_id: uuid.UUID,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[BalanceEntryOut]:
    with call.read() as session:
        accounts.get_account(session, account_id)
        stmt = balance_history.entries_of(account_id)
        page = paginate(session, stmt, BalanceEntry.id, cursor=cursor, limit=limit, descending=True)
        return page_response(request, response, page, entry_out)


@router.get(
    "/{account_id}/balance-entries/csv",
    summary="A prepaid account's whole balance history as a CSV file, oldest first (streamed)",
    response_class=StreamingResponse,
    responses=CSV_FILE,
)
def get_balance_entries_csv(call: Reader, account_id: uuid.UUID) -> StreamingResponse:
    with call.read() as session:
        accounts.get_account(session, account_id)
    tz = call.ctx.settings.business_timezone
    return streamed_download(
        call.read,
        lambda session: balance_history.export_entries(session, account_id, tz),
        balance_history.file_name(account_id),
    )
