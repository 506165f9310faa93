"""IoT number blocks and numbers: configuration, allocation, lifecycle and the annual report.

Only the operator's staff hold the ``numbers:*`` scopes; a customer learns its numbers through
its devices and subscriptions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query, Request, Response
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
from satiot.core.pagination import paginate
from satiot.oss import number_blocks, numbering
from satiot.oss.models import IotNumber, NumberBlock
from satiot.oss.states import NUMBER

blocks_router = APIRouter(prefix="/number-blocks", tags=["numbers"])
numbers_router = APIRouter(prefix="/numbers", tags=["numbers"])
Reader = Annotated[Call, Depends(requires("numbers:read"))]
Writer = Annotated[Call, Depends(requires("numbers:write"))]
NumberStatus = Literal["available", "reserved", "active", "suspended", "cancelled", "quarantine"]
assert set(get_args(NumberStatus)) == set(NUMBER.states)
NumberPath = Annotated[str, Path(pattern=r"^[0-9]{13}$", examples=["1410123400001"])]

problems.CATALOG.setdefault(
    numbering.NumbersExhausted.slug,
    (numbering.NumbersExhausted.title, "Every number of the blocks that fit is in use."),
)


class BlockIn(Input):
    name: str = Field(min_length=1, max_length=64, examples=["satiot-2026-1"])
    prefix: str = Field(pattern=r"^[0-9]{1,12}$", examples=["14101234"])
    first: str | None = Field(
        default=None, pattern=r"^[0-9]{1,12}$", description="First suffix (default all zeros)"
    )
    last: str | None = Field(
        default=None, pattern=r"^[0-9]{1,12}$", description="Last suffix (default all nines)"
    )
    purpose: str = Field(min_length=1, max_length=200, examples=["satellite IoT terminals"])
    scope: str = Field(min_length=1, max_length=200, examples=["national"])
    authority_ref: str | None = Field(default=None, max_length=100)


class BlockOut(Output):
    id: uuid.UUID
    name: str
    prefix: str
    first_number: str
    last_number: str
    size: int
    purpose: str
    scope: str
    authority_ref: str | None
    created_at: datetime

    @classmethod
    def of(cls, block: NumberBlock) -> BlockOut:
        return cls(
            id=block.id,
            name=block.name,
            prefix=block.prefix,
            first_number=number_blocks.format_number(block.first_number),
            last_number=number_blocks.format_number(block.last_number),
            size=block.last_number - block.first_number + 1,
            purpose=block.purpose,
            scope=block.scope,
            authority_ref=block.authority_ref,
            created_at=block.created_at,
        )


class BlockFiguresOut(BaseModel):
    name: str
    prefix: str
    first_number: str
    last_number: str
    purpose: str
    scope: str
    size: int
    allocated: int
    active: int
    quarantined: int
    utilisation: float


class ReportOut(BaseModel):
    as_of: datetime
    blocks: list[BlockFiguresOut]


class AllocationIn(Input):
    tenant_id: uuid.UUID
    block_id: uuid.UUID | None = Field(default=None, description="Default: the first with room")
    purpose: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)


class NumberStatusIn(Input):
    status: NumberStatus
    reason: str | None = Field(default=None, max_length=500)


class NumberOut(Output):
    number: str
    block_id: uuid.UUID
    status: str
    tenant_id: uuid.UUID | None
    reserved_at: datetime | None
    activated_at: datetime | None
    cancelled_at: datetime | None
    quarantine_until: datetime | None
    updated_at: datetime


@blocks_router.get("", response_model=Page[BlockOut], summary="List number blocks")
def list_blocks(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[BlockOut]:
    with call.read() as session:
        page = paginate(session, select(NumberBlock), NumberBlock.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, BlockOut.of)


@blocks_router.post("", status_code=201, response_model=BlockOut, summary="Add a number block")
def post_block(
    call: Writer, request: Request, body: BlockIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> BlockOut:
        spec = number_blocks.BlockSpec(**body.model_dump())
        return BlockOut.of(number_blocks.create_block(session, call.principal, spec, at=call.now()))

    return create_idempotently(call, request, idempotency_key, body, create)


@blocks_router.get(
    "/report",
    response_model=ReportOut,
    summary="Figures of the annual numbering report, per block, as of now",
)
def get_report(call: Reader) -> ReportOut:
    with call.read() as session:
        figures = number_blocks.report(session)
    return ReportOut(
        as_of=call.now(),
        blocks=[BlockFiguresOut(**vars(f), utilisation=f.utilisation) for f in figures],
    )


@blocks_router.get("/{block_id}", response_model=BlockOut, summary="One number block")
def get_block(call: Reader, block_id: uuid.UUID) -> BlockOut:
    with call.read() as session:
        return BlockOut.of(number_blocks.get_block(session, block_id))


@numbers_router.get("", response_model=Page[NumberOut], summary="List numbers, lowest first")
def list_numbers(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    status: Annotated[NumberStatus | None, Query()] = None,
    block_id: Annotated[uuid.UUID | None, Query()] = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Held by this customer")] = None,
) -> Page[NumberOut]:
    """Numbers that have a row: every number ever handed out (and a few pre-created
    ``available`` ones); the rest of a block's range is free and not listed."""
    stmt = select(IotNumber)
    if status is not None:
        stmt = stmt.where(IotNumber.status == status)
    if block_id is not None:
        stmt = stmt.where(IotNumber.block_id == block_id)
    if tenant_id is not None:
        stmt = stmt.where(IotNumber.tenant_id == tenant_id)
    with call.read() as session:
        page = paginate(session, stmt, IotNumber.number, cursor=cursor, limit=limit)
        return page_response(request, response, page, NumberOut.model_validate)


@numbers_router.post(
    "", status_code=201, response_model=NumberOut, summary="Reserve the lowest free number"
)
def post_allocation(
    call: Writer, request: Request, body: AllocationIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> NumberOut:
        row = numbering.allocate(
            session,
            call.principal,
            tenant_id=body.tenant_id,
            at=call.now(),
            block=body.block_id,
            purpose=body.purpose,
            reason=body.reason,
        )
        return NumberOut.model_validate(row)

    return create_idempotently(call, request, idempotency_key, body, create)


@numbers_router.get("/{number}", response_model=NumberOut, summary="One number")
def get_number(call: Reader, number: NumberPath) -> NumberOut:
    with call.read() as session:
        return NumberOut.model_validate(numbering.get_number(session, number))


@numbers_router.patch(
    "/{number}",
    response_model=NumberOut,
    summary="Move a number along its lifecycle (activate, suspend, cancel, release …)",
)
def patch_number(call: Writer, number: NumberPath, body: NumberStatusIn) -> NumberOut:
    with call.write() as session:
        row = numbering.transition(
            session,
            call.principal,
            number,
            body.status,
            at=call.now(),
            reason=body.reason,
            quarantine_days=call.ctx.settings.number_quarantine_days,
        )
        return NumberOut.model_validate(row)
