"""API keys: machine credentials with scopes and an expiry. The secret is shown once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field
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
from satiot.core.auth.credentials import issue_api_key, revoke_api_key
from satiot.core.errors import NotFound
from satiot.core.models import ApiKey
from satiot.core.pagination import paginate

router = APIRouter(prefix="/api-keys", tags=["api-keys"])
Reader = Annotated[Call, Depends(requires("api-keys:read"))]
Writer = Annotated[Call, Depends(requires("api-keys:write"))]


class ApiKeyIn(Input):
    name: str = Field(min_length=1, max_length=100, examples=["fleet-dashboard"])
    scopes: list[str] | None = Field(
        default=None, description="Defaults to every scope the owner holds."
    )
    expires_at: AwareDatetime | None = Field(default=None, description="ISO-8601 with a zone")
    user_id: uuid.UUID | None = Field(default=None, description="Owner; defaults to the caller")


class ApiKeyOut(Output):
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    name: str
    prefix: str
    role: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str | None = Field(
        description="The key itself: shown in this response only, never again."
    )


@router.get("", response_model=Page[ApiKeyOut], summary="List API keys, oldest first")
def list_keys(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    include_revoked: Annotated[bool, Query()] = False,
) -> Page[ApiKeyOut]:
    stmt = select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    with call.read() as session:
        page = paginate(session, stmt, ApiKey.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, ApiKeyOut.model_validate)


def _redact(body: dict[str, Any]) -> dict[str, Any]:
    return body | {"secret": None}


@router.post("", status_code=201, response_model=ApiKeyCreated, summary="Create an API key")
def post_key(
    call: Writer, request: Request, body: ApiKeyIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> ApiKeyCreated:
        issued = issue_api_key(
            session,
            call.principal,
            name=body.name,
            scopes=body.scopes,
            at=call.now(),
            expires_at=body.expires_at,
            user_id=body.user_id,
        )
        out = ApiKeyOut.model_validate(issued.key).model_dump()
        return ApiKeyCreated(**out, secret=issued.secret)

    return create_idempotently(call, request, idempotency_key, body, create, redact=_redact)


@router.get("/{key_id}", response_model=ApiKeyOut, summary="One API key (never its secret)")
def get_key(call: Reader, key_id: uuid.UUID) -> ApiKeyOut:
    with call.read() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"API key {key_id} not found")
        return ApiKeyOut.model_validate(key)


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
def delete_key(call: Writer, key_id: uuid.UUID) -> Response:
    with call.write() as session:
        revoke_api_key(session, call.principal, key_id, at=call.now(), reason=None)
    return Response(status_code=204)
