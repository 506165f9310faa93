"""Documents filed for a customer's verification: upload (multipart), list, read, download.

Uploading is for staff who verify customers (``customers:write``); the customer's own users and
the regulator see the list. Copies of ID cards are personal data: their content opens only with
``customers:write``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from satiot.api import problems
from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    Input,
    LimitParam,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.deps import Call, requires
from satiot.bss import documents
from satiot.core.errors import InvalidInput

router = APIRouter(prefix="/customers/{customer_id}/documents", tags=["customers"])
Reader = Annotated[Call, Depends(requires("customers:read"))]
Writer = Annotated[Call, Depends(requires("customers:write"))]

problems.CATALOG.setdefault(
    documents.DocumentNotFound.slug,
    (documents.DocumentNotFound.title, "No such document for this customer."),
)

DocumentKind = Literal["business-licence", "legal-rep-id", "agent-id", "authorisation-letter"]


class DocumentOut(BaseModel):
    id: uuid.UUID
    href: str
    customer_id: uuid.UUID
    kind: str
    filename: str
    media_type: str
    sha256: str
    size: int
    uploaded_at: datetime
    uploaded_by: str


class _Upload(Input):
    """What identifies an upload for Idempotency-Key (the file by its hash)."""

    kind: str
    filename: str
    sha256: str = Field(max_length=64)


def document_out(info: documents.DocumentInfo) -> DocumentOut:
    href = f"/api/v1/customers/{info.customer_id}/documents/{info.id}"
    return DocumentOut(href=href, **vars(info))


def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes: enough to tell a file that is too large without reading
    all of it."""
    return upload.file.read(limit + 1)


@router.post(
    "",
    status_code=201,
    response_model=DocumentOut,
    summary="File a document (multipart: kind and file)",
)
def post_document(
    call: Writer,
    request: Request,
    customer_id: uuid.UUID,
    kind: Annotated[DocumentKind, Form(description="What the document is")],
    file: Annotated[UploadFile, File(description="PDF, PNG or JPEG, at most 10 MiB")],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    content = _read_limited(file, documents.MAX_DOCUMENT_BYTES)
    if len(content) > documents.MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"file: larger than the {documents.MAX_DOCUMENT_BYTES} bytes allowed",
            field="file",
            max_bytes=documents.MAX_DOCUMENT_BYTES,
        )
    fingerprint = _Upload(
        kind=kind,
        filename=file.filename or "",
        sha256=hashlib.sha256(content).hexdigest(),
    )

    def create(session: Session) -> DocumentOut:
        doc = documents.file_document(
            session,
            call.principal,
            customer_id,
            kind=kind,
            filename=file.filename,
            content=content,
            at=call.now(),
        )
        return document_out(documents.info_of(doc))

    return create_idempotently(call, request, idempotency_key, fingerprint, create)


@router.get("", response_model=Page[DocumentOut], summary="The customer's documents, newest first")
def list_documents(
    call: Reader,
    request: Request,
    response: Response,
    customer_id: uuid.UUID,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[DocumentOut]:
    with call.read() as session:
        page = documents.document_page(session, customer_id, cursor=cursor, limit=limit)
        return page_response(request, response, page, document_out)


@router.get("/{document_id}", response_model=DocumentOut, summary="One document's record")
def get_document(call: Reader, customer_id: uuid.UUID, document_id: uuid.UUID) -> DocumentOut:
    with call.read() as session:
        doc = documents.get_document(session, customer_id, document_id)
        return document_out(documents.info_of(doc))


@router.get(
    "/{document_id}/content",
    summary="Download the file as filed",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}}}},
)
def get_content(call: Reader, customer_id: uuid.UUID, document_id: uuid.UUID) -> Response:
    with call.read() as session:
        doc = documents.open_document(session, call.principal, customer_id, document_id)
        content, media_type, name, digest = doc.content, doc.media_type, doc.filename, doc.sha256
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "ETag": f'"{digest}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
