"""A suspend/resume file longer than a request should apply, as a job.

A file of up to :data:`~satiot.bss.status_import.MAX_ROWS` lines is applied in the request, in
one transaction. A longer one (up to :data:`~satiot.bss.status_import.MAX_ROWS_IN_PARTS`) is
checked whole in the request — a bad line anywhere refuses it there, every bad line named and
nothing changed — and then queued (:func:`queue_file`): the job runner of ``satiot up`` applies
it in parts (:func:`satiot.bss.status_import.apply_in_parts`, which checks it whole once more
against what changed meanwhile) as the person who sent it, with progress on the job
(``GET /api/v1/jobs/{id}``, the console's Subscriptions page). One such file per tenant waits
or runs at a time. A job taken again after its runner died applies only what is left: the
lines already done count as *already*.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from satiot.bss.status_import import (
    ParsedLines,
    StatusLine,
    apply_in_parts,
    check_lines,
)
from satiot.core import jobs
from satiot.core.auth.principal import Principal
from satiot.core.models import Job


def _apply(run: jobs.JobRun) -> dict[str, Any]:
    parsed = ParsedLines([StatusLine(*line) for line in run.params["lines"]], [])
    done = apply_in_parts(
        run.write, run.read, run.principal, parsed, at=run.at, progress=run.progress
    )
    return {
        "lines": len(parsed.lines),
        "suspended": done.suspended,
        "resumed": done.resumed,
        "already": done.already,
    }


STATUS_FILE: Final = jobs.register(
    jobs.JobKind(
        name="subscription-status-file",
        run=_apply,
        describe=lambda p: f"Suspend/resume {len(p['lines']):,} devices from a file",
        summarize=lambda r: (
            f"{r['suspended']:,} suspended, {r['resumed']:,} resumed, {r['already']:,} already so"
        ),
        read_scope="subscriptions:read",
    )
)
#: The kinds the Subscriptions page follows.
KINDS: Final = (STATUS_FILE.name,)


def queue_file(session: Session, principal: Principal, parsed: ParsedLines, *, at: datetime) -> Job:
    """Check the whole file as :func:`~satiot.bss.status_import.apply_lines` would, reading
    only (StatusImportRejected names every bad line), then queue it; 409 while another file of
    the tenant waits or runs."""
    check_lines(session, principal, parsed)
    lines = [[x.line, x.device, x.action, x.reason] for x in parsed.lines]
    return jobs.submit(
        session,
        principal,
        STATUS_FILE,
        {"lines": lines},
        key=f"subscription-status-file:{principal.tenant_id}",
        at=at,
    )
