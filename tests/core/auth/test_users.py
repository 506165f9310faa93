"""Users and tenants: validation, role rules, password storage, status changes, login."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from satiot.core.auth import passwords
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import CUSTOMER_ROLES, OPERATOR_ROLES, ROLES, Role
from satiot.core.auth.users import (
    authenticate_password,
    create_tenant,
    create_user,
    set_tenant_status,
    set_user_status,
)
from satiot.core.errors import Conflict, IllegalTransition, InvalidInput, PermissionDenied
from satiot.core.models import AuditEntry, Event, Tenant, User
from tests.factories import PASSWORD


def _as(user: User) -> Principal:
    return Principal(
        tenant_id=user.tenant_id,
        role=Role(user.role),
        scopes=ROLES[Role(user.role)].scopes,
        user_id=user.id,
        username=user.username,
        via="session",
    )


def _create(
    db,
    principal,
    tenant_id,
    username="someone",
    role=Role.CUSTOMER_USER,
    password=PASSWORD,
    at=None,
):
    from datetime import UTC, datetime

    with db.write() as s:
        return create_user(
            s,
            principal,
            tenant_id=tenant_id,
            username=username,
            password=password,
            role=role,
            at=at or datetime(2026, 1, 1, tzinfo=UTC),
        )


def _count(db, model) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_password_hash_is_argon2id_and_verifies(db, world):
    tenant = world.tenant()
    user = _create(db, world.system, tenant.id)
    with db.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM users WHERE id = :i"),
            {"i": user.id if not db.is_sqlite else user.id.hex},
        ).scalar()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert passwords.verify_password(stored, PASSWORD)
    assert not passwords.verify_password(stored, PASSWORD + "x")
    assert not passwords.verify_password(None, PASSWORD)
    assert not passwords.verify_password("not-a-hash", PASSWORD)


def test_production_argon2_parameters(real_argon2):
    # At least OWASP's minimum for Argon2id (19 MiB, 2 iterations).
    assert passwords._HASHER.type.name == "ID"
    assert passwords._HASHER.memory_cost >= 19 * 1024
    assert passwords._HASHER.time_cost >= 2
    h = passwords.hash_password("long enough password")
    assert h.startswith("$argon2id$")
    assert passwords.verify_password(h, "long enough password")


def test_hashes_are_salted():
    assert passwords.hash_password(PASSWORD) != passwords.hash_password(PASSWORD)


@pytest.mark.parametrize("pw", ["", "short", "123456789"])
def test_short_password_is_refused_and_nothing_is_written(db, world, pw):
    tenant = world.tenant()
    users, entries = _count(db, User), _count(db, AuditEntry)
    with pytest.raises(InvalidInput, match="at least 10") as info:
        _create(db, world.system, tenant.id, password=pw)
    assert info.value.extensions["field"] == "password"
    assert (_count(db, User), _count(db, AuditEntry)) == (users, entries)


@pytest.mark.parametrize(
    "name", ["a", "Alice", "-dash", ".dot", "has space", "x" * 65, "ünïcode", "semi;colon", ""]
)
def test_bad_usernames_are_refused(db, world, name):
    tenant = world.tenant()
    with pytest.raises(InvalidInput, match="username"):
        _create(db, world.system, tenant.id, username=name)


@pytest.mark.parametrize("name", ["ab", "alice", "a.b_c-1", "9lives", "x" * 64])
def test_good_usernames_are_accepted(db, world, name):
    tenant = world.tenant()
    assert _create(db, world.system, tenant.id, username=name).username == name


def test_duplicate_username_is_a_conflict(db, world):
    t1, t2 = world.tenant(), world.tenant()
    _create(db, world.system, t1.id, username="dup")
    with pytest.raises(Conflict, match="taken"):
        _create(db, world.system, t2.id, username="dup")


@pytest.mark.parametrize("role", sorted(OPERATOR_ROLES))
def test_customer_tenant_cannot_hold_operator_roles(db, world, role):
    tenant = world.tenant()
    with pytest.raises(InvalidInput, match="cannot be held in a customer tenant"):
        _create(db, world.system, tenant.id, role=role)


@pytest.mark.parametrize("role", sorted(CUSTOMER_ROLES | {Role.GROUND_STATION}))
def test_operator_tenant_cannot_hold_customer_roles(db, world, role):
    with pytest.raises(InvalidInput, match="operator tenant"):
        _create(db, world.system, world.operator.id, role=role)


@pytest.mark.parametrize("granter", [Role.BUSINESS, Role.NOC, Role.COMPLIANCE])
def test_only_operator_admin_grants_operator_roles(db, world, granter):
    staff = world.user(world.operator, granter, f"staff-{granter.value}")
    with pytest.raises(PermissionDenied, match="operator administrator"):
        _create(db, _as(staff), world.operator.id, username="newbie", role=Role.NOC)
    # ... while an operator administrator may.
    admin = world.user(world.operator, Role.OPERATOR_ADMIN, "second-admin")
    assert _create(db, _as(admin), world.operator.id, username="newbie", role=Role.NOC)


def test_business_may_create_customer_users(db, world):
    staff = world.user(world.operator, Role.BUSINESS, "biz")
    tenant = world.tenant()
    user = _create(db, _as(staff), tenant.id, username="cust", role=Role.CUSTOMER_ADMIN)
    assert (user.role, user.status, user.tenant_id) == ("customer-admin", "active", tenant.id)


def test_creating_a_user_is_audited_without_the_password(db, world):
    tenant = world.tenant()
    user = _create(db, world.system, tenant.id, username="audited")
    with db.read() as s:
        entry = s.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "user.created", AuditEntry.target_id == str(user.id)
            )
        )
        event = s.scalar(
            select(Event).where(Event.type == "user.created", Event.subject_id == str(user.id))
        )
    assert entry.target_id == str(user.id) and entry.tenant_id == tenant.id
    assert entry.actor == "system:cli"
    assert entry.after["username"] == "audited"
    assert "password" not in repr(entry.after) and "argon2" not in repr(entry.after)
    assert event.payload == {"username": "audited", "role": "customer-user"}


def test_login_succeeds_only_for_active_user_in_active_tenant(db, world, clock):
    tenant = world.tenant()
    user = _create(db, world.system, tenant.id, username="login")
    with db.read() as s:
        assert authenticate_password(s, "login", PASSWORD).id == user.id
        assert authenticate_password(s, "login", "wrong password") is None
        assert authenticate_password(s, "nobody", PASSWORD) is None
    with db.write() as s:
        set_user_status(s, world.system, user.id, "disabled", at=clock.now(), reason=None)
    with db.read() as s:
        assert authenticate_password(s, "login", PASSWORD) is None
    with db.write() as s:
        set_user_status(s, world.system, user.id, "active", at=clock.now(), reason=None)
        set_tenant_status(s, world.system, tenant.id, "suspended", at=clock.now(), reason=None)
    with db.read() as s:
        assert authenticate_password(s, "login", PASSWORD) is None


def test_status_changes_follow_the_lifecycle_and_are_audited(db, world, clock):
    tenant = world.tenant()
    cadmin = world.user(tenant, Role.CUSTOMER_ADMIN, "cadmin")
    user = _create(db, world.system, tenant.id, username="worker")
    with db.write() as s:
        set_user_status(s, _as(cadmin), user.id, "disabled", at=clock.now(), reason="holiday")
    with pytest.raises(IllegalTransition, match="allowed: active"), db.write() as s:
        set_user_status(s, _as(cadmin), user.id, "disabled", at=clock.now(), reason=None)
    with pytest.raises(Conflict, match="your own"), db.write() as s:
        set_user_status(s, _as(cadmin), cadmin.id, "disabled", at=clock.now(), reason=None)
    with db.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "user.status-changed"))
    assert entry.actor == "user:cadmin"
    assert (entry.before["status"], entry.after["status"], entry.reason) == (
        "active",
        "disabled",
        "holiday",
    )


def test_tenant_status_rules(db, world, clock):
    tenant = world.tenant()
    cadmin = world.user(tenant, Role.CUSTOMER_ADMIN, "cadmin")
    with pytest.raises(PermissionDenied), db.write() as s:
        set_tenant_status(s, _as(cadmin), tenant.id, "suspended", at=clock.now(), reason=None)
    with pytest.raises(Conflict, match="operator"), db.write() as s:
        set_tenant_status(
            s, world.system, world.operator.id, "suspended", at=clock.now(), reason=None
        )
    with db.write() as s:
        set_tenant_status(s, world.system, tenant.id, "closed", at=clock.now(), reason="gone")
    with pytest.raises(IllegalTransition, match="allowed: none"), db.write() as s:
        set_tenant_status(s, world.system, tenant.id, "active", at=clock.now(), reason=None)


@pytest.mark.parametrize("slug", ["", "UPPER", "-lead", "trail-", "sp ace", "x" * 64, "a_b"])
def test_bad_tenant_slugs_are_refused(db, world, clock, slug):
    before = _count(db, Tenant)
    with pytest.raises(InvalidInput, match="slug"), db.write() as s:
        create_tenant(s, world.system, slug=slug, name="x", at=clock.now())
    assert _count(db, Tenant) == before


@pytest.mark.parametrize("name", ["Acme\tLogistics", "Acme\nLogistics", "Acme\x1b[31m", "A\x85B"])
def test_tenant_names_with_control_characters_are_refused(db, world, clock, name):
    """A tab or line break in a name would garble every list, CSV and report it appears in."""
    before = _count(db, Tenant)
    with pytest.raises(InvalidInput, match="name contains a control character"), db.write() as s:
        create_tenant(s, world.system, slug="ctl", name=name, at=clock.now())
    assert _count(db, Tenant) == before
    with db.write() as s:
        made = create_tenant(
            s, world.system, slug="ok", name="  新疆 Acme · Logistics  ", at=clock.now()
        )
    assert made.name == "新疆 Acme · Logistics"


@pytest.mark.parametrize("name", ["Acme \u202egnitsigol", "Acme\u2067 Logistics", "\u202aAcme"])
def test_tenant_names_with_directional_overrides_are_refused(db, world, clock, name):
    """An override or isolate reorders how the rest of a name reads wherever it is shown."""
    before = _count(db, Tenant)
    with pytest.raises(InvalidInput, match="bidirectional control character"), db.write() as s:
        create_tenant(s, world.system, slug="bidi", name=name, at=clock.now())
    assert _count(db, Tenant) == before
    # A right-to-left name with the implicit marks it may need is a name like any other.
    arabic = "\u0634\u0631\u0643\u0629 \u200fAcme\u200e"
    with db.write() as s:
        made = create_tenant(s, world.system, slug="rtl", name=arabic, at=clock.now())
    assert made.name == arabic


@pytest.mark.parametrize("display", ["Ann\u202e", "Ann\nLee", "Ann\x00", "x" * 201])
def test_bad_display_names_are_refused_and_no_user_is_made(db, world, display):
    tenant = world.tenant()
    users, entries = _count(db, User), _count(db, AuditEntry)
    with pytest.raises(InvalidInput) as info, db.write() as s:
        create_user(
            s,
            world.system,
            tenant_id=tenant.id,
            username="ann",
            password=PASSWORD,
            role=Role.CUSTOMER_USER,
            at=datetime.now(UTC),
            display_name=display,
        )
    assert info.value.extensions["field"] == "display_name"
    assert (_count(db, User), _count(db, AuditEntry)) == (users, entries)


def test_tenant_rules(db, world, clock):
    world.tenant("taken")
    with pytest.raises(Conflict, match="taken"), db.write() as s:
        create_tenant(s, world.system, slug="taken", name="x", at=clock.now())
    with pytest.raises(Conflict, match="already an operator"), db.write() as s:
        create_tenant(s, world.system, slug="op2", name="x", at=clock.now(), kind="operator")
    with pytest.raises(InvalidInput, match="kind"), db.write() as s:
        create_tenant(s, world.system, slug="k", name="x", at=clock.now(), kind="reseller")
    with pytest.raises(InvalidInput, match="name"), db.write() as s:
        create_tenant(s, world.system, slug="blank", name="   ", at=clock.now())
    with db.read() as s:
        assert s.scalar(select(Tenant).where(Tenant.slug.in_(["op2", "k", "blank"]))) is None
