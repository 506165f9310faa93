"""Authentication: the OAuth2 password grant and "who am I"."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from pydantic import BaseModel

from satiot.api import problems
from satiot.api.deps import Call, Ctx, requires
from satiot.core.auth.login import log_in
from satiot.core.errors import DomainError

router = APIRouter(tags=["auth"])


class InvalidGrant(DomainError):
    slug = "invalid-grant"
    title = "Invalid credentials"
    status = 400


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class MeOut(BaseModel):
    tenant_id: str
    role: str
    scopes: list[str]
    username: str | None
    via: str


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Exchange a username and password for a bearer token (OAuth2 password grant)",
    responses={
        400: {
            "description": "Wrong username or password (error=invalid_grant)",
            "content": {problems.MEDIA_TYPE: {}},
        }
    },
)
def token(
    ctx: Ctx,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[str, Form(pattern="^password$")] = "password",
) -> TokenOut:
    ttl = timedelta(seconds=ctx.settings.access_token_ttl_s)
    secret = log_in(ctx.db, username, password, kind="bearer", at=ctx.clock.now(), ttl=ttl)
    if secret is None:
        raise InvalidGrant("wrong username or password", error="invalid_grant")
    return TokenOut(access_token=secret, expires_in=int(ttl.total_seconds()))


@router.get("/me", response_model=MeOut, summary="The caller's identity, tenant and scopes")
def me(call: Annotated[Call, Depends(requires(None))]) -> MeOut:
    p = call.principal
    return MeOut(
        tenant_id=str(p.tenant_id),
        role=p.role.value,
        scopes=sorted(p.scopes),
        username=p.username,
        via=p.via,
    )
