"""The Customers pages: the real-name register, and one customer with its evidence.

Operator staff see every customer with its verification status and risk verdict; a customer's
own users see their record only (resident IDs masked unless the viewer verifies customers).
The detail page carries the actions of verification: filing documents, assessing risk and
moving the customer along its lifecycle. Every action goes through the same domain functions
as the REST API inside the viewer's tenant-scoped session; a refusal re-renders the page with
the reason, a success redirects (POST-redirect-GET) with a message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.bss import accounts, contracts, customers, documents, realname, risk
from satiot.bss.models import BillingAccount, Contract, Customer
from satiot.bss.states import CUSTOMER
from satiot.core.errors import DomainError, NotFound
from satiot.core.pagination import Page, paginate
from satiot.web.flash import Flash, set_flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted, SignedIn

router = APIRouter()

PATH = "/customers"
PAGE_SIZE = 50
STATUSES = CUSTOMER.states
#: Button labels for the lifecycle moves a viewer may make.
ACTION_LABELS = {
    "validated": "Verify",
    "manual-review": "Send to manual review",
    "closed": "Close customer",
}
Text = Annotated[str, Form()]


@dataclass
class CustomerList:
    customers: list[Customer]
    status: str
    next_url: str | None
    first_url: str | None


def _list_url(status: str, after: str | None = None) -> str:
    query = urlencode({k: v for k, v in {"status": status, "after": after}.items() if v})
    return f"{PATH}?{query}" if query else PATH


def list_customers(session: Session, *, status: str, after: str | None) -> CustomerList:
    stmt = select(Customer)
    if status in STATUSES:
        stmt = stmt.where(Customer.status == status)
    else:
        status = ""
    found: Page[Customer] = paginate(session, stmt, Customer.id, cursor=after, limit=PAGE_SIZE)
    return CustomerList(
        list(found.items),
        status,
        _list_url(status, found.next_cursor) if found.next_cursor else None,
        _list_url(status) if after else None,
    )


@router.get(PATH)
def customers_page(
    request: Request, signed_in: SignedIn, status: str = "", after: str | None = None
) -> Response:
    signed_in.require_any("customers:read")
    if not signed_in.principal.all_tenants:
        with signed_in.call.read() as session:
            own = customers.customer_of_tenant(session, signed_in.principal.tenant_id)
        if own is not None:
            return RedirectResponse(f"{PATH}/{own.id}", status_code=303)
    flash, status_code = None, 200
    try:
        with signed_in.call.read() as session:
            listing = list_customers(session, status=status, after=after or None)
    except DomainError as exc:  # a cursor this server did not issue: show the first page
        with signed_in.call.read() as session:
            listing = list_customers(session, status=status, after=None)
        flash, status_code = Flash("error", exc.detail), exc.status
    return page(
        request,
        signed_in,
        "customers.html",
        {"title": "Customers", "listing": listing, "statuses": STATUSES},
        flash=flash,
        status_code=status_code,
    )


@dataclass
class CustomerDetail:
    customer: Customer
    legal_rep_id: str
    agent_id: str
    warnings: list[str]
    assessment: risk.Assessment
    documents: list[documents.DocumentInfo]
    missing: list[str]
    actions: list[tuple[str, str]] = field(default_factory=list)
    accounts: list[BillingAccount] = field(default_factory=list)
    contracts: list[Contract] = field(default_factory=list)
    in_force: set[uuid.UUID] = field(default_factory=set)


def _shown_id(signed_in: ConsoleSession, value: str) -> str:
    if "customers:write" in signed_in.principal.scopes:
        return value
    return realname.mask_resident_id(value)


def load_detail(
    session: Session, signed_in: ConsoleSession, customer_id: uuid.UUID
) -> CustomerDetail:
    customer = customers.get_customer(session, customer_id)
    principal = signed_in.principal
    warnings = [w for w in [customers.region_mismatch(customer)] if w]
    if not customer.uscc_check_ok:
        warnings.append("The credit code fails its check character: compare it with the licence.")
    docs = documents.document_page(session, customer.id, cursor=None, limit=100).items
    detail = CustomerDetail(
        customer=customer,
        legal_rep_id=_shown_id(signed_in, customer.legal_rep_id),
        agent_id=_shown_id(signed_in, customer.agent_id),
        warnings=warnings,
        assessment=risk.latest(customer),
        documents=list(docs),
        missing=customers.missing_documents(session, customer),
    )
    if "customers:write" in principal.scopes:
        detail.actions = [
            (target, ACTION_LABELS.get(target, target))
            for target in CUSTOMER.targets(customer.status)
            if principal.role.value in CUSTOMER.transitions[(customer.status, target)]
        ]
    detail.accounts = accounts.accounts_of(session, customer.id)
    if "contracts:read" in principal.scopes:
        detail.contracts = list(
            session.scalars(
                select(Contract)
                .where(Contract.customer_id == customer.id)
                .order_by(Contract.number, Contract.version)
            )
        )
        detail.in_force = {c.id for c in contracts.contracts_in_force(session, customer.id)}
    return detail


def _parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def render_detail(
    request: Request,
    signed_in: ConsoleSession,
    customer_id: str,
    *,
    flash: Flash | None = None,
    status_code: int = 200,
) -> Response:
    signed_in.require_any("customers:read")
    parsed = _parse_id(customer_id)
    try:
        if parsed is None:
            raise NotFound(f"customer {customer_id} not found")
        with signed_in.call.read() as session:
            detail = load_detail(session, signed_in, parsed)
    except NotFound as exc:
        return page(
            request,
            signed_in,
            "customer.html",
            {"title": "Customer not found", "detail": None, "message": exc.detail},
            status_code=404,
        )
    return page(
        request,
        signed_in,
        "customer.html",
        {
            "title": detail.customer.name,
            "detail": detail,
            "kinds": documents.DOCUMENT_KINDS,
            "personal_kinds": documents.PERSONAL_KINDS,
            "industries": realname.INDUSTRIES,
            "provinces": realname.PROVINCES,
            "balance": accounts.balance_text,
        },
        flash=flash,
        status_code=status_code,
    )


@router.get(PATH + "/{customer_id}")
def customer_page(request: Request, signed_in: SignedIn, customer_id: str) -> Response:
    return render_detail(request, signed_in, customer_id)


def _done(signed_in: ConsoleSession, customer_id: uuid.UUID, message: str) -> Response:
    response = RedirectResponse(f"{PATH}/{customer_id}", status_code=303)
    set_flash(response, Flash("success", message), secure=signed_in.ctx.settings.cookie_secure)
    return response


def _refused(
    request: Request, signed_in: ConsoleSession, customer_id: uuid.UUID, exc: DomainError
) -> Response:
    return render_detail(
        request,
        signed_in,
        str(customer_id),
        flash=Flash("error", exc.detail),
        status_code=exc.status,
    )


@router.post(PATH + "/{customer_id}/status")
def change_status(
    request: Request,
    signed_in: Posted,
    customer_id: uuid.UUID,
    status: Text = "",
    reason: Text = "",
) -> Response:
    signed_in.require_any("customers:write")
    try:
        with signed_in.call.write() as session:
            customer = customers.change_status(
                session,
                signed_in.principal,
                customer_id,
                status,
                at=signed_in.now(),
                reason=reason.strip() or None,
            )
            name = customer.name
    except DomainError as exc:
        return _refused(request, signed_in, customer_id, exc)
    return _done(signed_in, customer_id, f"{name} is now {status}.")


@router.post(PATH + "/{customer_id}/risk-assessment")
def assess_risk(request: Request, signed_in: Posted, customer_id: uuid.UUID) -> Response:
    signed_in.require_any("customers:write")
    try:
        with signed_in.call.write() as session:
            result = risk.assess(session, signed_in.principal, customer_id, at=signed_in.now())
    except DomainError as exc:
        return _refused(request, signed_in, customer_id, exc)
    verdict = "passed" if result.passed else "failed"
    return _done(signed_in, customer_id, f"Risk assessment {verdict} (score {result.score}).")


@router.post(PATH + "/{customer_id}/documents")
def file_document(
    request: Request,
    signed_in: Posted,
    customer_id: uuid.UUID,
    file: Annotated[UploadFile | None, File()] = None,
    kind: Text = "",
) -> Response:
    signed_in.require_any("customers:write")
    content = file.file.read(documents.MAX_DOCUMENT_BYTES + 1) if file else b""
    try:
        with signed_in.call.write() as session:
            doc = documents.file_document(
                session,
                signed_in.principal,
                customer_id,
                kind=kind,
                filename=file.filename if file else None,
                content=content,
                at=signed_in.now(),
            )
            label = f"{documents.DOCUMENT_KINDS.get(doc.kind, doc.kind)} filed ({doc.filename})."
    except DomainError as exc:
        return _refused(request, signed_in, customer_id, exc)
    return _done(signed_in, customer_id, label)


@router.get(PATH + "/{customer_id}/documents/{document_id}")
def download(
    request: Request, signed_in: SignedIn, customer_id: uuid.UUID, document_id: uuid.UUID
) -> Response:
    signed_in.require_any("customers:read")
    try:
        with signed_in.call.read() as session:
            doc = documents.open_document(session, signed_in.principal, customer_id, document_id)
            content, media_type, name = doc.content, doc.media_type, doc.filename
    except DomainError as exc:
        return _refused(request, signed_in, customer_id, exc)
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )
