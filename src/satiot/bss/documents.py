"""Documents filed for a customer's real-name verification.

The operator keeps a copy of the business licence, the ID cards of the legal representative and
the agent, and the letter authorising the agent, as evidence for the regulator. Each file is
stored with its SHA-256, so that what was filed can later be proven unchanged. Only PDF, PNG and
JPEG are accepted, recognised by their first bytes rather than by the name or the declared type
(both are the uploader's word); the stored media type is the recognised one.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from satiot.bss.customers import get_customer
from satiot.bss.models import CustomerDocument
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from satiot.core.lengths import BIDI_CONTROL_RE, CONTROL_RE
from satiot.core.pagination import Page, paginate

#: Kinds of document and what each is, for forms and the API's description.
DOCUMENT_KINDS: dict[str, str] = {
    "business-licence": "Business licence (营业执照) showing the credit code",
    "legal-rep-id": "ID card of the legal representative, both sides",
    "agent-id": "ID card of the agent who signs up, both sides",
    "authorisation-letter": "Letter by which the enterprise authorises the agent",
}

#: Copies of ID cards are personal data: only staff who verify customers may open them.
PERSONAL_KINDS = frozenset({"legal-rep-id", "agent-id"})

#: The largest file accepted (a scan at a legible resolution fits comfortably).
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024

#: Recognised file types, by their leading bytes.
SIGNATURES: tuple[tuple[str, bytes], ...] = (
    ("application/pdf", b"%PDF-"),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
)


class DocumentNotFound(NotFound):
    slug = "document-not-found"
    title = "Document not found"


def sniff_media_type(content: bytes) -> str | None:
    """The media type the content's first bytes announce, if it is one we accept."""
    for media_type, magic in SIGNATURES:
        if content.startswith(magic):
            return media_type
    return None


def clean_filename(name: str | None) -> str:
    """The last path segment without control or quote characters (it ends up in a header).

    The name is the uploader's, not typed here, so unsafe characters are dropped rather than
    refused: C0 and C1 controls, quotes, and directional overrides (which would make a listed
    ``x`` U+202E ``fdp.exe`` read as ``xexe.pdf``; :data:`satiot.core.lengths.BIDI_CONTROL_RE`)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = BIDI_CONTROL_RE.sub("", CONTROL_RE.sub("", base))
    base = re.sub(r"[\"';]", "", base).strip()
    return base[:255] or "document"


def document_view(doc: CustomerDocument) -> dict[str, Any]:
    return {
        "kind": doc.kind,
        "filename": doc.filename,
        "media_type": doc.media_type,
        "sha256": doc.sha256,
        "size": len(doc.content),
    }


def file_document(
    session: Session,
    principal: Principal,
    customer_id: uuid.UUID,
    *,
    kind: str,
    filename: str | None,
    content: bytes,
    at: datetime,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> CustomerDocument:
    """Keep one document for the customer; a newer one of the same kind does not replace the
    older (both stay on file as evidence), the newest is the one shown first."""
    if kind not in DOCUMENT_KINDS:
        raise InvalidInput(
            f"kind: {kind!r} is not one of {', '.join(DOCUMENT_KINDS)}", field="kind"
        )
    if not content:
        raise InvalidInput("file: the file is empty", field="file")
    if len(content) > max_bytes:
        raise InvalidInput(
            f"file: {len(content)} bytes is more than the {max_bytes} allowed",
            field="file",
            max_bytes=max_bytes,
        )
    media_type = sniff_media_type(content)
    if media_type is None:
        raise InvalidInput(
            "file: not a PDF, PNG or JPEG file (judged by its content, not its name)",
            field="file",
        )
    customer = get_customer(session, customer_id)
    if customer.status == "closed":
        raise Conflict(f"customer {customer.name} is closed")
    doc = CustomerDocument(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        kind=kind,
        filename=clean_filename(filename),
        media_type=media_type,
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_at=at,
        uploaded_by=principal.actor,
    )
    session.add(doc)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="customer.document-filed",
        target=("customer-document", doc.id),
        tenant_id=customer.tenant_id,
        after=document_view(doc) | {"customer_id": str(customer.id)},
    )
    return doc


@dataclass(frozen=True)
class DocumentInfo:
    """A document's record without its content (lists never load the files)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    filename: str
    media_type: str
    sha256: str
    size: int
    uploaded_at: datetime
    uploaded_by: str


def document_page(
    session: Session, customer_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Page[DocumentInfo]:
    """The customer's documents, newest first, one page at a time."""
    get_customer(session, customer_id)
    stmt = (
        select(CustomerDocument)
        .where(CustomerDocument.customer_id == customer_id)
        .options(defer(CustomerDocument.content))
    )
    found: Page[CustomerDocument] = paginate(
        session, stmt, CustomerDocument.id, cursor=cursor, limit=limit, descending=True
    )
    ids = [d.id for d in found.items]
    sizes: dict[uuid.UUID, int] = {}
    if ids:
        rows = session.execute(
            select(CustomerDocument.id, func.length(CustomerDocument.content)).where(
                CustomerDocument.id.in_(ids)
            )
        )
        sizes = {doc_id: int(size or 0) for doc_id, size in rows}
    items = [
        DocumentInfo(
            d.id,
            d.customer_id,
            d.kind,
            d.filename,
            d.media_type,
            d.sha256,
            sizes.get(d.id, 0),
            d.uploaded_at,
            d.uploaded_by,
        )
        for d in found.items
    ]
    return Page(items, found.next_cursor)


def info_of(doc: CustomerDocument) -> DocumentInfo:
    return DocumentInfo(
        doc.id,
        doc.customer_id,
        doc.kind,
        doc.filename,
        doc.media_type,
        doc.sha256,
        len(doc.content),
        doc.uploaded_at,
        doc.uploaded_by,
    )


def get_document(
    session: Session, customer_id: uuid.UUID, document_id: uuid.UUID
) -> CustomerDocument:
    doc = session.get(CustomerDocument, document_id)
    if doc is None or doc.customer_id != customer_id:
        raise DocumentNotFound(f"document {document_id} not found")
    return doc


def may_open(principal: Principal, doc: CustomerDocument) -> bool:
    """Whether ``principal`` may read the file itself (everyone who sees it may see its
    record; ID copies open only to those who verify customers)."""
    return doc.kind not in PERSONAL_KINDS or "customers:write" in principal.scopes


def open_document(
    session: Session, principal: Principal, customer_id: uuid.UUID, document_id: uuid.UUID
) -> CustomerDocument:
    """The document with its content, if the principal may open it."""
    doc = get_document(session, customer_id, document_id)
    if not may_open(principal, doc):
        raise PermissionDenied(
            "copies of ID cards are personal data: opening them needs customers:write",
            required_scope="customers:write",
        )
    return doc
