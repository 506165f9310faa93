"""Users and tenants: creation, status changes and password login, each change audited."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core import states
from satiot.core.auth.passwords import hash_password, verify_password
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import Role, check_grant
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.core.lengths import fits, plain_text, unsafe_character
from satiot.core.models import Tenant, User

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def user_view(user: User) -> dict[str, Any]:
    """The fields of a user that the audit log records (never the password hash)."""
    return {
        "username": user.username,
        "role": user.role,
        "status": user.status,
        "display_name": user.display_name,
        "email": user.email,
    }


def tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {"slug": tenant.slug, "name": tenant.name, "kind": tenant.kind, "status": tenant.status}


def require_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant:
    """The tenant named by a request, or NotFound naming ``tenant_id``: in a customer's
    session another tenant is invisible, so naming one is "not found" too."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    return tenant


def create_tenant(
    session: Session,
    principal: Principal,
    *,
    slug: str,
    name: str,
    at: datetime,
    kind: str = "customer",
) -> Tenant:
    if kind not in ("operator", "customer"):
        raise InvalidInput("kind must be 'operator' or 'customer'", field="kind")
    if not SLUG_RE.match(slug):
        raise InvalidInput(
            "slug: lowercase letters, digits and hyphens, 1-63 characters", field="slug"
        )
    if session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise Conflict(f"tenant slug {slug!r} is taken", field="slug")
    if (
        kind == "operator"
        and session.scalar(select(Tenant.id).where(Tenant.kind == "operator")) is not None
    ):
        raise Conflict("there is already an operator tenant", field="kind")
    # A tab or line break in a name would garble every list, CSV and report it appears in.
    display = plain_text(name, Tenant.name, "name")
    tenant = Tenant(slug=slug, name=display, kind=kind, status=states.TENANT.initial, created_at=at)
    session.add(tenant)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="tenant.created",
        target=("tenant", tenant.id),
        tenant_id=tenant.id,
        after=tenant_view(tenant),
        payload=tenant_view(tenant),
    )
    return tenant


def set_tenant_status(
    session: Session,
    principal: Principal,
    tenant_id: uuid.UUID,
    status: str,
    *,
    at: datetime,
    reason: str | None,
) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    if tenant.kind == "operator":
        raise Conflict("the operator's own tenant cannot change status")
    states.TENANT.check(tenant.status, status, principal.role)
    before = tenant_view(tenant)
    tenant.status = status
    record_change(
        session,
        principal,
        at=at,
        action="tenant.status-changed",
        target=("tenant", tenant.id),
        tenant_id=tenant.id,
        before=before,
        after=tenant_view(tenant),
        reason=reason,
        payload={"status": status},
    )
    return tenant


def create_user(
    session: Session,
    principal: Principal,
    *,
    tenant_id: uuid.UUID,
    username: str,
    password: str,
    role: Role,
    at: datetime,
    display_name: str = "",
    email: str | None = None,
) -> User:
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "username: 2-64 lowercase letters, digits, '.', '_' or '-'", field="username"
        )
    display_name = display_name.strip()
    unsafe = unsafe_character(display_name)
    if unsafe is not None:
        raise InvalidInput(f"display_name {unsafe}", field="display_name")
    fits(display_name, User.display_name, "display_name")
    tenant = require_tenant(session, tenant_id)
    check_grant(principal.role, tenant.kind, role)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken", field="username")
    try:
        pw_hash = hash_password(password)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="password") from exc
    user = User(
        tenant_id=tenant.id,
        username=username,
        display_name=display_name,
        email=email,
        role=role.value,
        password_hash=pw_hash,
        status=states.USER.initial,
        created_at=at,
    )
    session.add(user)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="user.created",
        target=("user", user.id),
        tenant_id=user.tenant_id,
        after=user_view(user),
        payload={"username": username, "role": user.role},
    )
    return user


def set_user_status(
    session: Session,
    principal: Principal,
    user_id: uuid.UUID,
    status: str,
    *,
    at: datetime,
    reason: str | None,
) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    if user.id == principal.user_id:
        raise Conflict("you cannot change your own status")
    states.USER.check(user.status, status, principal.role)
    before = user_view(user)
    user.status = status
    record_change(
        session,
        principal,
        at=at,
        action="user.status-changed",
        target=("user", user.id),
        tenant_id=user.tenant_id,
        before=before,
        after=user_view(user),
        reason=reason,
        payload={"status": status},
    )
    return user


def authenticate_password(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None. Takes the same time either way."""
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.status != "active":
        return None
    tenant = session.get(Tenant, user.tenant_id)
    if tenant is None or tenant.status != "active":
        return None
    return user
