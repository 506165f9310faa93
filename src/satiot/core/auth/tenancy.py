"""The one place where tenancy is enforced.

A session that serves a caller is *scoped*: :func:`scope_session` records the caller's tenant
(or that the caller sees all tenants) in ``session.info``. Two SQLAlchemy hooks then apply the
scope to everything that session does, so no endpoint can forget a ``WHERE tenant_id = …``:

- every ORM SELECT, UPDATE and DELETE gets ``tenant_id = :tenant`` on every tenant-scoped
  entity it touches (``with_loader_criteria``, which also reaches joins, relationship loads and
  ``Session.get``);
- every flush refuses to write a tenant-scoped row into another tenant.

A session that was never scoped (the CLI, background workers, migrations) is unrestricted;
a session scoped to ``ALL_TENANTS`` is restricted only by its scopes.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from sqlalchemy import ForeignKey, Uuid, event
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)

from satiot.core.errors import TenantViolation

_SCOPE_KEY: Final = "satiot.tenant_scope"


class _AllTenants:
    def __repr__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS: Final = _AllTenants()


class TenantScoped:
    """Mixin for every table whose rows belong to one tenant."""

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(Uuid, ForeignKey("tenants.id"), index=True, nullable=False)


class TenantTagged:
    """Marker for logs whose rows may name a tenant (or none): a scoped session sees only the
    rows of its own tenant. The model declares its own nullable ``tenant_id`` column."""

    tenant_id: Mapped[uuid.UUID | None]


def scope_session(session: Session, tenant: uuid.UUID | _AllTenants) -> None:
    """Restrict ``session`` to one tenant's rows, or mark it as seeing all tenants."""
    session.info[_SCOPE_KEY] = tenant


def session_tenant(session: Session) -> uuid.UUID | _AllTenants | None:
    """The scope of a session: a tenant id, ``ALL_TENANTS``, or ``None`` if unscoped."""
    value = session.info.get(_SCOPE_KEY)
    if value is None or isinstance(value, _AllTenants | uuid.UUID):
        return value
    raise TypeError(f"corrupt tenant scope {value!r}")


def _tenant_model() -> Any:
    from satiot.core.models import Tenant  # the tenants table itself is scoped by its id

    return Tenant


@event.listens_for(Session, "do_orm_execute")
def _scope_statements(state: ORMExecuteState) -> None:
    tenant = session_tenant(state.session)
    if not isinstance(tenant, uuid.UUID):
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    tenant_cls = _tenant_model()
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant,
            include_aliases=True,
            track_closure_variables=True,
        ),
        with_loader_criteria(
            TenantTagged,
            lambda cls: cls.tenant_id == tenant,
            include_aliases=True,
            track_closure_variables=True,
        ),
        with_loader_criteria(tenant_cls, tenant_cls.id == tenant, include_aliases=True),
    )


@event.listens_for(Session, "before_flush")
def _guard_writes(session: Session, _ctx: Any, _instances: Any) -> None:
    tenant = session_tenant(session)
    if not isinstance(tenant, uuid.UUID):
        return
    tenant_cls = _tenant_model()
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, TenantScoped):
            if obj.tenant_id is None and obj in session.new:
                obj.tenant_id = tenant
            if obj.tenant_id != tenant:
                raise TenantViolation("the row belongs to another tenant")
        elif isinstance(obj, tenant_cls) and (obj in session.new or obj.id != tenant):
            raise TenantViolation("a customer cannot create or change other tenants")
