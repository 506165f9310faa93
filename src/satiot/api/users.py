"""Users of the console and the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
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
from satiot.core.auth.roles import Role
from satiot.core.auth.users import create_user, set_user_status
from satiot.core.errors import NotFound
from satiot.core.models import User
from satiot.core.pagination import paginate

router = APIRouter(prefix="/users", tags=["users"])
Reader = Annotated[Call, Depends(requires("users:read"))]
Writer = Annotated[Call, Depends(requires("users:write"))]


class UserIn(Input):
    username: str = Field(min_length=2, max_length=64, examples=["alice"])
    password: str = Field(min_length=10, max_length=256)
    role: Role
    tenant_id: uuid.UUID | None = Field(
        default=None, description="Defaults to the caller's tenant."
    )
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")


class UserStatusIn(Input):
    status: Literal["active", "disabled"]
    reason: str | None = Field(default=None, max_length=500)


class UserOut(Output):
    id: uuid.UUID
    tenant_id: uuid.UUID
    username: str
    display_name: str
    email: str | None
    role: str
    status: str
    created_at: datetime
    last_login_at: datetime | None


@router.get("", response_model=Page[UserOut], summary="List users, oldest first")
def list_users(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Only this tenant")] = None,
    status: Annotated[Literal["active", "disabled"] | None, Query()] = None,
) -> Page[UserOut]:
    stmt = select(User)
    if tenant_id is not None:
        stmt = stmt.where(User.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(User.status == status)
    with call.read() as session:
        page = paginate(session, stmt, User.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, UserOut.model_validate)


@router.post("", status_code=201, response_model=UserOut, summary="Create a user")
def post_user(
    call: Writer, request: Request, body: UserIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> UserOut:
        user = create_user(
            session,
            call.principal,
            tenant_id=body.tenant_id or call.principal.tenant_id,
            username=body.username,
            password=body.password,
            role=body.role,
            at=call.now(),
            display_name=body.display_name,
            email=body.email,
        )
        return UserOut.model_validate(user)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("/{user_id}", response_model=UserOut, summary="One user")
def get_user(call: Reader, user_id: uuid.UUID) -> UserOut:
    with call.read() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return UserOut.model_validate(user)


@router.patch("/{user_id}", response_model=UserOut, summary="Disable or re-enable a user")
def patch_user(call: Writer, user_id: uuid.UUID, body: UserStatusIn) -> UserOut:
    with call.write() as session:
        user = set_user_status(
            session, call.principal, user_id, body.status, at=call.now(), reason=body.reason
        )
        return UserOut.model_validate(user)
