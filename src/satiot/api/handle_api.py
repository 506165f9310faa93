"""Device handles: Handle-compatible resolution, and their management by operator staff.

``GET /api/handles/{handle}`` answers exactly like a Handle proxy's REST API (same JSON, same
response codes, ``type``/``index`` filters, ``publicOnly``) so that any identifier client can
resolve our devices. It sits outside ``/api/v1`` because that path is the standard, and it is
public like the real proxy: without a credential only publicly readable values (model,
licence, status) are served; a credential with ``identifiers:read`` sees every value. Errors
here are Handle-shaped (``responseCode`` and ``message``), not problem+json, since Handle
clients parse them.

``/api/v1/identifiers`` is the operator's management API (problem+json as everywhere else).
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor

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
from satiot.api.deps import Call, Ctx, authenticate, requires
from satiot.core.errors import AuthenticationFailed, Conflict
from satiot.core.pagination import paginate
from satiot.oss import identifiers
from satiot.oss.models import Handle

log = logging.getLogger(__name__)


class _HandleText(Convertor[str]):
    """The rest of the path, line breaks included. Starlette's ``path`` stops at a line break,
    so a handle holding one (``%0A``) matched no route and got the generic 404 instead of the
    Handle API's own "invalid handle" answer, which identifier clients parse."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("handle", _HandleText())

resolution_router = APIRouter(tags=["identifiers"])
router = APIRouter(prefix="/identifiers", tags=["identifiers"])
Reader = Annotated[Call, Depends(requires("identifiers:read"))]
Writer = Annotated[Call, Depends(requires("identifiers:write"))]
HandleStatus = Literal["active", "suspended", "migrated", "retired"]

for _cls, _text in (
    (identifiers.InvalidHandle, "Not of the form 88.<node>.<enterprise>/<suffix>."),
    (identifiers.HandleNotFound, "No such handle is registered here."),
    (identifiers.HandleExists, "The handle, or the terminal or number it binds, is taken."),
):
    problems.CATALOG.setdefault(_cls.slug, (_cls.title, _text))


class HandleValueOut(BaseModel):
    index: int
    type: str
    data: dict[str, Any]
    ttl: int
    timestamp: str


class HandleResponse(BaseModel):
    """The Handle REST API's answer: ``values`` on success, ``message`` on error."""

    responseCode: int  # noqa: N815 - the Handle API's own name
    handle: str
    values: list[HandleValueOut] | None = None
    message: str | None = None


def _answer(
    http: int, code: int, handle: str, *, message: str | None = None, values: Any = None
) -> JSONResponse:
    body: dict[str, Any] = {"responseCode": code, "handle": handle}
    if message is not None:
        body["message"] = message
    else:
        body["values"] = values
    return JSONResponse(body, status_code=http)


def _may_read_all(request: Request, ctx: Ctx) -> bool | None:
    """True/False for a credential with/without identifiers:read; None without one."""
    if not request.headers.get("authorization"):
        return None
    principal = authenticate(request, ctx)
    return "identifiers:read" in principal.scopes


#: An index a value may have: ASCII digits, nine at most (str.isdigit() also took "³", which
#: int() refuses, a 500; and int() refuses numbers past 4,300 digits). Anything else matches
#: no value, as the Handle proxy answers.
_INDEX = re.compile(r"-?[0-9]{1,9}")


@resolution_router.get(
    "/api/handles/{handle:handle}",
    response_model=HandleResponse,
    response_model_exclude_none=True,
    summary="Resolve a handle (Handle REST API)",
    responses={
        400: {"model": HandleResponse, "description": "102 invalid handle"},
        401: {"model": HandleResponse, "description": "402 authentication needed"},
        403: {"model": HandleResponse, "description": "401 insufficient permissions"},
        404: {"model": HandleResponse, "description": "100 handle not found"},
    },
)
def resolve_handle(
    request: Request,
    ctx: Ctx,
    handle: str,
    types: Annotated[
        list[str] | None, Query(alias="type", description="Only values of this type")
    ] = None,
    indexes: Annotated[
        list[str] | None, Query(alias="index", description="Only the value at this index")
    ] = None,
    public_only: Annotated[
        bool | None, Query(alias="publicOnly", description="Default: true without a credential")
    ] = None,
) -> JSONResponse:
    """Code 1 with ``values``; 100 not found (404); 102 invalid handle (400); 200 when the
    ``type``/``index`` filters match no value (200, as the Handle proxy does)."""
    try:
        try:
            may_read_all = _may_read_all(request, ctx)
        except AuthenticationFailed as exc:
            return _answer(401, 402, handle, message=exc.detail)
        # Like the Handle proxy, a caller who may read everything gets everything unless it
        # asks for publicOnly; anyone else gets the public values unless it asks for more.
        wants_all = public_only is False or (public_only is None and may_read_all is True)
        if wants_all and may_read_all is None:
            return _answer(401, 402, handle, message="Authentication needed for non-public values")
        if wants_all and not may_read_all:
            return _answer(403, 401, handle, message="This credential lacks identifiers:read")
        wanted_indexes = [int(i) for i in indexes or [] if _INDEX.fullmatch(i.strip())]
        with ctx.db.read() as session:
            resolved = identifiers.resolve(
                session,
                handle,
                types=types or [],
                indexes=wanted_indexes,
                public_only=not wants_all,
            )
            values = [identifiers.value_json(v) for v in resolved.values]
        if (types or indexes) and not (types or wanted_indexes):
            values = []  # only indexes that are not numbers: nothing can match
    except identifiers.InvalidHandle:
        return _answer(400, 102, handle, message="Invalid handle")
    except identifiers.HandleNotFound:
        return _answer(404, 100, handle, message="Handle Not Found")
    except Exception:
        log.exception("resolving handle %r failed", handle)
        return _answer(500, 2, handle, message="Server error")
    if not values and (types or indexes):
        return _answer(200, 200, handle, message="Values Not Found")
    return _answer(200, 1, handle, values=values)


