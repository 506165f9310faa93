"""Tenants: the operator itself and its enterprise customers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

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
from satiot.core.auth.users import create_tenant, set_tenant_status
from satiot.core.errors import NotFound
from satiot.core.models import Tenant
from satiot.core.pagination import paginate

router = APIRouter(prefix="/tenants", tags=["tenants"])
Reader = Annotated[Call, Depends(requires("tenants:read"))]
Writer = Annotated[Call, Depends(requires("tenants:write"))]


class TenantIn(Input):
    slug: str = Field(min_length=1, max_length=63, examples=["sinotrans-logistics"])
    name: str = Field(min_length=1, max_length=200)


class TenantStatusIn(Input):
    status: Literal["active", "suspended", "closed"]
    reason: str | None = Field(default=None, max_length=500)


class TenantOut(Output):
    id: uuid.UUID
    slug: str
    name: str
    kind: str
    status: str
    created_at: datetime


@router.get("", response_model=Page[TenantOut], summary="List tenants visible to the caller")
def list_tenants(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[TenantOut]:
    with call.read() as session:
        page = paginate(session, select(Tenant), Tenant.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, TenantOut.model_validate)


@router.post("", status_code=201, response_model=TenantOut, summary="Create a customer tenant")
def post_tenant(
    call: Writer, request: Request, body: TenantIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> TenantOut:
        tenant = create_tenant(
            session, call.principal, slug=body.slug, name=body.name, at=call.now()
        )
        return TenantOut.model_validate(tenant)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("/{tenant_id}", response_model=TenantOut, summary="One tenant")
def get_tenant(call: Reader, tenant_id: uuid.UUID) -> TenantOut:
    with call.read() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} not found")
        return TenantOut.model_validate(tenant)


@router.patch("/{tenant_id}", response_model=TenantOut, summary="Suspend, restore or close")
def patch_tenant(call: Writer, tenant_id: uuid.UUID, body: TenantStatusIn) -> TenantOut:
    with call.write() as session:
        tenant = set_tenant_status(
            session, call.principal, tenant_id, body.status, at=call.now(), reason=body.reason
        )
        return TenantOut.model_validate(tenant)
