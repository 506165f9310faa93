"""The audit log and the event log's consumer positions, for compliance and the NOC."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from satiot.api.common import CursorParam, LimitParam, Output, Page, page_response
from satiot.api.deps import Call, requires
from satiot.core import audit, events
from satiot.core.models import AuditEntry
from satiot.core.pagination import paginate

router = APIRouter(tags=["audit"])
AuditReader = Annotated[Call, Depends(requires("audit:read"))]
EventReader = Annotated[Call, Depends(requires("events:read"))]


class AuditOut(Output):
    seq: int
    at: datetime
    actor: str
    tenant_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    last_seq: int
    problem: str | None
    seq: int | None


class ConsumerOut(BaseModel):
    name: str
    position: int
    head: int
    lag: int
    updated_at: datetime | None


@router.get("/audit", response_model=Page[AuditOut], summary="Audit entries, newest first")
def list_audit(
    call: AuditReader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    target_type: Annotated[str | None, Query(max_length=64)] = None,
    target_id: Annotated[str | None, Query(max_length=100)] = None,
    tenant_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[AuditOut]:
    stmt = select(AuditEntry)
    if target_type:
        stmt = stmt.where(AuditEntry.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditEntry.target_id == target_id)
    if tenant_id:
        stmt = stmt.where(AuditEntry.tenant_id == tenant_id)
    with call.read() as session:
        page = paginate(session, stmt, AuditEntry.seq, cursor=cursor, limit=limit, descending=True)
        return page_response(request, response, page, AuditOut.model_validate)


@router.get(
    "/audit/verification",
    response_model=VerifyOut,
    summary="Walk the hash chain and report the first broken row",
)
def verify_audit(call: AuditReader) -> VerifyOut:
    with call.read() as session:
        v = audit.verify(session)
    return VerifyOut(ok=v.ok, checked=v.checked, last_seq=v.last_seq, problem=v.problem, seq=v.seq)


@router.get(
    "/events/consumers",
    response_model=list[ConsumerOut],
    summary="Event-log consumers, their positions and lag",
)
def list_consumers(call: EventReader) -> list[ConsumerOut]:
    with call.read() as session:
        return [
            ConsumerOut(
                name=s.name, position=s.position, head=s.head, lag=s.lag, updated_at=s.updated_at
            )
            for s in events.status(session)
        ]
