"""Background jobs: what was queued, how far it is, and how it ended.

A caller who asks for month-end work with ``Prefer: respond-async`` (RFC 7240) gets ``202
Accepted`` and the job, with its address in ``Location``; it reads the job here until its
``state`` is ``succeeded`` (``result`` holds what the work returned) or ``failed`` (``error``
says why). A job is visible to callers of its tenant holding its kind's read scope (staff see
every tenant's); any other job is a 404, as a missing one is.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Final, Literal, get_args

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import select

from satiot.api.common import CursorParam, LimitParam, Output, Page, page_response
from satiot.api.deps import Call, requires
from satiot.core import jobs
from satiot.core.errors import NotFound
from satiot.core.models import Job
from satiot.core.pagination import paginate
from satiot.core.states import JOB

router = APIRouter(prefix="/jobs", tags=["jobs"])
Reader = Annotated[Call, Depends(requires(None))]

#: The preference (RFC 7240) that asks for a job instead of waiting for the work.
RESPOND_ASYNC: Final = "respond-async"


class JobNotFound(NotFound):
    title = "Job not found"


class JobOut(Output):
    id: uuid.UUID
    kind: str
    description: str = Field(description="What the job does, in words")
    state: str = Field(description="queued, running, succeeded or failed")
    done: int = Field(description="Items done so far (bills released, for instance)")
    total: int = Field(description="Items to do, once known (0 before)")
    outcome: str = Field(description="What it did, or why it failed, in words")
    result: dict[str, Any] | None = Field(description="What the work returned, once succeeded")
    error: str | None
    asked_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,
        description=jobs.describe(job),
        state=job.state,
        done=job.done,
        total=job.total,
        outcome=jobs.outcome(job),
        result=job.result,
        error=job.error,
        asked_by=job.asked_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


PreferHeader = Annotated[
    str | None,
    Header(
        description="respond-async: queue the work as a job and answer 202 at once "
        "(GET /api/v1/jobs/{id} follows it) instead of answering when it is done"
    ),
]


def wants_job(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header asks to respond asynchronously."""
    if not prefer:
        return False
    tokens = (p.split(";", 1)[0].strip().lower() for p in prefer.split(","))
    return RESPOND_ASYNC in tokens


def accepted(job: Job) -> JSONResponse:
    """202 with the job, its address, and the preference applied."""
    return JSONResponse(
        job_out(job).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/api/v1/jobs/{job.id}", "Preference-Applied": RESPOND_ASYNC},
    )


#: The 202 answer, for the routes that honour ``Prefer: respond-async``.
ACCEPTED: Final[dict[int | str, dict[str, Any]]] = {
    202: {
        "model": JobOut,
        "description": "Queued (with Prefer: respond-async): the job, at Location",
    }
}

JobState = Literal["queued", "running", "succeeded", "failed"]
assert set(JOB.states) == set(get_args(JobState))  # the lifecycle's, spelled for the schema
StateParam = Annotated[JobState | None, Query(description="Only jobs in this state")]


@router.get("", response_model=Page[JobOut], summary="List jobs, newest first")
def list_jobs(
    call: Reader,
    request: Request,
    response: Response,
    state: StateParam = None,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[JobOut]:
    kinds = jobs.visible_kinds(call.principal)
    stmt = select(Job).where(Job.kind.in_(kinds))
    if state is not None:
        stmt = stmt.where(Job.state == state)
    with call.read() as session:
        page = paginate(session, stmt, Job.id, cursor=cursor, limit=limit, descending=True)
        return page_response(request, response, page, job_out)


@router.get("/{job_id}", response_model=JobOut, summary="One job: its state, progress, outcome")
def get_job(call: Reader, job_id: uuid.UUID) -> JobOut:
    with call.read() as session:
        job = session.get(Job, job_id)
        if job is None or not jobs.may_see(call.principal, job):
            raise JobNotFound(f"no job {job_id}")
        return job_out(job)
