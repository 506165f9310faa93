"""Licensed terminal models (MIIT network-access licences): the operator's own register,
kept model by model or imported whole as a licence list (``POST /terminal-models/csv``, every
bad line named and nothing imported; see :mod:`satiot.oss.licence_list`)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Literal

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
from satiot.api.csv_files import (
    CSV_415,
    CSV_BODY,
    CSV_FILE,
    EncodingParam,
    file_response,
    import_file,
)
from satiot.api.deps import Call, requires
from satiot.core.pagination import paginate
from satiot.oss import licence_list, terminals
from satiot.oss.models import TerminalModel

router = APIRouter(prefix="/terminal-models", tags=["terminal-models"])
Reader = Annotated[Call, Depends(requires("terminal-models:read"))]
Writer = Annotated[Call, Depends(requires("terminal-models:write"))]

problems.CATALOG.setdefault(
    licence_list.LicenceListRejected.slug,
    (
        licence_list.LicenceListRejected.title,
        "One or more lines of the licence list cannot be imported; nothing was. The errors "
        "member lists each one: line (the header is 1), column and reason.",
    ),
)
problems.CATALOG.setdefault(
    terminals.ModelNotAdmissible.slug,
    (
        terminals.ModelNotAdmissible.title,
        "The terminal model is not on the operator's licence register, is withdrawn, or its "
        "network-access licence is not valid on the day asked.",
    ),
)

LicenceNumber = Annotated[
    str, Field(pattern=terminals.LICENCE_RE.pattern, examples=["00-B182-228209"])
]
Tac = Annotated[str, Field(pattern=r"^[0-9]{8}$")]


class TerminalModelIn(Input):
    name: str = Field(min_length=1, max_length=100, examples=["TQ-M100"])
    equipment_name: str = Field(min_length=1, max_length=200, examples=["Satellite IoT module"])
    manufacturer: str = Field(min_length=1, max_length=200)
    applicant: str = Field(min_length=1, max_length=200)
    licence_number: LicenceNumber
    issued_on: date
    expires_on: date
    tacs: list[Tac] = Field(default_factory=list, max_length=terminals.MAX_TACS)


class TerminalModelPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    equipment_name: str | None = Field(default=None, min_length=1, max_length=200)
    manufacturer: str | None = Field(default=None, min_length=1, max_length=200)
    applicant: str | None = Field(default=None, min_length=1, max_length=200)
    licence_number: LicenceNumber | None = None
    issued_on: date | None = None
    expires_on: date | None = None
    tacs: list[Tac] | None = Field(default=None, max_length=terminals.MAX_TACS)
    status: Literal["listed", "withdrawn"] | None = None
    reason: str | None = Field(default=None, max_length=500)


class TerminalModelOut(Output):
    id: uuid.UUID
    name: str
    equipment_name: str
    manufacturer: str
    applicant: str
    licence_number: str
    issued_on: date
    expires_on: date
    tacs: list[str]
    status: str
    created_at: datetime
    updated_at: datetime


class LicenceWatchOut(BaseModel):
    on: date
    expired: list[TerminalModelOut]
    expiring: list[TerminalModelOut]


@router.get("", response_model=Page[TerminalModelOut], summary="List terminal models")
def list_models(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    status: Annotated[Literal["listed", "withdrawn"] | None, Query()] = None,
) -> Page[TerminalModelOut]:
    stmt = select(TerminalModel)
    if status is not None:
        stmt = stmt.where(TerminalModel.status == status)
    with call.read() as session:
        page = paginate(session, stmt, TerminalModel.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, TerminalModelOut.model_validate)


@router.post(
    "", status_code=201, response_model=TerminalModelOut, summary="Record a licensed model"
)
def post_model(
    call: Writer, request: Request, body: TerminalModelIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> TerminalModelOut:
        spec = terminals.TerminalModelSpec(**body.model_dump() | {"tacs": tuple(body.tacs)})
        model = terminals.create_model(session, call.principal, spec, at=call.now())
        return TerminalModelOut.model_validate(model)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get(
    "/licence-watch",
    response_model=LicenceWatchOut,
    summary="Listed models whose licence has expired or expires soon (the daily re-check)",
)
def licence_watch(
    call: Reader,
    within_days: Annotated[int, Query(ge=0, le=3650)] = 90,
    on: Annotated[date | None, Query(description="Day to check; default today (UTC)")] = None,
) -> LicenceWatchOut:
    with call.read() as session:
        watch = terminals.licence_watch(
            session, on=on or call.now().date(), within_days=within_days
        )
        return LicenceWatchOut(
            on=watch.on,
            expired=[TerminalModelOut.model_validate(m) for m in watch.expired],
            expiring=[TerminalModelOut.model_validate(m) for m in watch.expiring],
        )


class LicenceImportOut(Output):
    created: int
    updated: int
    unchanged: int


@router.get(
    "/csv-template",
    summary="An empty licence list to fill in: the header line",
    response_class=Response,
    responses=CSV_FILE,
)
def get_csv_template(call: Reader) -> Response:
    return file_response(licence_list.template(), licence_list.TEMPLATE_NAME)


@router.post(
    "/csv",
    response_model=LicenceImportOut,
    summary="Import a licence list from a CSV file (multipart 'file', or a text/csv body)",
    responses=CSV_415,
    openapi_extra=CSV_BODY,
)
async def post_csv(
    call: Writer,
    request: Request,
    encoding: EncodingParam = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """New models are recorded and known ones (by name) updated, each change audited. Any
    bad line refuses the whole list: 422 ``licence-list-rejected`` with ``errors`` naming
    each ``{line, column, reason}``."""

    def load(session: Session, data: bytes, codec: str) -> LicenceImportOut:
        listed = licence_list.read_licence_list(data, encoding=codec, at=call.now())
        result = licence_list.import_licence_list(session, call.principal, listed, at=call.now())
        return LicenceImportOut(**asdict(result))

    return await import_file(call, request, encoding, idempotency_key, load)


@router.get("/{model_id}", response_model=TerminalModelOut, summary="One terminal model")
def get_model(call: Reader, model_id: uuid.UUID) -> TerminalModelOut:
    with call.read() as session:
        return TerminalModelOut.model_validate(terminals.get_model(session, model_id))


@router.patch(
    "/{model_id}",
    response_model=TerminalModelOut,
    summary="Renew a licence, correct a field, withdraw or re-list a model",
)
def patch_model(call: Writer, model_id: uuid.UUID, body: TerminalModelPatch) -> TerminalModelOut:
    changes = body.model_dump(exclude={"reason"}, exclude_none=True)
    with call.write() as session:
        model = terminals.update_model(
            session, call.principal, model_id, changes, at=call.now(), reason=body.reason
        )
        return TerminalModelOut.model_validate(model)


@router.delete(
    "/{model_id}",
    response_model=TerminalModelOut,
    summary="Withdraw a model (kept on record: activated terminals refer to it)",
)
def delete_model(call: Writer, model_id: uuid.UUID) -> TerminalModelOut:
    with call.write() as session:
        model = terminals.update_model(
            session, call.principal, model_id, {"status": "withdrawn"}, at=call.now()
        )
        return TerminalModelOut.model_validate(model)
