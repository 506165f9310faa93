"""Builders for the things most tests need: tenants, users and their credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from satiot.api.context import AppContext
from satiot.core.auth.credentials import issue_api_key
from satiot.core.auth.principal import Principal, system_principal
from satiot.core.auth.roles import Role
from satiot.core.auth.users import create_tenant, create_user
from satiot.core.bootstrap import seed_operator
from satiot.core.models import Tenant, User

if TYPE_CHECKING:
    from tests.bss.onboarding_world import Onboarded

PASSWORD = "correct-horse-battery"


@dataclass
class World:
    ctx: AppContext
    operator: Tenant
    admin: User
    system: Principal
    _n: list[int] = field(default_factory=lambda: [0])

    @classmethod
    def seed(cls, ctx: AppContext) -> World:
        with ctx.db.write() as s:
            seeded = seed_operator(s, at=ctx.clock.now(), admin_password=PASSWORD)
        return cls(ctx, seeded.operator, seeded.admin, system_principal(seeded.operator.id))

    def _next(self) -> int:
        self._n[0] += 1
        return self._n[0]

    def tenant(self, slug: str | None = None, name: str | None = None) -> Tenant:
        slug = slug or f"customer-{self._next()}"
        with self.ctx.db.write() as s:
            return create_tenant(
                s, self.system, slug=slug, name=name or slug.title(), at=self.ctx.clock.now()
            )

    def user(self, tenant: Tenant | uuid.UUID, role: Role, username: str | None = None) -> User:
        tenant_id = tenant if isinstance(tenant, uuid.UUID) else tenant.id
        with self.ctx.db.write() as s:
            return create_user(
                s,
                self.system,
                tenant_id=tenant_id,
                username=username or f"user{self._next()}",
                password=PASSWORD,
                role=role,
                at=self.ctx.clock.now(),
            )

    def key(
        self, user: User, scopes: list[str] | None = None, expires_at: datetime | None = None
    ) -> str:
        """A plain-text API key owned by ``user``, with all its role's scopes by default."""
        with self.ctx.db.write() as s:
            owner = s.get(User, user.id)
            assert owner is not None
            principal = Principal(
                tenant_id=owner.tenant_id,
                role=Role(owner.role),
                scopes=frozenset(_role_scopes(owner.role)),
                user_id=owner.id,
                username=owner.username,
                via="system",
            )
            return issue_api_key(
                s,
                principal,
                name="test",
                scopes=scopes,
                at=self.ctx.clock.now(),
                expires_at=expires_at,
            ).secret

    def headers(self, user: User, scopes: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(user, scopes)}"}

    def admin_headers(self) -> dict[str, str]:
        return self.headers(self.admin)

    def customer(self, tenant: Tenant | uuid.UUID | None = None, **options: Any) -> Onboarded:
        """A validated customer that passed its risk assessment, with a billing account and a
        signed contract in force (a new tenant unless ``tenant`` is given); options and the
        returned ids are in tests/bss/onboarding_world.py."""
        from tests.bss.onboarding_world import onboard_customer

        return onboard_customer(self, tenant, **options)


def _role_scopes(role: str) -> frozenset[str]:
    from satiot.core.auth.roles import ROLES

    return ROLES[Role(role)].scopes
