"""A prepaid billing account's balance history in the console: every change of the balance,
newest first, a page at a time (:mod:`satiot.bss.balance_history`).

Reached from the account's page, which shows the latest few; ``.csv`` gives the whole ledger as
a file, oldest first. Customers see their own
accounts', as the account pages; another tenant's account is the account's 404 page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from satiot.api.csv_files import streamed_download
from satiot.bss import balance_history
from satiot.bss.accounts import balance_text
from satiot.bss.ledger_models import BalanceEntry
from satiot.bss.models import BillingAccount
from satiot.bss.money import format_cny
from satiot.core.errors import DomainError
from satiot.core.pagination import paginate
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import SignedIn
from satiot.web.views.billing_accounts import account_not_found
from satiot.web.views.network_rows import parse_uuid

router = APIRouter()
PATH = "/billing-accounts/{account_id}/balance"
PAGE = 50


@router.get(PATH)
def balance_page(
    request: Request, signed_in: SignedIn, account_id: str, after: str | None = None
) -> Response:
    signed_in.require_any("bills:read")
    wanted = parse_uuid(account_id)
    if wanted is None:
        return account_not_found(request, signed_in, account_id)
    flash = None
    with signed_in.call.read() as session:
        account = session.get(BillingAccount, wanted)
        if account is None:
            return account_not_found(request, signed_in, account_id)
        stmt = balance_history.entries_of(account.id)
        try:
            found = paginate(
                session, stmt, BalanceEntry.id, cursor=after, limit=PAGE, descending=True
            )
        except DomainError as exc:  # a cursor that is none
            flash = Flash("error", exc.detail)
            found = paginate(
                session, stmt, BalanceEntry.id, cursor=None, limit=PAGE, descending=True
            )
    base = PATH.format(account_id=account.id)
    return page(
        request,
        signed_in,
        "balance_history.html",
        {
            "title": f"Balance history of {account.name}",
            "account": account,
            "balance": balance_text(account),
            "entries": found.items,
            "kinds": balance_history.KINDS,
            "cny": format_cny,
            "next_url": f"{base}?after={found.next_cursor}" if found.next_cursor else None,
            "csv_url": f"{base}.csv",
        },
        flash=flash,
    )


@router.get(PATH + ".csv")
def balance_csv(signed_in: SignedIn, account_id: str) -> Response:
    """The whole ledger as a file, oldest first (as ``/balance-entries/csv``)."""
    signed_in.require_any("bills:read")
    wanted = parse_uuid(account_id)
    with signed_in.call.read() as session:
        found = None if wanted is None else session.get(BillingAccount, wanted)
    if found is None:
        return Response(
            f"no billing account {account_id}", status_code=404, media_type="text/plain"
        )
    tz = signed_in.ctx.settings.business_timezone
    return streamed_download(
        signed_in.call.read,
        lambda session: balance_history.export_entries(session, found.id, tz),
        balance_history.file_name(found.id),
    )
