"""The Bill runs page: every monthly run with its counts, total and bills by state, and for
billing staff a form that bills a finished month and buttons that release a run's bills (validate
every new one, then send every validated one: :mod:`satiot.bss.bill_release`).

Bill runs span every tenant, so the page is for operator staff only (as ``/api/v1/bill-runs``
is); the run itself goes through :func:`satiot.bss.billing.run_bills` in the person's write
session with the same settings the API uses, so a month not yet over is refused the same way.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from satiot.bss import bill_release, billing
from satiot.bss.models import BillRun
from satiot.bss.money import format_cny
from satiot.bss.periods import check_period, period_bounds, period_of
from satiot.core.errors import DomainError
from satiot.core.pagination import paginate
from satiot.web.flash import Flash, set_flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleForbidden, ConsoleSession, Posted, SignedIn
from satiot.web.views.figures import counted

router = APIRouter()
PATH = "/bill-runs"
PAGE = 50


def last_finished_period(signed_in: ConsoleSession) -> str:
    """The most recent business month that is over: the one a run normally bills."""
    tz = signed_in.ctx.settings.business_timezone
    current = period_bounds(period_of(signed_in.now(), tz), tz)
    return period_of(current.start - timedelta(seconds=1), tz)


def _staff_only(signed_in: ConsoleSession) -> None:
    if not signed_in.principal.all_tenants:
        raise ConsoleForbidden("Bill runs cover every customer: they are for operator staff.")


@router.get(PATH)
def bill_runs_page(request: Request, signed_in: SignedIn, after: str | None = None) -> Response:
    signed_in.require_any("bills:read")
    _staff_only(signed_in)
    flash = None
    stmt = select(BillRun)
    with signed_in.call.read() as session:
        try:
            found = paginate(session, stmt, BillRun.id, cursor=after, limit=PAGE, descending=True)
        except DomainError as exc:
            found = paginate(session, stmt, BillRun.id, cursor=None, limit=PAGE, descending=True)
            flash = Flash("error", exc.detail)
        states = bill_release.states_of(session, [run.id for run in found.items])
    return page(
        request,
        signed_in,
        "bill_runs.html",
        {
            "title": "Bill runs",
            "runs": found.items,
            "states": states,
            "releases": [
                (a, source, a.capitalize()) for a, source in bill_release.RELEASES.items()
            ],
            "can_run": "bills:write" in signed_in.principal.scopes,
            "suggested": last_finished_period(signed_in),
            "cny": format_cny,
            "next_url": f"{PATH}?after={found.next_cursor}" if found.next_cursor else None,
        },
        flash=flash,
    )


@router.post(PATH)
def run_month(signed_in: Posted, period: Annotated[str, Form()] = "") -> Response:
    signed_in.require_any("bills:write")
    _staff_only(signed_in)
    response = RedirectResponse(PATH, status_code=303)
    try:
        name = check_period(period.strip())
        with signed_in.call.write() as session:
            run = billing.run_bills(
                session,
                signed_in.principal,
                name,
                at=signed_in.now(),
                settings=billing.RunSettings.from_settings(signed_in.ctx.settings),
            )
            bills, total = run.bills, run.total_micros
        if bills:
            done = f"Billed {name}: {bills} bills, {format_cny(total)} in all."
        else:
            done = f"Nothing to bill for {name}: every account is billed already or owes nothing."
        flash = Flash("success", done)
    except DomainError as exc:
        flash = Flash("error", exc.detail)
    set_flash(response, flash, secure=signed_in.ctx.settings.cookie_secure)
    return response


@router.post(PATH + "/{run_id}/{action}")
def release(signed_in: Posted, run_id: uuid.UUID, action: str) -> Response:
    """Validate or send a run's bills; a chunk per transaction, so a long release that stops
    keeps what it moved and the button finishes it."""
    signed_in.require_any("bills:write")
    _staff_only(signed_in)
    response = RedirectResponse(PATH, status_code=303)
    if action not in bill_release.RELEASES:
        flash = Flash("error", f"{action!r} is not a release: validate or send")
    else:
        try:
            done = bill_release.release_run(
                signed_in.call.write, signed_in.principal, run_id, action, at=signed_in.now()
            )
            flash = Flash(
                "success", f"{counted(done.moved, 'bill')} {bill_release.MOVED_TO[action]}."
            )
        except DomainError as exc:
            flash = Flash("error", exc.detail)
    set_flash(response, flash, secure=signed_in.ctx.settings.cookie_secure)
    return response
