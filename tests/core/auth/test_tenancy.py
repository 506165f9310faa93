"""Tenancy enforced at the session: a scoped session cannot see or touch another tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from satiot.core import audit, events
from satiot.core.auth.credentials import issue_token
from satiot.core.auth.roles import Role
from satiot.core.auth.tenancy import ALL_TENANTS, scope_session, session_tenant
from satiot.core.errors import TenantViolation
from satiot.core.models import AccessToken, ApiKey, AuditEntry, Event, LogHead, Tenant, User
from tests.factories import PASSWORD


@dataclass
class Two:
    a: Tenant
    b: Tenant
    a_user: User
    b_user: User
    b_key: ApiKey
    b_token: AccessToken


@pytest.fixture
def two(world, clock) -> Two:
    a, b = world.tenant("alpha"), world.tenant("beta")
    a_user = world.user(a, Role.CUSTOMER_ADMIN, "alice")
    b_user = world.user(b, Role.CUSTOMER_ADMIN, "bob")
    world.key(a_user)
    world.key(b_user)
    with world.ctx.db.write() as s:
        issue_token(
            s, s.get(User, a_user.id), kind="bearer", at=clock.now(), ttl=timedelta(hours=1)
        )
        b_token, _ = issue_token(
            s, s.get(User, b_user.id), kind="bearer", at=clock.now(), ttl=timedelta(hours=1)
        )
    with world.ctx.db.read() as s:
        b_key = s.scalar(select(ApiKey).where(ApiKey.tenant_id == b.id))
    return Two(a, b, a_user, b_user, b_key, b_token)


def _scoped(db, tenant) -> Session:
    s = db.writer()
    scope_session(s, tenant)
    return s


def test_scope_is_recorded_on_the_session(db):
    with db.reader() as s:
        assert session_tenant(s) is None
        t = uuid.uuid4()
        scope_session(s, t)
        assert session_tenant(s) == t
        scope_session(s, ALL_TENANTS)
        assert session_tenant(s) is ALL_TENANTS


@pytest.mark.parametrize("model", [User, ApiKey, AccessToken])
def test_select_sees_only_own_tenant(db, two, model):
    with _scoped(db, two.a.id) as s:
        rows = s.scalars(select(model)).all()
        assert rows and {r.tenant_id for r in rows} == {two.a.id}
        assert s.scalars(select(model).where(model.tenant_id == two.b.id)).all() == []
        assert s.scalar(select(func.count()).select_from(model)) == len(rows)
        assert s.scalar(select(func.count(model.id))) == len(rows)


def test_one_statement_shape_is_confined_to_each_sessions_own_tenant(db, two):
    """The tables a statement shape names are remembered between executions; the tenant is
    not: the same statements, run for one tenant and then the other, each see their own."""
    users = User.__table__
    shapes = [
        select(users.c.username),  # plain Core: only the FROM list confines it
        select(User.username).where(User.status == "active"),
        select(func.count()).select_from(users).where(users.c.username != ""),
    ]
    for _ in range(2):  # the second round reads the shapes' remembered tables
        for tenant, name in ((two.a.id, "alice"), (two.b.id, "bob")):
            with _scoped(db, tenant) as s:
                assert [s.execute(q).all() for q in shapes] == [[(name,)], [(name,)], [(1,)]]


def test_filtered_aggregates_are_scoped_too(db, two):
    """``count(…).filter(…)`` alone is plain Core to the ORM: the tables confine it."""
    with _scoped(db, two.a.id) as s:
        assert s.scalar(select(func.count(User.id).filter(User.status == "active"))) == 1
        assert s.scalar(select(func.count(ApiKey.id).filter(ApiKey.revoked_at.is_(None)))) == 1
        assert s.scalar(select(func.count(Tenant.id).filter(Tenant.slug != ""))) == 1
    with db.reader() as s:  # unscoped: both tenants' users (and the operator's)
        assert s.scalar(select(func.count(User.id).filter(User.status == "active"))) >= 2


def test_column_selects_are_scoped_too(db, two):
    with _scoped(db, two.a.id) as s:
        assert s.scalars(select(User.username)).all() == ["alice"]
        assert s.scalars(select(ApiKey.prefix).where(ApiKey.user_id == two.b_user.id)).all() == []


def test_get_by_primary_key_of_other_tenant_is_none(db, two):
    with _scoped(db, two.a.id) as s:
        assert s.get(User, two.b_user.id) is None
        assert s.get(ApiKey, two.b_key.id) is None
        assert s.get(AccessToken, two.b_token.id) is None
        assert s.get(Tenant, two.b.id) is None
        assert s.get(User, two.a_user.id) is not None


def test_tenants_table_shows_only_own_tenant(db, two, world):
    with _scoped(db, two.a.id) as s:
        assert [t.slug for t in s.scalars(select(Tenant))] == ["alpha"]
        assert s.scalar(select(Tenant).where(Tenant.slug == "operator")) is None


@pytest.mark.parametrize(
    "model,attr,value",
    [(User, "display_name", "hacked"), (ApiKey, "name", "hacked"), (AccessToken, "kind", "hacked")],
)
def test_orm_update_and_delete_cannot_reach_other_tenant(db, two, model, attr, value):
    with _scoped(db, two.a.id) as s:
        s.execute(update(model).values({attr: value}).execution_options(synchronize_session=False))
        if model is not User:  # users are referenced by keys and tokens
            s.execute(delete(model).execution_options(synchronize_session=False))
        s.commit()
    with db.read() as s:
        b_rows = s.scalars(select(model).where(model.tenant_id == two.b.id)).all()
        assert b_rows
        assert all(getattr(r, attr) != value for r in b_rows)
        a_rows = s.scalars(select(model).where(model.tenant_id == two.a.id)).all()
        if model is User:
            assert [r.display_name for r in a_rows] == ["hacked"]
        else:
            assert a_rows == []


def test_orm_update_of_tenants_reaches_own_tenant_only(db, two):
    with _scoped(db, two.a.id) as s:
        s.execute(
            update(Tenant).values(name="Renamed").execution_options(synchronize_session=False)
        )
        s.commit()
    with db.read() as s:
        names = {slug: name for slug, name in s.execute(select(Tenant.slug, Tenant.name))}
    assert names["alpha"] == "Renamed"
    assert names["beta"] == "Beta"
    assert names["operator"] != "Renamed"


def test_cannot_insert_a_row_for_another_tenant(db, two, clock):
    with _scoped(db, two.a.id) as s:
        s.add(
            User(
                tenant_id=two.b.id,
                username="sneaky",
                role="customer-user",
                password_hash="x",
                status="active",
                created_at=clock.now(),
            )
        )
        with pytest.raises(TenantViolation):
            s.flush()
        s.rollback()
    with db.read() as s:
        assert s.scalar(select(User).where(User.username == "sneaky")) is None


def test_new_row_without_tenant_lands_in_the_sessions_tenant(db, two, clock):
    with _scoped(db, two.a.id) as s:
        s.add(
            User(
                username="implicit",
                role="customer-user",
                password_hash="x",
                status="active",
                created_at=clock.now(),
            )
        )
        s.commit()
    with db.read() as s:
        assert s.scalar(select(User.tenant_id).where(User.username == "implicit")) == two.a.id


def test_cannot_move_a_row_to_another_tenant(db, two):
    with _scoped(db, two.a.id) as s:
        user = s.get(User, two.a_user.id)
        user.tenant_id = two.b.id
        with pytest.raises(TenantViolation):
            s.flush()
        s.rollback()
    with db.read() as s:
        assert s.get(User, two.a_user.id).tenant_id == two.a.id


def test_bulk_update_cannot_move_rows_to_another_tenant(db, two):
    with _scoped(db, two.a.id) as s:
        with pytest.raises(TenantViolation):
            s.execute(
                update(User).values(tenant_id=two.b.id).execution_options(synchronize_session=False)
            )
        s.rollback()
    with db.read() as s:
        assert s.get(User, two.a_user.id).tenant_id == two.a.id


def test_bulk_insert_cannot_write_into_another_tenant(db, two, clock):
    row = {
        "id": uuid.uuid4(),
        "tenant_id": two.b.id,
        "username": "bulk",
        "display_name": "",
        "role": "customer-user",
        "password_hash": "x",
        "status": "active",
        "created_at": clock.now(),
    }
    with _scoped(db, two.a.id) as s:
        with pytest.raises(TenantViolation):
            s.execute(insert(User), [row])
        s.rollback()
        with pytest.raises(TenantViolation):
            s.execute(insert(User).values(**row))
        s.rollback()
    with db.read() as s:
        assert s.scalar(select(User).where(User.username == "bulk")) is None


def test_cannot_create_or_change_other_tenants(db, two, clock):
    with _scoped(db, two.a.id) as s:
        s.add(
            Tenant(slug="new", name="New", kind="customer", status="active", created_at=clock.now())
        )
        with pytest.raises(TenantViolation):
            s.flush()
        s.rollback()
    with _scoped(db, two.a.id) as s:
        own = s.get(Tenant, two.a.id)
        own.name = "Alpha Renamed"  # its own tenant row is fine
        s.commit()
    with db.read() as s:
        assert s.get(Tenant, two.a.id).name == "Alpha Renamed"
        assert s.scalar(select(Tenant).where(Tenant.slug == "new")) is None


def test_cannot_delete_other_tenants_rows_even_if_loaded_elsewhere(db, two):
    with db.reader() as other:
        foreign = other.get(ApiKey, two.b_key.id)
        other.expunge(foreign)
    with _scoped(db, two.a.id) as s:
        merged = s.merge(foreign, load=False)
        s.delete(merged)
        with pytest.raises(TenantViolation):
            s.flush()
        s.rollback()
    with db.read() as s:
        assert s.get(ApiKey, two.b_key.id) is not None


def test_join_without_relationships_is_scoped_on_both_sides(db, two):
    with _scoped(db, two.a.id) as s:
        rows = s.execute(
            select(User.username, ApiKey.prefix).join(ApiKey, ApiKey.user_id == User.id)
        ).all()
        assert [r.username for r in rows] == ["alice"]
        # Joining from a row of this tenant to another tenant's rows finds nothing.
        other = aliased(User)
        cross = s.execute(
            select(User.username, other.username).join(other, other.id != User.id)
        ).all()
        assert cross == []
        tenants = s.execute(
            select(Tenant.slug, User.username).join(User, User.tenant_id == Tenant.id)
        ).all()
        assert [tuple(r) for r in tenants] == [("alpha", "alice")]


def test_subquery_is_scoped(db, two):
    with _scoped(db, two.a.id) as s:
        # A subquery over users is confined too: bob's id is not among them.
        users = select(User.id).where(User.username.in_(["alice", "bob"]))
        assert s.scalars(select(User.username).where(User.id.in_(users))).all() == ["alice"]
        # ... even when the outer query names no tenant-scoped table at all.
        bob_exists = select(User.id).where(User.username == "bob").exists()
        assert s.scalars(select(LogHead.name).where(bob_exists)).all() == []
        alice_exists = select(User.id).where(User.username == "alice").exists()
        assert s.scalars(select(LogHead.name).where(alice_exists)).all() != []


def test_audit_entries_and_events_are_seen_per_tenant(db, two, clock):
    with db.write() as s:
        audit.record(
            s, at=clock.now(), actor="x", action="system.thing", target_type="x", target_id="1"
        )
        events.emit(s, "system.thing", at=clock.now(), payload={})
    with _scoped(db, two.a.id) as s:
        assert {e.tenant_id for e in s.scalars(select(AuditEntry))} == {two.a.id}
        assert {e.tenant_id for e in s.scalars(select(Event))} == {two.a.id}
        a_events = s.scalar(select(func.count()).select_from(Event))
    with db.read() as s:
        all_events = s.scalar(select(func.count()).select_from(Event))
        b_audit = s.scalars(select(AuditEntry.seq).where(AuditEntry.tenant_id == two.b.id)).all()
    assert 0 < a_events < all_events
    with _scoped(db, two.a.id) as s:
        assert s.get(AuditEntry, b_audit[0]) is None


@pytest.mark.parametrize("scope", ["all", "none"])
def test_all_tenants_or_unscoped_session_sees_everything(db, two, scope):
    with db.writer() as s:
        if scope == "all":
            scope_session(s, ALL_TENANTS)
        assert {u.tenant_id for u in s.scalars(select(User))} >= {two.a.id, two.b.id}
        assert s.get(User, two.b_user.id) is not None
        assert len(s.scalars(select(Tenant)).all()) == 3
        tenants_in_audit = set(s.scalars(select(AuditEntry.tenant_id)))
        assert {two.a.id, two.b.id} <= tenants_in_audit
        # ... and may write into any tenant.
        b_user = s.get(User, two.b_user.id)
        b_user.display_name = "by operator"
        s.commit()
    with db.read() as s:
        assert s.get(User, two.b_user.id).display_name == "by operator"


def test_scoped_session_still_authenticates_its_own_users(db, two):
    from satiot.core.auth.users import authenticate_password

    with _scoped(db, two.a.id) as s:
        assert authenticate_password(s, "alice", PASSWORD) is not None
        assert authenticate_password(s, "bob", PASSWORD) is None


def test_update_by_primary_key_cannot_reach_other_tenant(db, two):
    with _scoped(db, two.a.id) as s:
        with pytest.raises(TenantViolation):
            s.execute(update(User), [{"id": two.b_user.id, "display_name": "pwned"}])
        s.rollback()
    with db.read() as s:
        assert s.get(User, two.b_user.id).display_name != "pwned"


def test_bulk_insert_into_own_tenant_is_allowed(db, two, clock):
    with _scoped(db, two.a.id) as s:
        s.execute(
            insert(User).values(
                id=uuid.uuid4(),
                tenant_id=two.a.id,
                username="bulk-own",
                display_name="",
                role="customer-user",
                password_hash="x",
                status="active",
                created_at=clock.now(),
            )
        )
        s.commit()
    with db.read() as s:
        assert s.scalar(select(User.tenant_id).where(User.username == "bulk-own")) == two.a.id
