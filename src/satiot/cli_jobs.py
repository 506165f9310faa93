"""``satiot jobs …``: the background work queued from the console or the API (a month's bill
run, releasing a run's bills), how far it is, and running what waits from a shell.

``satiot up`` runs queued jobs itself; ``satiot jobs run`` is for a server that is stopped
(work queued before it stopped waits for it) or a deployment that runs jobs on another host.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from satiot.cli_common import fail, load_settings, out

jobs_app = typer.Typer(
    help="Background work (month-end bill runs and releases): list, show, run.",
    no_args_is_help=True,
)

STATES = ("queued", "running", "succeeded", "failed")


def _progress(done: int, total: int) -> str:
    return f"{done:,} / {total:,}" if total else ""


@jobs_app.command("list")
def jobs_list(
    state: Annotated[
        str | None, typer.Option(help="Only jobs in this state: " + ", ".join(STATES))
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 20,
) -> None:
    """List jobs, newest first: what each does, its state, progress and outcome."""
    from sqlalchemy import select

    import satiot.bss.job_kinds  # noqa: F401 - the business's kinds, to describe them
    from satiot.cli import _database
    from satiot.core import jobs
    from satiot.core.models import Job

    if state is not None and state not in STATES:
        fail(f"--state: {state!r} is not a job state ({', '.join(STATES)})")
    stmt = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if state is not None:
        stmt = stmt.where(Job.state == state)
    with _database() as database, database.read() as s:
        found = list(s.scalars(stmt))
    if not found:
        out.print("no job" + (f" {state}" if state else ""))
        return
    # The id and what the job does stay whole (an id is copied into `satiot jobs show`); who
    # asked and when are there too.
    table = Table("id", "job", "state", "progress", "outcome", "asked by", "queued")
    for column in table.columns[:3]:
        column.no_wrap = True
    for job in found:
        table.add_row(
            str(job.id),
            jobs.describe(job),
            job.state,
            _progress(job.done, job.total),
            jobs.outcome(job),
            job.asked_by,
            job.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


@jobs_app.command("show")
def jobs_show(job_id: Annotated[str, typer.Argument(help="The job's id")]) -> None:
    """One job in full: parameters, state, progress, outcome and times."""
    import json

    import satiot.bss.job_kinds  # noqa: F401 - the business's kinds, to describe them
    from satiot.cli import _database
    from satiot.core import jobs
    from satiot.core.models import Job

    try:
        wanted = uuid.UUID(job_id)
    except ValueError:
        fail(f"{job_id!r} is not a job id")
    with _database() as database, database.read() as s:
        job = s.get(Job, wanted)
        if job is None:
            fail(f"no job {job_id}")
        s.expunge(job)
    out.print(f"{job.id}  {jobs.describe(job)}  ({job.kind})")
    out.print(f"state      {job.state}  {_progress(job.done, job.total)}".rstrip())
    out.print(f"outcome    {jobs.outcome(job) or '-'}")
    out.print(f"asked by   {job.asked_by}")
    out.print(f"parameters {json.dumps(job.params, sort_keys=True)}")
    if job.result is not None:
        out.print(f"result     {json.dumps(job.result, sort_keys=True)}")
    for label, when in (
        ("queued", job.created_at),
        ("started", job.started_at),
        ("finished", job.finished_at),
    ):
        if when is not None:
            out.print(f"{label:<10} {when.isoformat()}")
    out.print(f"attempts   {job.attempts}")


@jobs_app.command("run")
def jobs_run() -> None:
    """Run every queued job now, in the foreground, as the people who asked for them; one line
    per job with how it ended. Exits 1 if any failed."""
    import satiot.bss.job_kinds  # noqa: F401 - registers the business's kinds
    from satiot.cli import _check_database
    from satiot.core import jobs
    from satiot.core.models import Job
    from satiot.server import build_context

    settings = load_settings()
    _check_database(settings)
    ctx = build_context(settings)
    failed = 0
    try:
        while (job_id := jobs.run_next(ctx.db, ctx.clock, ctx.settings)) is not None:
            with ctx.db.read() as s:
                job = s.get(Job, job_id)
                assert job is not None
                line = f"{job.id}  {jobs.describe(job)}: {job.state}, {jobs.outcome(job)}"
                failed += job.state == "failed"
            out.print(line)
    finally:
        ctx.db.dispose()
    if failed:
        fail(f"{failed} job{'s' if failed != 1 else ''} failed")