class DeviceRecordIn(Input):
    terminal_id: str = Field(min_length=15, max_length=32, description="IMEI or DevEUI")
    model: str = Field(min_length=1, max_length=100)
    licence_number: str = Field(min_length=14, max_length=14, examples=["00-B182-228209"])
    iot_number: str = Field(pattern=r"^[0-9]{13}$")
    credit_code: str = Field(min_length=18, max_length=18, examples=["91110000600037341L"])
    iccid: str | None = Field(default=None, max_length=22)
    imsi: str | None = Field(default=None, max_length=15)


class HandleIn(DeviceRecordIn):
    tenant_id: uuid.UUID
    suffix: str | None = Field(default=None, pattern=r"^\S{1,200}$")


class HandlePatch(Input):
    status: HandleStatus | None = None
    reason: str | None = Field(default=None, max_length=500)
    iot_number: str | None = Field(default=None, pattern=r"^[0-9]{13}$")
    model: str | None = Field(default=None, min_length=1, max_length=100)
    licence_number: str | None = Field(default=None, min_length=14, max_length=14)
    credit_code: str | None = Field(default=None, min_length=18, max_length=18)
    iccid: str | None = Field(default=None, max_length=22)
    imsi: str | None = Field(default=None, max_length=15)


class HandleOut(Output):
    handle: str
    tenant_id: uuid.UUID | None
    terminal_id: str | None
    iot_number: str | None
    status: str
    registered_at: datetime | None
    node_error: str | None
    created_at: datetime
    updated_at: datetime


class HandleDetailOut(HandleOut):
    values: list[HandleValueOut]


def _detail(session: Session, row: Handle) -> HandleDetailOut:
    values = [identifiers.value_json(v) for v in identifiers.values_of(session, row.id)]
    return HandleDetailOut.model_validate(
        HandleOut.model_validate(row).model_dump() | {"values": values}
    )


@router.get("", response_model=Page[HandleOut], summary="List device handles")
def list_handles(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    status: Annotated[HandleStatus | None, Query()] = None,
    tenant_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[HandleOut]:
    stmt = select(Handle)
    if status is not None:
        stmt = stmt.where(Handle.status == status)
    if tenant_id is not None:
        stmt = stmt.where(Handle.tenant_id == tenant_id)
    with call.read() as session:
        page = paginate(session, stmt, Handle.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, HandleOut.model_validate)


@router.post("", status_code=201, response_model=HandleDetailOut, summary="Mint a device handle")
def post_handle(
    call: Writer, request: Request, body: HandleIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    prefix = call.ctx.settings.handle_prefix
    if not prefix:
        raise Conflict("no identifier prefix is configured (SATIOT_HANDLE_PREFIX)")

    def create(session: Session) -> HandleDetailOut:
        record = identifiers.DeviceRecord(**body.model_dump(exclude={"tenant_id", "suffix"}))
        row = identifiers.create_handle(
            session,
            call.principal,
            prefix=prefix,
            record=record,
            tenant_id=body.tenant_id,
            at=call.now(),
            suffix=body.suffix,
        )
        session.flush()
        return _detail(session, row)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("/{handle:handle}", response_model=HandleDetailOut, summary="One handle, all values")
def get_handle(call: Reader, handle: str) -> HandleDetailOut:
    with call.read() as session:
        return _detail(session, identifiers.find_handle(session, handle))


@router.patch(
    "/{handle:handle}",
    response_model=HandleDetailOut,
    summary="Suspend, restore, migrate or retire a handle; change its record",
)
def patch_handle(call: Writer, handle: str, body: HandlePatch) -> HandleDetailOut:
    changes = body.model_dump(exclude={"status", "reason"}, exclude_none=True)
    with call.write() as session:
        row = identifiers.update_handle(
            session,
            call.principal,
            handle,
            at=call.now(),
            status=body.status,
            reason=body.reason,
            **changes,
        )
        session.flush()
        return _detail(session, row)


@router.delete("/{handle:handle}", status_code=204, summary="Delete a mistaken handle")
def delete_handle(
    call: Writer,
    handle: str,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    with call.write() as session:
        identifiers.delete_handle(session, call.principal, handle, at=call.now(), reason=reason)
    return Response(status_code=204)
