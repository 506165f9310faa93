"""Customers (TMF629/632): real-name onboarding, verification and risk assessment.

Operator staff onboard a customer and its tenant in one request, verify it and assess its
risk; a customer's own users read their record. Resident ID numbers are shown masked (first 6
and last 4 characters) unless the caller holds ``customers:write``. Documents are in
:mod:`satiot.api.customer_documents`, billing accounts in :mod:`satiot.api.billing_accounts`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.api import problems
from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    Input,
    LimitParam,
    Output,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.deps import Call, requires
from satiot.bss import customers, realname, risk
from satiot.bss.models import Customer
from satiot.core.auth.principal import Principal
from satiot.core.pagination import paginate

router = APIRouter(prefix="/customers", tags=["customers"])
Reader = Annotated[Call, Depends(requires("customers:read"))]
Writer = Annotated[Call, Depends(requires("customers:write"))]
API_PATH = "/api/v1/customers"

for _cls, _text in (
    (customers.CustomerNotFound, "No such customer, or none visible to this caller."),
    (
        risk.CustomerNotReady,
        "Orders need a validated customer whose latest risk assessment passed.",
    ),
):
    problems.CATALOG.setdefault(_cls.slug, (_cls.title, _text))

CustomerStatus = Literal["initialized", "manual-review", "validated", "closed"]
RiskStatus = Literal["pending", "passed", "failed"]


class PersonIn(Input):
    name: str = Field(min_length=1, max_length=100, examples=["张伟"])
    resident_id: str = Field(
        min_length=1,
        max_length=32,
        description="Resident ID number (GB 11643), 18 characters",
        examples=["11010519491231002X"],
    )


class AgentIn(PersonIn):
    phone: str = Field(min_length=1, max_length=32, examples=["13800138000"])


class CustomerIn(Input):
    name: str = Field(min_length=1, max_length=200, examples=["中远海运物流有限公司"])
    uscc: str = Field(
        min_length=1,
        max_length=32,
        description="Unified Social Credit Code (GB 32100), 18 characters",
        examples=["91110000600037341L"],
    )
    organization_type: Literal["enterprise", "institution"]
    industry: str = Field(
        min_length=1, max_length=2, description="GB/T 4754 section letter A-T", examples=["G"]
    )
    province: str = Field(
        min_length=1, max_length=2, description="GB/T 2260 province code", examples=["11"]
    )
    address: str = Field(default="", max_length=500)
    legal_representative: PersonIn
    agent: AgentIn
    tenant_slug: str | None = Field(
        default=None, max_length=63, description="Defaults to one derived from the name"
    )
    tenant_id: uuid.UUID | None = Field(
        default=None,
        description="Attach the record to this existing customer tenant instead of creating one",
    )


class StatusIn(Input):
    status: CustomerStatus
    reason: str | None = Field(default=None, max_length=500)


class PersonOut(BaseModel):
    name: str
    resident_id: str = Field(description="Masked unless the caller holds customers:write")


class AgentOut(PersonOut):
    phone: str


class FindingOut(BaseModel):
    code: str
    weight: int
    blocking: bool
    description: str
    detail: str


class RiskOut(BaseModel):
    status: RiskStatus
    score: int | None
    passed: bool
    findings: list[FindingOut]
    assessed_at: datetime | None
    assessed_by: str | None


class CustomerOut(Output):
    id: uuid.UUID
    href: str
    name: str
    status: CustomerStatus
    tenant_id: uuid.UUID
    uscc: str
    uscc_check_ok: bool
    organization_type: str
    industry: str
    industry_name: str
    province: str
    province_name: str
    address: str
    legal_representative: PersonOut
    agent: AgentOut
    risk: RiskOut
    warnings: list[str]
    created_at: datetime
    updated_at: datetime


def _id(value: str, principal: Principal) -> str:
    if "customers:write" in principal.scopes:
        return value
    return realname.mask_resident_id(value)


def risk_out(customer: Customer) -> RiskOut:
    latest = risk.latest(customer)
    return RiskOut(
        status=cast(RiskStatus, customer.risk_status),
        score=customer.risk_score,
        passed=latest.passed,
        findings=[
            FindingOut(
                code=f.code,
                weight=f.weight,
                blocking=f.blocking,
                description=f.description,
                detail=f.detail,
            )
            for f in latest.findings
        ],
        assessed_at=latest.assessed_at,
        assessed_by=latest.assessed_by,
    )


def customer_out(customer: Customer, principal: Principal) -> CustomerOut:
    """The customer as this caller may see it (resident IDs masked without write scope)."""
    warning = customers.region_mismatch(customer)
    warnings = [warning] if warning else []
    if not customer.uscc_check_ok:
        warnings.append("the credit code fails its check character: compare the licence")
    return CustomerOut(
        id=customer.id,
        href=f"{API_PATH}/{customer.id}",
        name=customer.name,
        status=cast(CustomerStatus, customer.status),
        tenant_id=customer.tenant_id,
        uscc=customer.uscc,
        uscc_check_ok=customer.uscc_check_ok,
        organization_type=customer.org_type,
        industry=customer.industry,
        industry_name=realname.INDUSTRIES.get(customer.industry, ""),
        province=customer.province,
        province_name=realname.PROVINCES.get(customer.province, ""),
        address=customer.address,
        legal_representative=PersonOut(
            name=customer.legal_rep_name, resident_id=_id(customer.legal_rep_id, principal)
        ),
        agent=AgentOut(
            name=customer.agent_name,
            resident_id=_id(customer.agent_id, principal),
            phone=customer.agent_phone,
        ),
        risk=risk_out(customer),
        warnings=warnings,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def application_of(body: CustomerIn) -> customers.Application:
    return customers.Application(
        name=body.name,
        uscc=body.uscc,
        organization_type=body.organization_type,
        industry=body.industry,
        province=body.province,
        address=body.address,
        legal_representative=customers.Person(
            body.legal_representative.name, body.legal_representative.resident_id
        ),
        agent=customers.Person(body.agent.name, body.agent.resident_id),
        agent_phone=body.agent.phone,
        tenant_slug=body.tenant_slug,
    )


@router.get("", response_model=Page[CustomerOut], summary="List customers visible to the caller")
def list_customers(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    status: Annotated[CustomerStatus | None, Query()] = None,
) -> Page[CustomerOut]:
    stmt = select(Customer)
    if status is not None:
        stmt = stmt.where(Customer.status == status)
    with call.read() as session:
        page = paginate(session, stmt, Customer.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, lambda c: customer_out(c, call.principal))


@router.post(
    "",
    status_code=201,
    response_model=CustomerOut,
    summary="Onboard a customer and create its tenant (one transaction)",
)
def post_customer(
    call: Writer, request: Request, body: CustomerIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> CustomerOut:
        customer = customers.onboard(
            session,
            call.principal,
            application_of(body),
            at=call.now(),
            tenant_id=body.tenant_id,
        )
        return customer_out(customer, call.principal)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("/{customer_id}", response_model=CustomerOut, summary="One customer")
def get_customer(call: Reader, customer_id: uuid.UUID) -> CustomerOut:
    with call.read() as session:
        return customer_out(customers.get_customer(session, customer_id), call.principal)


@router.post(
    "/{customer_id}/status",
    response_model=CustomerOut,
    summary="Verify, send to manual review, or close a customer",
)
def post_status(call: Writer, customer_id: uuid.UUID, body: StatusIn) -> CustomerOut:
    with call.write() as session:
        customer = customers.change_status(
            session, call.principal, customer_id, body.status, at=call.now(), reason=body.reason
        )
        return customer_out(customer, call.principal)


@router.post(
    "/{customer_id}/risk-assessment",
    response_model=RiskOut,
    summary="Assess the customer's risk now and keep the result",
)
def post_risk_assessment(call: Writer, customer_id: uuid.UUID) -> RiskOut:
    with call.write() as session:
        risk.assess(session, call.principal, customer_id, at=call.now())
        return risk_out(customers.get_customer(session, customer_id))


@router.get(
    "/{customer_id}/risk-assessment",
    response_model=RiskOut,
    summary="The customer's latest risk assessment",
)
def get_risk_assessment(call: Reader, customer_id: uuid.UUID) -> RiskOut:
    with call.read() as session:
        return risk_out(customers.get_customer(session, customer_id))
