"""A billing account's statement in the console, and its CSV file.

Reached from the account's page. By default it covers the current business year to today; the
form takes any two days. The same statement comes from ``GET /api/v1/billing-accounts/{id}/
statement`` and ``satiot bills account-statement`` (:mod:`satiot.bss.account_statement`).
Customers see their own accounts' statements, as the account pages.
"""

from __future__ import annotations

import uuid
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.api.csv_files import file_response
from satiot.bss import account_statement
from satiot.bss.money import format_cny
from satiot.bss.periods import local_date
from satiot.core.errors import DomainError, InvalidInput, NotFound
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, SignedIn
from satiot.web.views.billing_accounts import account_not_found
from satiot.web.views.network_rows import parse_uuid

router = APIRouter()
PATH = "/billing-accounts/{account_id}/statement"


def _day(text: str, what: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text.strip()!r} is not a day (YYYY-MM-DD)") from None


def _statement(
    session: Session, signed_in: ConsoleSession, account_id: uuid.UUID, start: str, end: str
) -> account_statement.Statement:
    """The statement for the form's days; by default from the first day of this year to
    today."""
    tz = signed_in.ctx.settings.business_timezone
    last = _day(end, "to") or local_date(signed_in.now(), tz)
    first = _day(start, "from") if start.strip() else last.replace(month=1, day=1)
    return account_statement.statement(session, account_id, start=first, end=last, tz=tz)


@router.get(PATH)
def statement_page(
    request: Request, signed_in: SignedIn, account_id: str, start: str = "", end: str = ""
) -> Response:
    signed_in.require_any("bills:read")
    wanted = parse_uuid(account_id)
    if wanted is None:
        return account_not_found(request, signed_in, account_id)
    tz = signed_in.ctx.settings.business_timezone
    flash = None
    with signed_in.call.read() as session:
        try:
            found = _statement(session, signed_in, wanted, start, end)
        except NotFound:
            return account_not_found(request, signed_in, account_id)
        except DomainError as exc:  # a day that is none, or days the wrong way round
            flash = Flash("error", exc.detail)
            found = _statement(session, signed_in, wanted, "", "")
    days = urlencode({"start": found.start.isoformat() if found.start else "", "end": found.end})
    return page(
        request,
        signed_in,
        "account_statement.html",
        {
            "title": f"Statement of {found.account_name}",
            "s": found,
            "cny": format_cny,
            "rows": [(local_date(e.at, tz).isoformat(), e) for e in found.entries],
            "csv_url": f"/billing-accounts/{found.account_id}/statement.csv?{days}",
        },
        flash=flash,
    )


@router.get("/billing-accounts/{account_id}/statement.csv")
def statement_csv(signed_in: SignedIn, account_id: str, start: str = "", end: str = "") -> Response:
    signed_in.require_any("bills:read")
    wanted = parse_uuid(account_id)
    try:
        if wanted is None:
            raise NotFound(f"no billing account {account_id}")
        with signed_in.call.read() as session:
            found = _statement(session, signed_in, wanted, start, end)
    except DomainError as exc:
        return Response(exc.detail, status_code=exc.status, media_type="text/plain")
    tz = signed_in.ctx.settings.business_timezone
    data = b"".join(account_statement.export_statement(found, tz))
    return file_response(data, account_statement.file_name(found))
