"""Signing in and out of the console.

The login form has no session yet, so it has no CSRF token to carry; it relies on the session
cookie being SameSite=Lax and on refusing a POST whose Origin (or Referer) names another site,
which stops a foreign page from logging a victim into the attacker's account.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from satiot.api.context import AppContext
from satiot.api.deps import get_ctx
from satiot.core.auth.login import log_in
from satiot.core.models import AccessToken
from satiot.web.rendering import bare_page
from satiot.web.session import (
    COOKIE_NAME,
    Posted,
    clear_session_cookie,
    resolve,
    safe_next,
    set_session_cookie,
)

router = APIRouter()
Ctx = Annotated[AppContext, Depends(get_ctx)]


def _same_origin(request: Request) -> bool:
    """True unless the browser says the form was posted from another origin."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    if source in ("", "null"):
        return False
    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.url.scheme}://{request.url.netloc}"


@router.get("/login")
def login_form(request: Request, ctx: Ctx, next: str = "/") -> Response:
    target = safe_next(next)
    if resolve(ctx, request.cookies.get(COOKIE_NAME)) is not None:
        return RedirectResponse(target, status_code=303)
    return bare_page(request, "login.html", {"next": target, "username": ""})


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    target = safe_next(next)
    if not _same_origin(request):
        return bare_page(
            request,
            "login.html",
            {
                "next": target,
                "username": username,
                "error": "This sign-in form was submitted from another site and was refused.",
            },
            status_code=403,
        )
    secret = log_in(
        ctx.db,
        username.strip(),
        password,
        kind="session",
        at=ctx.clock.now(),
        ttl=timedelta(seconds=ctx.settings.session_ttl_s),
    )
    if secret is None:
        return bare_page(
            request,
            "login.html",
            {
                "next": target,
                "username": username,
                "error": "Wrong username or password, or the account is disabled.",
            },
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, ctx, secret)
    return response


@router.post("/logout")
def logout(signed_in: Posted, ctx: Ctx) -> Response:
    """End the session on the server (the cookie alone would outlive a stolen copy)."""
    with ctx.db.write() as session:
        token = session.get(AccessToken, signed_in.token_id)
        if token is not None and token.revoked_at is None:
            token.revoked_at = ctx.clock.now()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, ctx)
    return response
