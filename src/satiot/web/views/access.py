"""The "Users & API keys" page: who can get in, and with which machine credentials.

This module reads: it assembles the page (both tables, their pagination and the two forms)
through the caller's tenant-scoped session, so a customer administrator sees only their own
tenant's rows without a single ``WHERE`` here. The changes live in :mod:`.access_actions`,
which re-renders this page when the domain refuses one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.core import states
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import CUSTOMER_ROLES, OPERATOR_ROLES, ROLES, SCOPES, Role
from satiot.core.errors import DomainError
from satiot.core.models import ApiKey, Tenant, User
from satiot.core.pagination import Page, paginate
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, SignedIn

router = APIRouter()

#: Rows per table page.
PAGE_SIZE = 25
PATH = "/access"


@dataclass(frozen=True)
class Query:
    """What the page was asked to show: a tenant filter and where each table resumes."""

    tenant: uuid.UUID | None = None
    users_after: str | None = None
    keys_after: str | None = None

    def url(self, **changes: str | None) -> str:
        params = {
            "tenant": str(self.tenant) if self.tenant else None,
            "users_after": self.users_after,
            "keys_after": self.keys_after,
        } | changes
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{PATH}?{query}" if query else PATH


@dataclass(frozen=True)
class KeyRow:
    key: ApiKey
    owner: str
    status: str


@dataclass(frozen=True)
class UserRow:
    user: User
    actions: list[str]  # the statuses the viewer may move this user to


@dataclass
class AccessView:
    """Everything the template needs; forms hold the values to show (after an error)."""

    query: Query
    tenants: dict[uuid.UUID, Tenant]
    users: list[UserRow] = field(default_factory=list)
    users_next: str | None = None
    keys: list[KeyRow] = field(default_factory=list)
    keys_next: str | None = None
    role_groups: list[tuple[str, list[Role]]] = field(default_factory=list)
    scopes: list[tuple[str, str]] = field(default_factory=list)
    user_form: dict[str, Any] = field(default_factory=dict)
    key_form: dict[str, Any] = field(default_factory=dict)


def grantable_roles(principal: Principal, tenants: list[Tenant]) -> list[tuple[str, list[Role]]]:
    """Roles the caller may give, grouped by the kind of tenant that can hold them.

    Mirrors the rule in :func:`satiot.core.auth.users.create_user` (which still decides):
    operator roles only in the operator's tenant and only from an operator administrator.
    """
    groups: list[tuple[str, list[Role]]] = []
    kinds = {t.kind for t in tenants}
    if "operator" in kinds and principal.role is Role.OPERATOR_ADMIN:
        staff: list[Role] = [r for r in ROLES if r in OPERATOR_ROLES]
        groups.append(("Operator staff (operator tenant)", staff))
    if "customer" in kinds:
        label = "Customer (customer tenants)" if principal.all_tenants else "Customer"
        groups.append((label, [r for r in ROLES if r in CUSTOMER_ROLES]))
    return groups


def grantable_scopes(principal: Principal) -> list[tuple[str, str]]:
    """Scopes a key made by the caller may carry: the caller's own, never more."""
    held = principal.scopes & ROLES[principal.role].scopes
    return [(scope, text) for scope, text in SCOPES.items() if scope in held]


def user_actions(principal: Principal, user: User) -> list[str]:
    if "users:write" not in principal.scopes or user.id == principal.user_id:
        return []
    return [
        dst
        for (src, dst), roles in states.USER.transitions.items()
        if src == user.status and principal.role.value in roles
    ]


def key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _users(session: Session, view: AccessView, principal: Principal) -> None:
    stmt = select(User)
    if view.query.tenant:
        stmt = stmt.where(User.tenant_id == view.query.tenant)
    users: Page[User] = paginate(
        session, stmt, User.id, cursor=view.query.users_after, limit=PAGE_SIZE
    )
    view.users = [UserRow(u, user_actions(principal, u)) for u in users.items]
    view.users_next = users.next_cursor


def _keys(session: Session, view: AccessView, now: datetime) -> None:
    stmt = select(ApiKey)
    if view.query.tenant:
        stmt = stmt.where(ApiKey.tenant_id == view.query.tenant)
    keys: Page[ApiKey] = paginate(
        session, stmt, ApiKey.id, cursor=view.query.keys_after, limit=PAGE_SIZE
    )
    owner_ids = {k.user_id for k in keys.items if k.user_id is not None}
    owners: dict[uuid.UUID, str] = {}
    if owner_ids:
        rows = session.execute(select(User.id, User.username).where(User.id.in_(owner_ids)))
        owners = {user_id: username for user_id, username in rows}
    view.keys = [
        KeyRow(
            k,
            owners.get(k.user_id, "—") if k.user_id else f"machine ({k.role})",
            key_status(k, now),
        )
        for k in keys.items
    ]
    view.keys_next = keys.next_cursor


def load(session: Session, signed_in: ConsoleSession, query: Query) -> AccessView:
    """Read the page's data through ``session`` (already confined to the caller's tenant)."""
    principal = signed_in.principal
    tenants = list(session.scalars(select(Tenant).order_by(Tenant.kind.desc(), Tenant.name)))
    view = AccessView(query=query, tenants={t.id: t for t in tenants})
    if "users:read" in principal.scopes:
        _users(session, view, principal)
    if "api-keys:read" in principal.scopes:
        _keys(session, view, signed_in.now())
    if "users:write" in principal.scopes:
        view.role_groups = grantable_roles(principal, tenants)
    if "api-keys:write" in principal.scopes:
        view.scopes = grantable_scopes(principal)
    return view


def render(
    request: Request,
    signed_in: ConsoleSession,
    query: Query,
    *,
    user_form: dict[str, Any] | None = None,
    key_form: dict[str, Any] | None = None,
    flash: Flash | None = None,
    status_code: int = 200,
) -> Response:
    """The page, optionally with a form's submitted values and an error after a refusal."""
    signed_in.require_any("users:read", "api-keys:read")
    try:
        with signed_in.call.read() as session:
            view = load(session, signed_in, query)
    except DomainError as exc:  # a cursor this server did not issue: show the first pages
        with signed_in.call.read() as session:
            view = load(session, signed_in, Query(tenant=query.tenant))
        flash, status_code = Flash("error", exc.detail), exc.status
    default_tenant = str(query.tenant or signed_in.principal.tenant_id)
    view.user_form = {
        "tenant_id": default_tenant,
        "role": Role.CUSTOMER_USER.value,
        **(user_form or {}),
    }
    view.key_form = {"scopes": [], **(key_form or {})}
    return page(
        request,
        signed_in,
        "access.html",
        {"view": view, "title": "Users & API keys"},
        status_code=status_code,
        flash=flash,
    )


def parse_tenant(value: str | None, principal: Principal) -> uuid.UUID | None:
    """A tenant filter is an operator's tool; for a customer it is always their own tenant."""
    if not principal.all_tenants or not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@router.get(PATH)
def access_page(
    request: Request,
    signed_in: SignedIn,
    tenant: str | None = None,
    users_after: str | None = None,
    keys_after: str | None = None,
) -> Response:
    query = Query(
        parse_tenant(tenant, signed_in.principal), users_after or None, keys_after or None
    )
    return render(request, signed_in, query)
