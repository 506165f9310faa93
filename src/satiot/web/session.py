"""Console sessions: the login cookie, who it belongs to, and the CSRF check on every POST.

A console login is an :class:`~satiot.core.models.AccessToken` of kind ``session``; the browser
holds only its secret, in an HttpOnly, SameSite=Lax cookie. The token row also carries the
session's CSRF token, which every POST form must echo back: SameSite keeps most cross-site
posts out, the token keeps out the rest (and old browsers).
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request, Response

from satiot.api.context import AppContext
from satiot.api.deps import Call, get_ctx
from satiot.core.auth.credentials import authenticate_token, find_token
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES
from satiot.core.errors import AuthenticationFailed
from satiot.core.models import Tenant, User
from satiot.web.navigation import Audience, audience_of

COOKIE_NAME = "satiot_session"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No valid session: the console answers with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class ConsoleForbidden(Exception):
    """Signed in, but not allowed (or a POST without its CSRF token): a 403 page."""

    def __init__(self, message: str, signed_in: ConsoleSession | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.signed_in = signed_in


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in person as the console needs them: identity, tenant and CSRF token."""

    ctx: AppContext
    principal: Principal
    csrf_token: str
    token_id: uuid.UUID
    display_name: str
    tenant_name: str
    tenant_kind: str

    @property
    def call(self) -> Call:
        """The tenant-scoped unit of work every read and change of this person goes through."""
        return Call(self.ctx, self.principal)

    @property
    def audience(self) -> Audience:
        return audience_of(self.principal.role)

    @property
    def role_label(self) -> str:
        return ROLES[self.principal.role].label

    def now(self) -> datetime:
        return self.ctx.clock.now()

    def require_any(self, *scopes: str) -> None:
        """Refuse (403 page) unless the person holds at least one of ``scopes``."""
        if not set(scopes) & self.principal.scopes:
            raise ConsoleForbidden(
                f"Your role ({self.role_label}) does not include {' or '.join(scopes)}.", self
            )


def resolve(ctx: AppContext, presented: str | None) -> ConsoleSession | None:
    """The live session for a cookie value, or None when it is missing, expired or revoked."""
    if not presented:
        return None
    now = ctx.clock.now()
    with ctx.db.read() as session:
        try:
            token = find_token(session, presented, "session", now)
            principal = authenticate_token(session, presented, "session", now)
        except AuthenticationFailed:
            return None
        user = session.get(User, principal.user_id)
        tenant = session.get(Tenant, principal.tenant_id)
        if user is None or tenant is None or token.csrf_token is None:
            return None
        return ConsoleSession(
            ctx=ctx,
            principal=principal,
            csrf_token=token.csrf_token,
            token_id=token.id,
            display_name=user.display_name or user.username,
            tenant_name=tenant.name,
            tenant_kind=tenant.kind,
        )


def _requested_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def current_session(
    request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> ConsoleSession:
    """Dependency: the signed-in person, or a redirect to the login page."""
    found = resolve(ctx, request.cookies.get(COOKIE_NAME))
    if found is None:
        next_path = _requested_path(request) if request.method == "GET" else "/"
        raise LoginRequired(next_path)
    return found


SignedIn = Annotated[ConsoleSession, Depends(current_session)]


CSRF_MESSAGE = (
    "The form was missing its security token, or the token did not match your session, so "
    "nothing was changed. Reload the page and try again."
)


def checked_post(signed_in: SignedIn, csrf_token: Annotated[str, Form()] = "") -> ConsoleSession:
    """Dependency for every console POST: a signed-in person whose form carries the token."""
    # compare_digest refuses a str with non-ASCII characters (TypeError, a 500): compare the
    # UTF-8 bytes, so any token a form can carry is simply a mismatch.
    presented = csrf_token.encode("utf-8", "surrogatepass")
    if not csrf_token or not hmac.compare_digest(presented, signed_in.csrf_token.encode()):
        raise ConsoleForbidden(CSRF_MESSAGE, signed_in)
    return signed_in


Posted = Annotated[ConsoleSession, Depends(checked_post)]


def set_session_cookie(response: Response, ctx: AppContext, secret: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        secret,
        max_age=ctx.settings.session_ttl_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
    )


def clear_session_cookie(response: Response, ctx: AppContext) -> None:
    response.delete_cookie(
        COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=ctx.settings.cookie_secure
    )


def safe_next(candidate: str | None) -> str:
    """Where to go after login: a local path only, so the login page is no open redirect."""
    if (
        not candidate
        or not candidate.startswith("/")
        or candidate.startswith("//")
        or "\\" in candidate
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate)
    ):
        return "/"
    return candidate


def login_url(next_path: str) -> str:
    target = safe_next(next_path)
    return "/login" if target == "/" else f"/login?next={quote(target, safe='/')}"
