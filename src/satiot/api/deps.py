"""Request dependencies: who is calling, what they may do, and their tenant-scoped sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from satiot.api.context import AppContext
from satiot.core.auth.credentials import (
    API_KEY_PREFIX,
    TOKEN_PREFIX,
    authenticate_api_key,
    authenticate_token,
)
from satiot.core.auth.principal import Principal
from satiot.core.auth.tenancy import scope_session
from satiot.core.errors import AuthenticationFailed


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


@dataclass(frozen=True)
class Call:
    """One authorised call: the caller plus sessions already confined to its tenant."""

    ctx: AppContext
    principal: Principal

    def now(self) -> datetime:
        return self.ctx.clock.now()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.ctx.db.read() as session:
            scope_session(session, self.principal.tenant_scope)
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.ctx.db.write() as session:
            scope_session(session, self.principal.tenant_scope)
            yield session


def authenticate(request: Request, ctx: Ctx) -> Principal:
    """Resolve ``Authorization: Bearer …`` (an API key or an access token) to a principal."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationFailed("send 'Authorization: Bearer <api key or token>'")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise AuthenticationFailed("the Authorization header must use the Bearer scheme")
    now = ctx.clock.now()
    with ctx.db.read() as session:
        if credential.startswith(API_KEY_PREFIX + "_"):
            return authenticate_api_key(session, credential, now)
        if credential.startswith(TOKEN_PREFIX + "_"):
            return authenticate_token(session, credential, "bearer", now)
    raise AuthenticationFailed("unrecognised credential")


Authenticated = Annotated[Principal, Depends(authenticate)]


def requires(scope: str | None) -> Callable[[AppContext, Principal], Call]:
    """A dependency that admits callers holding ``scope`` (any authenticated caller if None)."""

    def dependency(ctx: Ctx, principal: Authenticated) -> Call:
        if scope is not None:
            principal.require(scope)
        return Call(ctx, principal)

    dependency.__name__ = f"requires_{(scope or 'auth').replace(':', '_').replace('-', '_')}"
    return dependency
