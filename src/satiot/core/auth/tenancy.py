"""The one place where tenancy is enforced.

A session that serves a caller is *scoped*: :func:`scope_session` records the caller's tenant
(or that the caller sees all tenants) in ``session.info``. Two SQLAlchemy hooks then apply the
scope to everything that session does, so no endpoint can forget a ``WHERE tenant_id = …``:

- every ORM SELECT, UPDATE and DELETE gets ``tenant_id = :tenant`` on every tenant-scoped
  entity it touches (``with_loader_criteria``, which also reaches joins, relationship loads and
  ``Session.get``);
- every flush refuses to write a tenant-scoped row into another tenant.

``with_loader_criteria`` reaches only what the ORM recognises as its entities. A statement
whose columns are all Core expressions built over mapped columns (``func.count(X.id).filter(…)``
alone is one: the filter drops the ORM's annotations) runs as plain Core and would escape it,
so every tenant-scoped *table* named directly in a SELECT's FROM also gets the tenant condition
as a WHERE of its own. It repeats the ORM's condition where that one applies, which costs the
database nothing.

A session that was never scoped (the CLI, background workers, migrations) is unrestricted;
a session scoped to ``ALL_TENANTS`` is restricted only by its scopes.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping
from typing import Any, Final, cast

from sqlalchemy import ClauseElement, ForeignKey, Index, Select, Table, Uuid, event
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


class TenantListed(TenantScoped):
    """A tenant's table that its owner lists, and exports, in id order by the thousand (a
    customer's devices, subscriptions, uplinks and usage counters; usage records declare their
    own ``tenant_id``, without a key, and the same index). Its tenant index holds the id after
    the tenant (:func:`tenant_listing_index`), so that a scoped page or export chunk
    (``tenant_id = ? AND id > ? ORDER BY id LIMIT n``) is read in order from the index; with
    the tenant alone indexed, the database sorted all of the tenant's rows for every page."""

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805 - see TenantScoped
        return mapped_column(Uuid, ForeignKey("tenants.id"), nullable=False)


def tenant_listing_index(table: str, *between: str) -> Index:
    """The (tenant, id) index of a :class:`TenantListed` table; with ``between``, the columns
    a listing always filters on by equality go between the two (a month's usage counters)."""
    columns = ("tenant_id", *between, "id")
    return Index(f"ix_{table}_{'_'.join(columns)}", *columns)


class TenantTagged:
    """Marker for logs whose rows may name a tenant (or none): a scoped session sees only the
    rows of its own tenant. The model declares its own nullable ``tenant_id`` column."""

    # A class attribute (the models' own column overrides it): ``with_loader_criteria`` calls
    # the scoping lambda with this mixin itself, which fails if ``tenant_id`` is only annotated.
    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID | None]:  # noqa: N805 - see TenantScoped
        return mapped_column(Uuid, nullable=True)


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


def _tenant_columns(tenant_cls: Any) -> Mapping[str, str]:
    """Table name -> the column that names its tenant, for every tenant-scoped table.

    Worked out again when a table is added (a model mapped later, e.g. by an extension):
    counting the tables is cheap, unlike listing the registry's mappers, which every
    statement of a scoped session would otherwise pay for."""
    return _tenant_columns_of(tenant_cls, len(tenant_cls.metadata.tables))


@functools.cache
def _tenant_columns_of(tenant_cls: Any, _tables: int) -> Mapping[str, str]:
    found = {tenant_cls.__table__.name: "id"}
    for mapper in tenant_cls.registry.mappers:
        if issubclass(mapper.class_, TenantScoped | TenantTagged):
            for table in mapper.tables:
                found[table.name] = "tenant_id"
    return found


def _confine_tables(statement: Select[Any], tenant: uuid.UUID, tenant_cls: Any) -> Select[Any]:
    """Add the tenant condition for each tenant-scoped table the SELECT names directly."""
    columns = _tenant_columns(tenant_cls)
    for name in _scoped_froms(statement, columns):
        statement = statement.where(_condition(tenant_cls, name, columns[name], tenant))
    return statement


