"""First-run seeding: the operator's own tenant and its `admin` user."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import system_principal
from satiot.core.auth.roles import Role
from satiot.core.auth.users import create_tenant, create_user
from satiot.core.models import Tenant, User

OPERATOR_SLUG = "operator"
ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class Seeded:
    operator: Tenant
    admin: User
    generated_password: str | None  # set only when this run created the admin with a new one


def operator_tenant(session: Session) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.kind == "operator"))


def seed_operator(
    session: Session,
    *,
    at: datetime,
    admin_password: str | None,
    operator_name: str = "Demo Satellite IoT Operator",
) -> Seeded:
    """Create the operator tenant and `admin` if missing; idempotent, never resets a password."""
    tenant = operator_tenant(session)
    if tenant is None:
        # No tenant exists yet to act from; the nil UUID stands for "before the operator".
        bootstrap = system_principal(tenant_id=uuid.UUID(int=0), name="bootstrap")
        tenant = create_tenant(
            session, bootstrap, slug=OPERATOR_SLUG, name=operator_name, kind="operator", at=at
        )
    actor = system_principal(tenant.id, name="bootstrap")
    admin = session.scalar(select(User).where(User.username == ADMIN_USERNAME))
    generated = None
    if admin is None:
        password = admin_password
        if not password:
            password = generated = secrets.token_urlsafe(15)
        admin = create_user(
            session,
            actor,
            tenant_id=tenant.id,
            username=ADMIN_USERNAME,
            password=password,
            role=Role.OPERATOR_ADMIN,
            at=at,
            display_name="Operator administrator",
        )
    return Seeded(tenant, admin, generated)
