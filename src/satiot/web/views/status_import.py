"""Suspending and resuming devices from a CSV file in the console, and the empty file to fill in.

Reached from the Subscriptions page by those who may suspend. A refused file comes back on the
page with every bad line's line, column and reason, nothing changed, as ``POST
/api/v1/subscriptions/status-csv`` answers; an accepted one leads back to the Subscriptions
page with what was done. A file longer than one transaction should apply is checked whole,
then queued as a job (:mod:`satiot.bss.status_jobs`) that this page follows. The form is sent
once (``form_key``): a second click changes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.api.csv_files import file_response
from satiot.api.subscriptions import push_handles_in_background
from satiot.bss import status_jobs
from satiot.bss.status_import import (
    COLUMNS,
    MAX_ROWS,
    MAX_ROWS_IN_PARTS,
    TEMPLATE_NAME,
    ParsedLines,
    StatusImportRejected,
    apply_lines,
    read_lines,
    template,
)
from satiot.bss.status_jobs import queue_file
from satiot.web.flash import Flash
from satiot.web.once import FormKey, Sent
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn
from satiot.web.uploads import apply_upload
from satiot.web.views.figures import counted
from satiot.web.views.job_rows import followed

router = APIRouter()
PATH = "/subscriptions/status-import"


def _page(
    request: Request,
    signed_in: ConsoleSession,
    *,
    rejected: StatusImportRejected | None = None,
    flash: Flash | None = None,
    status_code: int = 200,
) -> Response:
    with signed_in.call.read() as session:
        long_files, _ = followed(session, status_jobs.KINDS)
    context = {
        "title": "Suspend or resume from a file",
        "columns": COLUMNS,
        "max_rows": MAX_ROWS,
        "max_rows_in_parts": MAX_ROWS_IN_PARTS,
        "rejected": rejected,
        **long_files,
    }
    return page(
        request, signed_in, "status_import.html", context, flash=flash, status_code=status_code
    )


@router.get(PATH)
def import_page(request: Request, signed_in: SignedIn) -> Response:
    signed_in.require_any("subscriptions:write")
    return _page(request, signed_in)


@router.get(PATH + "/template.csv")
def status_template(signed_in: SignedIn) -> Response:
    signed_in.require_any("subscriptions:write")
    return file_response(template(), TEMPLATE_NAME)


@router.post(PATH)
def import_file(
    request: Request,
    signed_in: Posted,
    file: Annotated[UploadFile, File()],
    encoding: Annotated[str, Form()] = "utf-8",
    form_key: FormKey = "",
) -> Response:
    signed_in.require_any("subscriptions:write")

    def work(session: Session, lines: ParsedLines) -> Sent:
        if len(lines.lines) > MAX_ROWS:
            queue_file(session, signed_in.principal, lines, at=signed_in.now())
            return Sent(
                PATH,
                f"File checked: {counted(len(lines.lines), 'line')} queued, applied "
                f"{MAX_ROWS:,} at a time; this page follows the job below.",
            )
        done = apply_lines(session, signed_in.principal, lines, at=signed_in.now())
        told = f"{counted(done.suspended, 'device')} suspended, {done.resumed:,} resumed"
        if done.already:
            told += f"; {counted(done.already, 'line')} already so"
        return Sent("/subscriptions", f"File applied: {told}.")

    response, ran = apply_upload(
        request,
        signed_in,
        file,
        form_key,
        rejected=StatusImportRejected,
        read=lambda data: read_lines(data, encoding=encoding, max_rows=MAX_ROWS_IN_PARTS),
        work=work,
        form_page=lambda **shown: _page(request, signed_in, **shown),
    )
    if ran:  # handles changed status: update the node's copies
        response.background = push_handles_in_background(signed_in.ctx, signed_in.now())
    return response