@functools.lru_cache(maxsize=4096)
def _condition(tenant_cls: Any, table: str, column: str, tenant: uuid.UUID) -> Any:
    """``table.column = tenant``, made once (an expression is immutable, and making one
    costs more than the look-up)."""
    return tenant_cls.metadata.tables[table].c[column] == tenant


#: Statement shape (SQLAlchemy's cache key) -> the tenant-scoped tables in its FROM list.
_FROMS: dict[Any, tuple[str, ...]] = {}
_FROMS_LIMIT = 5000


def _scoped_froms(statement: Select[Any], columns: Mapping[str, str]) -> tuple[str, ...]:
    """The tenant-scoped tables among the statement's final FROMs.

    Working them out (``get_final_froms``) runs SQLAlchemy's whole ORM compilation for an ORM
    statement: 2 ms, half the time of activating a device, which issues twenty queries.
    Statements with the same cache key compile to the same SQL, hence the same FROM list, so
    the answer is kept per key (not the tenant, a bound value: the condition is built anew).
    """
    cache_key = statement._generate_cache_key()
    key = cache_key.key if cache_key is not None else None
    found = _FROMS.get(key) if key is not None else None
    if found is None:
        found = tuple(
            source.name
            for source in statement.get_final_froms()
            if isinstance(source, Table) and source.name in columns
        )
        if key is not None:
            if len(_FROMS) >= _FROMS_LIMIT:
                _FROMS.clear()
            _FROMS[key] = found
    return found


@event.listens_for(Session, "do_orm_execute")
def _scope_statements(state: ORMExecuteState) -> None:
    tenant = session_tenant(state.session)
    if not isinstance(tenant, uuid.UUID):
        return
    tenant_cls = _tenant_model()
    if state.is_insert or state.is_update:
        _guard_bulk_writes(state, tenant, tenant_cls)
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if isinstance(state.statement, Select):
        state.statement = _confine_tables(state.statement, tenant, tenant_cls)
    state.statement = state.statement.options(*_criteria(tenant, tenant_cls))


@functools.lru_cache(maxsize=1024)
def _criteria(tenant: uuid.UUID, tenant_cls: Any) -> tuple[Any, ...]:
    """The ORM options confining a statement's entities to ``tenant``.

    Made once per tenant and reused (they are immutable): building them analyses the lambdas,
    a third of a millisecond on every statement a scoped session runs.
    """
    return (
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


def _guard_bulk_writes(state: ORMExecuteState, tenant: uuid.UUID, tenant_cls: Any) -> None:
    """ORM INSERT/UPDATE statements bypass the flush: refuse those that would write a row into
    another tenant (or, for UPDATE by primary key, that no WHERE criteria can confine)."""
    mapper = state.bind_mapper
    cls = mapper.class_ if mapper is not None else None
    if cls is None or not (issubclass(cls, TenantScoped) or cls is tenant_cls):
        return
    if cls is tenant_cls and state.is_insert:
        raise TenantViolation("a customer cannot create or change other tenants")
    params = state.parameters
    rows: list[Mapping[str, Any]] = (
        list(params) if isinstance(params, list) else [cast(Mapping[str, Any], params or {})]
    )
    if state.is_update and isinstance(params, list):
        raise TenantViolation("UPDATE by primary key is not allowed in a tenant-scoped session")
    written = [row["tenant_id"] for row in rows if "tenant_id" in row]
    if not isinstance(params, list):  # values given in the statement itself
        written += [
            value
            for key, value in cast(ClauseElement, state.statement).compile().params.items()
            if key == "tenant_id" or re.fullmatch(r"tenant_id_m\d+", key)
        ]
    if cls is not tenant_cls and any(value != tenant for value in written):
        raise TenantViolation("the row belongs to another tenant")


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
