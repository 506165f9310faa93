"""Who is calling: the identity every authorised operation carries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from satiot.core.auth.roles import ROLES, Role
from satiot.core.auth.tenancy import ALL_TENANTS, _AllTenants
from satiot.core.errors import PermissionDenied


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user (through a login or token) or an API key."""

    tenant_id: uuid.UUID
    role: Role
    scopes: frozenset[str]
    user_id: uuid.UUID | None
    username: str | None
    via: str  # "session", "bearer", "api-key" or "system"
    credential_id: uuid.UUID | None = None

    @property
    def all_tenants(self) -> bool:
        return ROLES[self.role].all_tenants

    @property
    def tenant_scope(self) -> uuid.UUID | _AllTenants:
        return ALL_TENANTS if self.all_tenants else self.tenant_id

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.via == "system":
            return self.username or "system"
        who = f"user:{self.username}" if self.username else f"role:{self.role}"
        if self.via == "api-key":
            return f"api-key:{self.credential_id} ({who})"
        return who

    @property
    def identity(self) -> str:
        """A stable key for per-caller records such as idempotency keys."""
        return f"{self.via}:{self.credential_id or self.user_id}"

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(
                f"this credential lacks the scope {scope!r}", required_scope=scope
            )


def system_principal(tenant_id: uuid.UUID, name: str = "cli") -> Principal:
    """The principal for operator actions taken from a shell (``satiot …``)."""
    spec = ROLES[Role.OPERATOR_ADMIN]
    return Principal(
        tenant_id=tenant_id,
        role=Role.OPERATOR_ADMIN,
        scopes=spec.scopes,
        user_id=None,
        username=f"system:{name}",
        via="system",
    )
