"""Changes made from the "Users & API keys" page.

Every change goes through the core domain function inside the caller's tenant-scoped write
session, so it is validated, audited and confined exactly as through the REST API. When the
domain refuses, the transaction rolls back and the page comes back with the error and the
submitted values (never the password); on success the browser is redirected (POST-redirect-
GET) with a flash message, except after creating a key, whose secret is shown exactly once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.core.auth.credentials import IssuedKey, issue_api_key, revoke_api_key
from satiot.core.auth.roles import Role
from satiot.core.auth.users import create_user, set_user_status
from satiot.core.errors import DomainError, InvalidInput
from satiot.web.flash import Flash, redirect_with
from satiot.web.once import FormKey, Sent, redirect, submit_once
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, Posted
from satiot.web.views.access import PATH, Query, parse_tenant, render

router = APIRouter()
Text = Annotated[str, Form()]


def _done(signed_in: ConsoleSession, message: str, back_to: Query) -> Response:
    secure = signed_in.ctx.settings.cookie_secure
    return redirect_with(back_to.url(), Flash("success", message), secure=secure)


def _refused(
    request: Request, signed_in: ConsoleSession, exc: DomainError, query: Query, **forms: Any
) -> Response:
    return render(
        request, signed_in, query, flash=Flash("error", exc.detail), status_code=exc.status, **forms
    )


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(f"unknown role {value!r}", field="role") from None


def _expiry(value: str) -> datetime | None:
    """A key's expiry date, read as the start of that day in UTC."""
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("expiry must be a date (YYYY-MM-DD)", field="expires") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@router.post(f"{PATH}/users")
def create_user_form(
    request: Request,
    signed_in: Posted,
    username: Text = "",
    display_name: Text = "",
    role: Text = "",
    tenant_id: Text = "",
    password: Text = "",
    back_tenant: Text = "",
) -> Response:
    signed_in.require_any("users:write")
    principal = signed_in.principal
    query = Query(parse_tenant(back_tenant, principal))
    kept = {
        "username": username,
        "display_name": display_name,
        "role": role,
        "tenant_id": tenant_id,
    }
    try:
        target = parse_tenant(tenant_id, principal) or principal.tenant_id
        if principal.all_tenants and tenant_id and str(target) != tenant_id:
            raise InvalidInput("choose a tenant from the list", field="tenant_id")
        with signed_in.call.write() as session:
            user = create_user(
                session,
                principal,
                tenant_id=target,
                username=username.strip(),
                password=password,
                role=_role(role),
                at=signed_in.now(),
                display_name=display_name.strip(),
            )
            name = user.username
    except DomainError as exc:
        return _refused(request, signed_in, exc, query, user_form=kept)
    return _done(signed_in, f"User {name} created.", query)


@router.post(f"{PATH}/users/{{user_id}}/status")
def change_user_status(
    request: Request,
    signed_in: Posted,
    user_id: uuid.UUID,
    status: Text = "",
    back_tenant: Text = "",
) -> Response:
    signed_in.require_any("users:write")
    query = Query(parse_tenant(back_tenant, signed_in.principal))
    try:
        with signed_in.call.write() as session:
            user = set_user_status(
                session,
                signed_in.principal,
                user_id,
                status,
                at=signed_in.now(),
                reason="changed in the console",
            )
            name = user.username
    except DomainError as exc:
        return _refused(request, signed_in, exc, query)
    verb = "enabled" if status == "active" else status
    return _done(signed_in, f"User {name} {verb}.", query)


@router.post(f"{PATH}/keys")
def create_key_form(
    request: Request,
    signed_in: Posted,
    name: Text = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    expires: Text = "",
    back_tenant: Text = "",
    form_key: FormKey = "",
) -> Response:
    signed_in.require_any("api-keys:write")
    query = Query(parse_tenant(back_tenant, signed_in.principal))
    chosen = sorted(set(scopes or []))
    kept = {"name": name, "scopes": chosen, "expires": expires}
    made: list[IssuedKey] = []

    def work(session: Session) -> Sent:
        made.append(
            issue_api_key(
                session,
                signed_in.principal,
                name=name.strip(),
                scopes=chosen,
                at=signed_in.now(),
                expires_at=_expiry(expires),
            )
        )
        return Sent(query.url(), f"API key {name.strip()} created.")

    try:
        if not name.strip():
            raise InvalidInput("give the key a name", field="name")
        if not chosen:
            raise InvalidInput("choose at least one scope", field="scopes")
        sent, replayed = submit_once(signed_in, form_key, request.url.path, work)
    except DomainError as exc:
        return _refused(request, signed_in, exc, query, key_form=kept)
    if replayed:  # its secret was shown once, to the first submission; not again
        return redirect(signed_in, sent)
    issued = made[0]
    key = issued.key
    return page(
        request,
        signed_in,
        "key_created.html",
        {
            "title": "API key created",
            "key": key,
            "secret": issued.secret,
            "back": query.url(),
        },
        status_code=201,
    )


@router.post(f"{PATH}/keys/{{key_id}}/revoke")
def revoke_key(
    request: Request,
    signed_in: Posted,
    key_id: uuid.UUID,
    back_tenant: Text = "",
) -> Response:
    signed_in.require_any("api-keys:write")
    query = Query(parse_tenant(back_tenant, signed_in.principal))
    try:
        with signed_in.call.write() as session:
            key = revoke_api_key(
                session,
                signed_in.principal,
                key_id,
                at=signed_in.now(),
                reason="revoked in the console",
            )
            label = f"{key.name} (sk_{key.prefix}_…)"
    except DomainError as exc:
        return _refused(request, signed_in, exc, query)
    return _done(signed_in, f"API key {label} revoked.", query)
