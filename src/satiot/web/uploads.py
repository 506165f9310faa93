"""What the console's whole-file uploads share (the licence list, a bank statement's payments,
devices to suspend or resume).

A file read whole is held in memory while it is checked, so the form takes at most
:data:`MAX_BYTES`: a register of a few thousand terminal models or a month's statement of
20,000 transfers is a few hundred KiB to about 1 MiB. Each upload goes the same way
(:func:`apply_upload`): read, checked, applied once in one transaction, and either a redirect
with what was done or the form's page again with every bad line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from fastapi import Request, UploadFile
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.core.csv_text import FileRejected, RowError
from satiot.web.flash import Flash
from satiot.web.once import Sent, redirect, submit_once
from satiot.web.session import ConsoleSession

MAX_BYTES: Final = 4 * 1024 * 1024

Parsed = TypeVar("Parsed")


def uploaded(file: UploadFile, rejected: type[FileRejected]) -> bytes:
    """The file's bytes; ``rejected`` (one error for the whole file) when it is larger than
    :data:`MAX_BYTES`, read no further than one byte past it."""
    data = file.file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise rejected([RowError(1, "", f"the file is over {MAX_BYTES // 1024 // 1024} MiB")])
    return data


def apply_upload(
    request: Request,
    signed_in: ConsoleSession,
    file: UploadFile,
    form_key: str,
    *,
    rejected: type[FileRejected],
    read: Callable[[bytes], Parsed],
    work: Callable[[Session, Parsed], Sent],
    form_page: Callable[..., Response],
) -> tuple[Response, bool]:
    """Read the file (``read``; a ValueError is an encoding the form does not offer), apply it
    once (``work``, in one write transaction, once per ``form_key``), and answer with a
    redirect to where ``work`` leads; or ``form_page(rejected=…, flash=…, status_code=422)``
    when the file is refused, with every bad line. Also whether ``work`` ran now (not refused,
    not a form sent again), for what follows a change (e.g. telling the identification node)."""

    def refused(**page: Any) -> Response:
        return form_page(status_code=422, **page)

    try:
        data = uploaded(file, rejected)
        try:
            parsed = read(data)
        except ValueError as exc:
            return refused(flash=Flash("error", str(exc))), False
        sent, replayed = submit_once(
            signed_in, form_key, request.url.path, lambda session: work(session, parsed)
        )
    except rejected as exc:
        return refused(rejected=exc, flash=Flash("error", exc.detail)), False
    return redirect(signed_in, sent), not replayed
