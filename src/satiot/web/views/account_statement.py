"""A billing account's statement in the console, and its CSV file.

Reached from the account's page. By default it covers the current business year to today; the
form takes any two days. The same statement comes from ``GET /api/v1/billing-accounts/{id}/
statement`` and ``satiot bills statement-of-account`` (:mod:`satiot.bss.account_statement`).
Customers see their own accounts' statements, as the account pages.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from satiot.api.csv_files import streamed_download
from satiot.bss import account_statement
from satiot.bss.money import format_cny
from satiot.bss.periods import local_date
from satiot.core.errors import DomainError, InvalidInput, NotFound
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, SignedIn
from satiot.web.views.network_rows import parse_uuid

router = APIRouter()
PATH = "/billing-accounts/{account_id}/statement"


def _day(text: str, what: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise DomainError(f"{what} {text.strip()!r} is not a day (YYYY-MM-DD)") from None


def _window(signed_in: ConsoleSession, start: str, end: str) -> tuple[date | None, date]:
    """The form's days; by default from the first day of this year to today."""
    today = local_date(signed_in.now(), signed_in.ctx.settings.business_timezone)
    last = _day(end, "to") or today
    first = _day(start, "from") if start.strip() else last.replace(month=1, day=1)
    return first, last


@router.get(PATH)
def statement_page(
    request: Request, signed_in: SignedIn, account_id: str, start: str = "", end: str = ""
) -> Response:
    signed_in.require_any("bills:read")
    wanted = parse_uuid(account_id)
    tz = signed_in.ctx.settings.business_timezone
    flash = None
    try:
        first, last = _window(signed_in, start, end)
    except DomainError as exc:
        flash = Flash("error", exc.detail)
        first, last = _window(signed_in, "", "")
    with signed_in.call.read() as session:
        try:
            if wanted is None:
                raise NotFound(f"no billing account {account_id}")
            try:
                found = account_statement.statement(session, wanted, start=first, end=last, tz=tz)
            except InvalidInput as exc:  # the days the wrong way round
                flash = Flash("error", exc.detail)
                first, last = _window(signed_in, "", "")
                found = account_statement.statement(session, wanted, start=first, end=last, tz=tz)
        except NotFound as exc:
            context = {
                "title": "Not found",
                "message": exc.detail,
                "back": "/billing-accounts",
                "back_label": "Back to billing accounts",
            }
            return page(request, signed_in, "not_found.html", context, status_code=404)
    query = urlencode({"start": first.isoformat() if first else "", "end": last.isoformat()})
    return page(
        request,
        signed_in,
        "account_statement.html",
        {
            "title": f"Statement of {found.account_name}",
            "s": found,
            "cny": format_cny,
            "rows": [(local_date(e.at, tz).isoformat(), e) for e in found.entries],
            "csv_url": f"/billing-accounts/{found.account_id}/statement.csv?{query}",
        },
        flash=flash,
    )


@router.get("/billing-accounts/{account_id}/statement.csv")
def statement_csv(signed_in: SignedIn, account_id: str, start: str = "", end: str = "") -> Response:
    signed_in.require_any("bills:read")
    wanted = parse_uuid(account_id)
    tz = signed_in.ctx.settings.business_timezone
    try:
        first, last = _window(signed_in, start, end)
        if wanted is None:
            raise NotFound(f"no billing account {account_id}")
        with signed_in.call.read() as session:
            found = account_statement.statement(session, wanted, start=first, end=last, tz=tz)
    except DomainError as exc:
        return Response(exc.detail, status_code=exc.status, media_type="text/plain")
    return streamed_download(
        signed_in.call.read,
        lambda _session: account_statement.export_statement(found, tz),
        account_statement.file_name(found),
    )
