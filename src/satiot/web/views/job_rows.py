"""Jobs as the console's pages show them (the Bill runs page's month-end jobs, the
suspend/resume page's long files): what each does, how far it is, how it ended."""

from __future__ import annotations

from typing import Final

from sqlalchemy.orm import Session

from satiot.core import jobs
from satiot.core.models import Job

#: Seconds between reloads of a page while one of its jobs waits or runs.
RELOAD_S: Final = 3


def job_row(job: Job) -> dict[str, object]:
    """A job as a table row: what, how far, and how it ended."""
    return {
        "id": job.id,
        "what": jobs.describe(job),
        "state": job.state,
        "done": job.done,
        "total": job.total,
        "outcome": jobs.outcome(job),
        "asked_by": job.asked_by,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def followed(session: Session, kinds: tuple[str, ...]) -> tuple[dict[str, object], list[Job]]:
    """A page's context for its jobs of ``kinds`` (those the session sees): the latest as
    rows, and how often to reload while one waits or runs; and those waiting or running."""
    pending = jobs.active(session, kinds)
    context: dict[str, object] = {
        "jobs": [job_row(job) for job in jobs.recent(session, kinds)],
        "reload_s": RELOAD_S if pending else None,
    }
    return context, pending
