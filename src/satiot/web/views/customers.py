"""The Customers pages: the real-name register, and one customer with its evidence.

Operator staff see every customer with its verification status and risk verdict; a customer's
own users see their record only (resident IDs masked unless the viewer verifies customers).
The list carries the onboarding form for staff who onboard (``customers:write``); the detail
page carries the actions of verification (filing documents, assessing risk, moving the customer
along its lifecycle) and, for sales staff, the form that drafts a contract for a validated
customer. Every action goes through the same domain functions as the REST API inside the
viewer's tenant-scoped session; a refusal re-renders the page with the reason (and a form with
what was typed), a success redirects (POST-redirect-GET) with a message.
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
from satiot.core.errors import DomainError, InvalidInput, NotFound
from satiot.core.models import Tenant
from satiot.core.pagination import Page, paginate
from satiot.web.contract_form import PostedTerms, TermsChoices, TermsForm, load_choices
from satiot.web.flash import Flash, redirect_with
from satiot.web.forms import FieldError, field_error
from satiot.web.once import FormKey, Sent, redirect, submit_once
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

#: The onboarding form's fields as it labels them.
ONBOARD_LABELS = {
    "name": "Name",
    "uscc": "Unified Social Credit Code",
    "organization_type": "Organisation type",
    "industry": "Industry",
    "province": "Province",
    "address": "Address",
    "legal_rep_name": "Legal representative's name",
    "legal_rep_id": "Legal representative's resident ID",
    "agent_name": "Agent's name",
    "agent_id": "Agent's resident ID",
    "agent_phone": "Agent's phone",
    "tenant_slug": "Tenant slug",
    "tenant_id": "Existing tenant",
}
#: Where the domain's field names (the API's) differ from the form's.
ONBOARD_ALIASES = {
    "legal_representative.name": "legal_rep_name",
    "legal_representative.resident_id": "legal_rep_id",
    "agent.name": "agent_name",
    "agent.resident_id": "agent_id",
    "agent.phone": "agent_phone",
    "slug": "tenant_slug",
}


@dataclass
class OnboardForm:
    """The onboarding form as typed; ``error`` is the refusal to show next to its field."""

    name: str = ""
    uscc: str = ""
    organization_type: str = "enterprise"
    industry: str = ""
    province: str = ""
    address: str = ""
    legal_rep_name: str = ""
    legal_rep_id: str = ""
    agent_name: str = ""
    agent_id: str = ""
    agent_phone: str = ""
    tenant_slug: str = ""
    tenant_id: str = ""
    error: FieldError | None = None

    def application(self) -> customers.Application:
        """What :func:`satiot.bss.customers.onboard` checks, as the API builds it."""
        return customers.Application(
            name=self.name,
            uscc=self.uscc,
            organization_type=self.organization_type,
            industry=self.industry,
            province=self.province,
            address=self.address,
            legal_representative=customers.Person(self.legal_rep_name, self.legal_rep_id),
            agent=customers.Person(self.agent_name, self.agent_id),
            agent_phone=self.agent_phone,
            tenant_slug=self.tenant_slug or None,
        )

    def existing_tenant(self) -> uuid.UUID | None:
        if not self.tenant_id:
            return None
        try:
            return uuid.UUID(self.tenant_id)
        except ValueError:
            raise InvalidInput(
                "tenant_id: choose a tenant from the list", field="tenant_id"
            ) from None


@dataclass(frozen=True)
class OnboardChoices:
    organization_types: tuple[str, ...] = realname.ORGANIZATION_TYPES
    industries: dict[str, str] = field(default_factory=lambda: realname.INDUSTRIES)
    provinces: dict[str, str] = field(default_factory=lambda: realname.PROVINCES)
    #: Customer tenants created earlier that have no real-name record yet.
    free_tenants: list[Tenant] = field(default_factory=list)


def free_tenants(session: Session) -> list[Tenant]:
    taken = select(Customer.tenant_id)
    return list(
        session.scalars(
            select(Tenant)
            .where(Tenant.kind == "customer", Tenant.id.not_in(taken))
            .order_by(Tenant.name)
        )
    )


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
    return render_list(request, signed_in, status=status, after=after or None)


def render_list(
    request: Request,
    signed_in: ConsoleSession,
    *,
    status: str = "",
    after: str | None = None,
    form: OnboardForm | None = None,
    flash: Flash | None = None,
    status_code: int = 200,
) -> Response:
    """The list, with the onboarding form for staff who onboard (as typed, after a refusal)."""
    can_onboard = "customers:write" in signed_in.principal.scopes
    try:
        with signed_in.call.read() as session:
            listing = list_customers(session, status=status, after=after)
    except DomainError as exc:  # a cursor this server did not issue: show the first page
        with signed_in.call.read() as session:
            listing = list_customers(session, status=status, after=None)
        flash, status_code = Flash("error", exc.detail), exc.status
    choices = None
    if can_onboard:
        with signed_in.call.read() as session:
            choices = OnboardChoices(free_tenants=free_tenants(session))
    return page(
        request,
        signed_in,
        "customers.html",
        {
            "title": "Customers",
            "listing": listing,
            "industries": realname.INDUSTRIES,
            "provinces": realname.PROVINCES,
            "statuses": STATUSES,
            "form": form or OnboardForm(),
            "choices": choices,
        },
        flash=flash,
        status_code=status_code,
    )


@router.post(PATH)
def onboard_customer(
    request: Request,
    signed_in: Posted,
    name: Text = "",
    uscc: Text = "",
    organization_type: Text = "",
    industry: Text = "",
    province: Text = "",
    address: Text = "",
    legal_rep_name: Text = "",
    legal_rep_id: Text = "",
    agent_name: Text = "",
    agent_id: Text = "",
    agent_phone: Text = "",
    tenant_slug: Text = "",
    tenant_id: Text = "",
    form_key: FormKey = "",
) -> Response:
    """Onboard a customer and its tenant with :func:`satiot.bss.customers.onboard`, as
    ``POST /api/v1/customers`` does; a refusal creates nothing and keeps what was typed."""
    signed_in.require_any("customers:write")
    form = OnboardForm(
        name=name,
        uscc=uscc,
        organization_type=organization_type,
        industry=industry,
        province=province,
        address=address,
        legal_rep_name=legal_rep_name,
        legal_rep_id=legal_rep_id,
        agent_name=agent_name,
        agent_id=agent_id,
        agent_phone=agent_phone,
        tenant_slug=tenant_slug,
        tenant_id=tenant_id,
    )

    def work(session: Session) -> Sent:
        customer = customers.onboard(
            session,
            signed_in.principal,
            form.application(),
            at=signed_in.now(),
            tenant_id=form.existing_tenant(),
        )
        if customer.status == "manual-review":
            done = "onboarded into manual review: its credit code fails its check character."
        else:
            done = "onboarded: file its documents, then verify it."
        return Sent(f"{PATH}/{customer.id}", f"{customer.name} {done}")

    try:
        sent, _ = submit_once(signed_in, form_key, request.url.path, work)
    except DomainError as exc:
        form.error = field_error(exc, ONBOARD_LABELS, ONBOARD_ALIASES)
        flash = Flash("error", form.error.message)
        return render_list(request, signed_in, form=form, flash=flash, status_code=exc.status)
    return redirect(signed_in, sent)


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
    #: The contract draft form and its choices, for sales staff and a validated customer.
    terms_form: TermsForm | None = None
    choices: TermsChoices | None = None


def _shown_id(signed_in: ConsoleSession, value: str) -> str:
    if "customers:write" in signed_in.principal.scopes:
        return value
    return realname.mask_resident_id(value)


def load_detail(
    session: Session,
    signed_in: ConsoleSession,
    customer_id: uuid.UUID,
    terms_form: TermsForm | None = None,
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
    if "contracts:write" in principal.scopes and customer.status == "validated":
        detail.terms_form = terms_form or TermsForm(service_area=[customer.province])
        detail.choices = load_choices(session, detail.terms_form)
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
    terms_form: TermsForm | None = None,
) -> Response:
    signed_in.require_any("customers:read")
    parsed = _parse_id(customer_id)
    try:
        if parsed is None:
            raise NotFound(f"customer {customer_id} not found")
        with signed_in.call.read() as session:
            detail = load_detail(session, signed_in, parsed, terms_form)
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
    secure = signed_in.ctx.settings.cookie_secure
    return redirect_with(f"{PATH}/{customer_id}", Flash("success", message), secure=secure)


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


@router.post(PATH + "/{customer_id}/contracts")
def draft_contract(
    request: Request,
    signed_in: Posted,
    customer_id: uuid.UUID,
    form: PostedTerms,
    form_key: FormKey = "",
) -> Response:
    """Draft version 1 of a contract with :func:`satiot.bss.contracts.draft`, as
    ``POST /api/v1/contracts`` does; on to the draft's page to read and sign it."""
    signed_in.require_any("contracts:write")

    def work(session: Session) -> Sent:
        contract = contracts.draft(
            session, signed_in.principal, customer_id, form.terms(), at=signed_in.now()
        )
        label = f"{contract.number} v{contract.version}"
        done = f"{label} drafted: read its text with the customer, then record the signature."
        return Sent(f"/contracts/{contract.id}", done)

    try:
        sent, _ = submit_once(signed_in, form_key, request.url.path, work)
    except DomainError as exc:
        return render_detail(
            request,
            signed_in,
            str(customer_id),
            flash=Flash("error", form.refused(exc).message),
            status_code=exc.status,
            terms_form=form,
        )
    return redirect(signed_in, sent)


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
    form_key: FormKey = "",
) -> Response:
    signed_in.require_any("customers:write")
    content = file.file.read(documents.MAX_DOCUMENT_BYTES + 1) if file else b""

    def work(session: Session) -> Sent:
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
        return Sent(f"{PATH}/{customer_id}", label)

    try:
        sent, _ = submit_once(signed_in, form_key, request.url.path, work)
    except DomainError as exc:
        return _refused(request, signed_in, customer_id, exc)
    return redirect(signed_in, sent)


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
