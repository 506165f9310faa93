"""The Bill runs page: every monthly run with its counts, total and bills by state, and for
billing staff a form that bills a finished month and buttons that release a run's bills (validate
every new one, then send every validated one: :mod:`satiot.bss.bill_release`).

A run or a release of 100,000 bills takes minutes, so the form and the buttons queue a job
(:mod:`satiot.bss.billing_jobs`) and come straight back: the page's *Month-end jobs* card shows
what is waiting, running (with its progress) and done, and the page reloads itself while
anything is still to do. What can be refused at once is refused at once, with the same words
as the API (a month not yet over, nothing to bill, no bill waiting, a job already queued).

Bill runs span every tenant, so the page is for operator staff only (as ``/api/v1/bill-runs``
is).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.bss import bill_release, billing_jobs
from satiot.bss.models import BillRun
from satiot.bss.money import format_cny
from satiot.bss.periods import check_period, period_bounds, period_of
from satiot.core import jobs
from satiot.core.errors import DomainError
from satiot.core.models import Job
from satiot.core.pagination import paginate
from satiot.web.flash import Flash, set_flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleForbidden, ConsoleSession, Posted, SignedIn
from satiot.web.views.job_rows import followed

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
        month_end, pending = followed(session, billing_jobs.KINDS)
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
            "releasing": {job.params.get("bill_run_id") for job in pending},
            **month_end,
        },
        flash=flash,
    )


def _queued(signed_in: ConsoleSession, queue: Callable[[Session], Job]) -> Response:
    """Queue a job and come back to the page, which follows it."""
    response = RedirectResponse(PATH, status_code=303)
    try:
        with signed_in.call.write() as session:
            what = jobs.describe(queue(session))
        flash = Flash("success", f"Queued: {what}. This page follows it under Month-end jobs.")
    except DomainError as exc:
        flash = Flash("error", exc.detail)
    set_flash(response, flash, secure=signed_in.ctx.settings.cookie_secure)
    return response


@router.post(PATH)
def run_month(signed_in: Posted, period: Annotated[str, Form()] = "") -> Response:
    signed_in.require_any("bills:write")
    _staff_only(signed_in)
    tz = signed_in.ctx.settings.business_timezone

    def queue(session: Session) -> Job:
        name = check_period(period.strip())
        return billing_jobs.queue_run(session, signed_in.principal, name, at=signed_in.now(), tz=tz)

    return _queued(signed_in, queue)


@router.post(PATH + "/{run_id}/{action}")
def release(signed_in: Posted, run_id: uuid.UUID, action: str) -> Response:
    """Validate or send a run's bills, in the background (chunk by chunk: a release that
    stops keeps what it moved, and is finished when taken again)."""
    signed_in.require_any("bills:write")
    _staff_only(signed_in)
    if action not in bill_release.RELEASES:
        response = RedirectResponse(PATH, status_code=303)
        flash = Flash("error", f"{action!r} is not a release: validate or send")
        set_flash(response, flash, secure=signed_in.ctx.settings.cookie_secure)
        return response
    return _queued(
        signed_in,
        lambda session: billing_jobs.queue_release(
            session, signed_in.principal, run_id, action, at=signed_in.now()
        ),
    )
