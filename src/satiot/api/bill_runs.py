"""Bill runs: run a month's bills, list and read runs, and release a run's bills in bulk.

Runs span every tenant, so every route here is for operator staff: a customer's caller gets
the 404 a missing run gets. Releasing (``/validate``, ``/send``) goes through
:mod:`satiot.bss.bill_release`, a chunk of bills per transaction, each bill moved, audited and
announced as one move of it would be.

A run or a release of 100,000 bills takes minutes: with ``Prefer: respond-async`` each is
queued as a job (:mod:`satiot.bss.billing_jobs`) after the checks that can be made at once,
and answered ``202`` with the job at ``Location`` (:mod:`satiot.api.jobs`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import select

from satiot.api.common import CursorParam, Input, LimitParam, Output, Page, page_response
from satiot.api.deps import Call, requires
from satiot.api.jobs import ACCEPTED, PreferHeader, accepted, wants_job
from satiot.bss import bill_release, bill_run_chunks, billing, billing_jobs
from satiot.bss.models import BillRun
from satiot.bss.periods import PERIOD_PATTERN
from satiot.core.errors import NotFound
from satiot.core.pagination import paginate

router = APIRouter(prefix="/bill-runs", tags=["billing"])
Reader = Annotated[Call, Depends(requires("bills:read"))]
Writer = Annotated[Call, Depends(requires("bills:write"))]


class RunIn(Input):
    period: str = Field(pattern=PERIOD_PATTERN, examples=["2026-11"])
    billing_account_ids: list[uuid.UUID] | None = Field(
        default=None, description="Bill only these accounts (default: every account)"
    )


class RunOut(Output):
    id: uuid.UUID
    period: str
    status: str
    accounts: int
    bills: int
    total_micros: int
    started_at: datetime
    finished_at: datetime | None
    states: dict[str, int] = Field(
        default_factory=dict,
        description="How many of the run's bills are in each state now (states with none left out)",
    )


class ReleaseOut(Output):
    run_id: uuid.UUID
    action: str = Field(description="validate or send")
    moved: int = Field(description="Bills this call moved")
    states: dict[str, int] = Field(description="The run's bills by state afterwards")


def _staff(call: Call) -> None:
    if not call.principal.all_tenants:
        raise NotFound("no such resource")


def _out(run: BillRun, states: dict[str, int]) -> RunOut:
    return RunOut.model_validate(
        {**{k: getattr(run, k) for k in RunOut.model_fields if k != "states"}, "states": states}
    )


@router.get("", response_model=Page[RunOut], summary="List bill runs, newest first")
def list_runs(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[RunOut]:
    _staff(call)
    stmt = select(BillRun).where(BillRun.dry_run.is_(False))
    with call.read() as session:
        page = paginate(session, stmt, BillRun.id, cursor=cursor, limit=limit, descending=True)
        states = bill_release.states_of(session, [run.id for run in page.items])
        return page_response(request, response, page, lambda run: _out(run, states[run.id]))


@router.post(
    "",
    status_code=201,
    response_model=RunOut,
    responses=ACCEPTED,
    summary="Run a period's bills (Prefer: respond-async queues the run as a job)",
)
def post_run(call: Writer, body: RunIn, prefer: PreferHeader = None) -> RunOut | JSONResponse:
    _staff(call)
    if wants_job(prefer):
        with call.write() as session:
            job = billing_jobs.queue_run(
                session,
                call.principal,
                body.period,
                at=call.now(),
                tz=call.ctx.settings.business_timezone,
                accounts=body.billing_account_ids,
            )
            return accepted(job)
    # In chunks of accounts, as the CLI and the job run it: the embedded database's one
    # writer is free between them while the caller waits (bss.bill_run_chunks).
    run = bill_run_chunks.run_in_chunks(
        call.write,
        call.principal,
        body.period,
        at=call.now(),
        settings=billing.RunSettings.from_settings(call.ctx.settings),
        accounts=body.billing_account_ids,
    )
    with call.read() as session:
        return _out(run, bill_release.run_states(session, run.id))


@router.get("/{run_id}", response_model=RunOut, summary="One bill run, with its bills by state")
def get_run(call: Reader, run_id: uuid.UUID) -> RunOut:
    with call.read() as session:
        if not call.principal.all_tenants:
            raise bill_release.BillRunNotFound(f"no bill run {run_id}")
        run = bill_release.get_run(session, run_id)
        return _out(run, bill_release.run_states(session, run.id))


def _release(
    call: Call, run_id: uuid.UUID, action: str, prefer: str | None
) -> ReleaseOut | JSONResponse:
    if not call.principal.all_tenants:
        raise bill_release.BillRunNotFound(f"no bill run {run_id}")
    if wants_job(prefer):
        with call.write() as session:
            job = billing_jobs.queue_release(session, call.principal, run_id, action, at=call.now())
            return accepted(job)
    done = bill_release.release_run(call.write, call.principal, run_id, action, at=call.now())
    return ReleaseOut(run_id=done.run_id, action=done.action, moved=done.moved, states=done.states)


@router.post(
    "/{run_id}/validate",
    response_model=ReleaseOut,
    responses=ACCEPTED,
    summary="Validate every new bill of the run (bills on hold stay on hold)",
)
def validate_run(
    call: Writer, run_id: uuid.UUID, prefer: PreferHeader = None
) -> ReleaseOut | JSONResponse:
    return _release(call, run_id, "validate", prefer)


@router.post(
    "/{run_id}/send",
    response_model=ReleaseOut,
    responses=ACCEPTED,
    summary="Send every validated bill of the run to its customer (prepaid ones are then paid "
    "from the balance)",
)
def send_run(
    call: Writer, run_id: uuid.UUID, prefer: PreferHeader = None
) -> ReleaseOut | JSONResponse:
    return _release(call, run_id, "send", prefer)
