"""CSV files sent to the API, as multipart (field ``file``) or as the body itself, in UTF-8 or
in the encoding the caller names; and CSV files it sends: empty templates and exports.

Both bulk imports (orders, licence lists) take files the same way, so that a script written
for one works for the other and a spreadsheet saved one way is read the same everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import IO, Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.responses import StreamingResponse

from satiot.api.common import create_idempotently
from satiot.api.deps import Call
from satiot.core.csv_text import encoding_named
from satiot.core.errors import DomainError, InvalidInput

CHUNK = 64 * 1024

EncodingParam = Annotated[
    Literal["utf-8", "gb18030"] | None,
    Query(
        description="The file's encoding (default: the charset its content type names, else "
        "utf-8). gb18030 also reads GBK, as Excel saves 'CSV' on Chinese Windows. A UTF-8 "
        "byte-order mark wins."
    ),
]

#: The request body a CSV route documents (FastAPI cannot infer it from a raw request).
CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        }
    }
}
CSV_415: dict[int | str, dict[str, Any]] = {
    415: {"description": "Neither multipart/form-data nor a CSV body, or an unknown charset"}
}
#: A template's answer, documented.
CSV_FILE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


class UnsupportedMedia(DomainError):
    slug = "unsupported-media-type"
    title = "Unsupported media type"
    status = 415


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    while chunk := file.read(CHUNK):
        yield chunk


def codec_of(asked: str | None, content_type: str | None) -> str:
    """The file's codec: the ``encoding`` parameter, else the charset its content type names,
    else UTF-8 (an unknown charset is 415, as HTTP says)."""
    if asked is not None:
        return encoding_named(asked)
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            try:
                return encoding_named(value.strip().strip('"'))
            except ValueError as exc:
                raise UnsupportedMedia(str(exc)) from None
    return "utf-8"


async def read_csv(request: Request, encoding: str | None) -> tuple[list[bytes], str]:
    """The uploaded file's bytes, in chunks, and the codec to read them with."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("send the CSV file in the multipart field 'file'", field="file")
        codec = codec_of(encoding, upload.content_type)
        return await run_in_threadpool(lambda: list(_chunks(upload.file))), codec
    if media in ("text/csv", "text/plain", "application/octet-stream"):
        codec = codec_of(encoding, content_type)
        return [chunk async for chunk in request.stream() if chunk], codec
    raise UnsupportedMedia(
        "send the CSV as multipart/form-data (field 'file') or as a text/csv body"
    )


class Upload(BaseModel):
    """What identifies a whole-file upload for Idempotency-Key: the file, by its hash."""

    sha256: str
    encoding: str


async def import_file(
    call: Call,
    request: Request,
    encoding: str | None,
    key: str | None,
    load: Callable[[Session, bytes, str], BaseModel],
    *,
    status_code: int | Callable[[], int] = 200,
) -> JSONResponse:
    """Read an uploaded file whole and run ``load(session, data, codec)`` once per
    Idempotency-Key in a write transaction (``status_code``, 200 by default, or asked once
    ``load`` has run; a replay answers the first time's answer)."""
    chunks, codec = await read_csv(request, encoding)
    data = b"".join(chunks)
    fingerprint = Upload(sha256=hashlib.sha256(data).hexdigest(), encoding=codec)
    return await run_in_threadpool(
        create_idempotently,
        call,
        request,
        key,
        fingerprint,
        lambda session: load(session, data, codec),
        status_code=status_code,
    )


def _download(filename: str) -> dict[str, Any]:
    """What makes a browser save an answer as a CSV file named ``filename``."""
    return {
        "media_type": "text/csv; charset=utf-8",
        "headers": {"Content-Disposition": f'attachment; filename="{filename}"'},
    }


def file_response(data: bytes, filename: str) -> Response:
    """A small file made in memory (an empty template, an account's statement) as a download
    a browser saves under ``filename``."""
    return Response(data, **_download(filename))


def streamed_download(
    read: Callable[[], AbstractContextManager[Session]],
    produce: Callable[[Session], Iterator[bytes]],
    filename: str,
) -> StreamingResponse:
    """A CSV file made piece by piece in one session that ``read`` opens when the first piece
    is wanted and closes after the last (or when the client goes away)."""

    def pieces() -> Iterator[bytes]:
        with read() as session:
            yield from produce(session)

    return StreamingResponse(pieces(), **_download(filename))
