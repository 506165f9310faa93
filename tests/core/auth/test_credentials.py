"""API keys and access tokens: shown once, stored hashed, honoured only while valid."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from satiot.core.auth.credentials import (
    authenticate_api_key,
    authenticate_token,
    issue_api_key,
    issue_token,
    revoke_api_key,
)
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.auth.users import set_tenant_status, set_user_status
from satiot.core.errors import AuthenticationFailed, InvalidInput, NotFound, PermissionDenied
from satiot.core.models import AccessToken, ApiKey, AuditEntry, User


def _principal_of(user: User, scopes=None) -> Principal:
    return Principal(
        tenant_id=user.tenant_id,
        role=Role(user.role),
        scopes=frozenset(ROLES[Role(user.role)].scopes if scopes is None else scopes),
        user_id=user.id,
        username=user.username,
        via="session",
    )


def _auth(db, secret, now):
    with db.read() as s:
        return authenticate_api_key(s, secret, now)


def _row_text(db, table: str) -> str:
    with db.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT * FROM {table}")).all()
    return repr(rows)


@pytest.fixture
def acme(world):
    tenant = world.tenant("acme")
    admin = world.user(tenant, Role.CUSTOMER_ADMIN, "acme-admin")
    return tenant, admin


def test_key_secret_is_never_stored(db, world, clock, acme):
    _, admin = acme
    secret = world.key(admin)
    prefix = secret.split("_")[1]
    with db.read() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    assert key.secret_hash == hashlib.sha256(secret.encode()).digest()
    random_part = secret.split("_", 2)[2]
    for table in ("api_keys", "audit_log", "events"):
        dump = _row_text(db, table)
        assert secret not in dump and random_part not in dump, table
    # ... and it still authenticates.
    p = _auth(db, secret, clock.now())
    assert (p.user_id, p.role, p.via, p.credential_id) == (
        admin.id,
        Role.CUSTOMER_ADMIN,
        "api-key",
        key.id,
    )
    assert p.scopes == ROLES[Role.CUSTOMER_ADMIN].scopes


def test_issuing_a_key_is_audited_without_the_secret(db, world, acme):
    _, admin = acme
    secret = world.key(admin, scopes=["users:read"])
    with db.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "api-key.created"))
    assert entry.after["scopes"] == ["users:read"]
    assert entry.after["prefix"] == secret.split("_")[1]
    assert secret not in repr(entry.after)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "sk",
        "sk_",
        "nope_abc_def",
        "sk_000000000000_wrong",
        "Bearer sk_x_y",
    ],
)
def test_malformed_or_unknown_keys_fail(db, world, clock, acme, presented):
    world.key(acme[1])
    with pytest.raises(AuthenticationFailed):
        _auth(db, presented, clock.now())


def test_right_prefix_wrong_secret_fails(db, world, clock, acme):
    secret = world.key(acme[1])
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(AuthenticationFailed, match="unknown"):
        _auth(db, tampered, clock.now())


def test_expired_key_fails(db, world, clock, acme):
    secret = world.key(acme[1], expires_at=clock.now() + timedelta(hours=1))
    assert _auth(db, secret, clock.now() + timedelta(minutes=59))
    with pytest.raises(AuthenticationFailed, match="expired"):
        _auth(db, secret, clock.now() + timedelta(hours=1))


def test_expiry_must_be_in_the_future(db, world, clock, acme):
    with pytest.raises(InvalidInput, match="future"):
        world.key(acme[1], expires_at=clock.now())


def test_revoked_key_fails_and_revocation_is_audited_once(db, world, clock, acme):
    _, admin = acme
    secret = world.key(admin)
    with db.read() as s:
        key = s.scalar(select(ApiKey))
    for _ in range(2):
        with db.write() as s:
            revoke_api_key(s, world.system, key.id, at=clock.now(), reason="leaked")
    with pytest.raises(AuthenticationFailed, match="revoked"):
        _auth(db, secret, clock.now())
    with db.read() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "api-key.revoked")).all()
    assert len(entries) == 1 and entries[0].reason == "leaked"


def test_revoking_unknown_key_is_not_found(db, world, clock):
    from satiot.core.ids import new_id

    with pytest.raises(NotFound), db.write() as s:
        revoke_api_key(s, world.system, new_id(), at=clock.now(), reason=None)


def test_disabled_user_and_suspended_tenant_fail(db, world, clock, acme):
    tenant, admin = acme
    secret = world.key(admin)
    with db.write() as s:
        set_user_status(s, world.system, admin.id, "disabled", at=clock.now(), reason="left")
    with pytest.raises(AuthenticationFailed, match="disabled"):
        _auth(db, secret, clock.now())
    with db.write() as s:
        set_user_status(s, world.system, admin.id, "active", at=clock.now(), reason="back")
    assert _auth(db, secret, clock.now())
    with db.write() as s:
        set_tenant_status(s, world.system, tenant.id, "suspended", at=clock.now(), reason="debt")
    with pytest.raises(AuthenticationFailed, match="tenant"):
        _auth(db, secret, clock.now())


def test_machine_key_fails_once_its_tenant_is_suspended(db, world, clock, acme):
    tenant, _ = acme
    with db.write() as s:
        issued = issue_api_key(
            s,
            world.system,
            name="gs",
            scopes=None,
            at=clock.now(),
            machine_role=Role.CUSTOMER_USER,
            tenant_id=tenant.id,
        )
    p = _auth(db, issued.secret, clock.now())
    assert (p.user_id, p.role, p.tenant_id) == (None, Role.CUSTOMER_USER, tenant.id)
    with db.write() as s:
        set_tenant_status(s, world.system, tenant.id, "suspended", at=clock.now(), reason=None)
    with pytest.raises(AuthenticationFailed):
        _auth(db, issued.secret, clock.now())


def test_key_scopes_never_exceed_owner_role(db, world, clock, acme):
    _, admin = acme
    with pytest.raises(PermissionDenied, match="audit:read"), db.write() as s:
        issue_api_key(
            s, _principal_of(admin), name="k", scopes=["users:read", "audit:read"], at=clock.now()
        )
    # Even an operator administrator cannot give a customer's user more than its role holds.
    with pytest.raises(PermissionDenied), db.write() as s:
        issue_api_key(
            s, world.system, name="k", scopes=["tenants:write"], at=clock.now(), user_id=admin.id
        )


def test_key_scopes_never_exceed_issuer_scopes(db, world, clock, acme):
    _, admin = acme
    narrow = _principal_of(admin, scopes={"users:read", "api-keys:write"})
    with pytest.raises(PermissionDenied, match="users:write"), db.write() as s:
        issue_api_key(s, narrow, name="k", scopes=["users:write"], at=clock.now())
    # Asking for nothing in particular yields what both the owner and the issuer hold.
    with db.write() as s:
        issued = issue_api_key(s, narrow, name="k", scopes=None, at=clock.now())
    assert issued.key.scopes == ["api-keys:write", "users:read"]
    assert _auth(db, issued.secret, clock.now()).scopes == {"api-keys:write", "users:read"}


def test_machine_key_scopes_limited_by_machine_role(db, world, clock, acme):
    with pytest.raises(PermissionDenied), db.write() as s:
        issue_api_key(
            s,
            world.system,
            name="gs",
            scopes=["tenants:read"],
            at=clock.now(),
            machine_role=Role.GROUND_STATION,
            tenant_id=world.operator.id,
        )
    with pytest.raises(InvalidInput, match="tenant"), db.write() as s:
        issue_api_key(
            s,
            world.system,
            name="gs",
            scopes=None,
            at=clock.now(),
            machine_role=Role.GROUND_STATION,
        )


@pytest.mark.parametrize("role", [Role.OPERATOR_ADMIN, Role.NOC, Role.GROUND_STATION])
def test_a_customers_machine_key_takes_only_a_customer_role(db, world, clock, acme, role):
    """A customer tenant's key with an operator role would carry scopes over every tenant."""
    tenant, _ = acme
    with (
        pytest.raises(
            InvalidInput,
            match=f"role '{role.value}' cannot be held in a customer tenant by a machine key",
        ),
        db.write() as s,
    ):
        issue_api_key(
            s,
            world.system,
            name="m",
            scopes=None,
            at=clock.now(),
            machine_role=role,
            tenant_id=tenant.id,
        )
    with db.write() as s:
        issued = issue_api_key(
            s,
            world.system,
            name="m",
            scopes=None,
            at=clock.now(),
            machine_role=Role.CUSTOMER_ADMIN,
            tenant_id=tenant.id,
        )
    assert set(issued.key.scopes) == set(ROLES[Role.CUSTOMER_ADMIN].scopes)


def test_only_an_operator_administrator_issues_an_operator_machine_key(db, world, clock):
    noc = _principal_of(world.user(world.operator, Role.NOC, "noc-1"))
    with pytest.raises(PermissionDenied, match="operator administrator"), db.write() as s:
        issue_api_key(
            s,
            noc,
            name="m",
            scopes=None,
            at=clock.now(),
            machine_role=Role.NOC,
            tenant_id=world.operator.id,
        )


def test_unknown_scope_is_invalid(db, world, clock, acme):
    with pytest.raises(InvalidInput, match="unknown scopes: fly"), db.write() as s:
        issue_api_key(s, _principal_of(acme[1]), name="k", scopes=["fly"], at=clock.now())


def test_key_loses_scopes_when_owner_role_shrinks(db, world, clock, acme):
    _, admin = acme
    secret = world.key(admin)
    with db.write() as s:
        s.get(User, admin.id).role = Role.CUSTOMER_USER.value
    p = _auth(db, secret, clock.now())
    assert p.role is Role.CUSTOMER_USER
    assert p.scopes == ROLES[Role.CUSTOMER_USER].scopes


def test_key_for_disabled_or_missing_owner_is_refused(db, world, clock, acme):
    from satiot.core.ids import new_id

    _, admin = acme
    with pytest.raises(NotFound), db.write() as s:
        issue_api_key(s, world.system, name="k", scopes=None, at=clock.now(), user_id=new_id())
    with db.write() as s:
        set_user_status(s, world.system, admin.id, "disabled", at=clock.now(), reason=None)
    with pytest.raises(InvalidInput, match="disabled"), db.write() as s:
        issue_api_key(s, world.system, name="k", scopes=None, at=clock.now(), user_id=admin.id)
    with db.read() as s:
        assert s.scalars(select(ApiKey)).all() == []


@pytest.mark.parametrize("kind", ["bearer", "session"])
def test_tokens_are_stored_hashed_and_expire(db, world, clock, acme, kind):
    _, admin = acme
    with db.write() as s:
        token, secret = issue_token(
            s, s.get(User, admin.id), kind=kind, at=clock.now(), ttl=timedelta(minutes=30)
        )
    assert secret not in _row_text(db, "access_tokens")
    assert (token.csrf_token is not None) == (kind == "session")
    with db.read() as s:
        p = authenticate_token(s, secret, kind, clock.now() + timedelta(minutes=29))
        assert (p.user_id, p.via, p.credential_id) == (admin.id, kind, token.id)
        other = "session" if kind == "bearer" else "bearer"
        with pytest.raises(AuthenticationFailed):
            authenticate_token(s, secret, other, clock.now())
        with pytest.raises(AuthenticationFailed, match="expired"):
            authenticate_token(s, secret, kind, clock.now() + timedelta(minutes=30))


def test_revoked_token_and_disabled_user_fail(db, world, clock, acme):
    _, admin = acme
    with db.write() as s:
        token, secret = issue_token(
            s, s.get(User, admin.id), kind="bearer", at=clock.now(), ttl=timedelta(hours=1)
        )
        _, secret2 = issue_token(
            s, s.get(User, admin.id), kind="bearer", at=clock.now(), ttl=timedelta(hours=1)
        )
    with db.write() as s:
        s.get(AccessToken, token.id).revoked_at = clock.now()
    with db.read() as s, pytest.raises(AuthenticationFailed, match="revoked"):
        authenticate_token(s, secret, "bearer", clock.now())
    with db.write() as s:
        set_user_status(s, world.system, admin.id, "disabled", at=clock.now(), reason=None)
    with db.read() as s, pytest.raises(AuthenticationFailed, match="disabled"):
        authenticate_token(s, secret2, "bearer", clock.now())


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("fleet\x1b[2J", "control character"),
        ("fleet\nkey", "control character"),
        ("fleet \u202eyek", "bidirectional control character"),
        ("   ", "must not be empty"),
    ],
)
def test_key_names_are_one_line_of_plain_text(db, world, clock, acme, name, why):
    """The name tells keys apart in the console, the key list and the audit log; the CLI and
    the console reach this function directly, so it checks for them too."""
    _, admin = acme
    with pytest.raises(InvalidInput, match=why) as refused, db.write() as s:
        issue_api_key(s, _principal_of(admin), name=name, scopes=None, at=clock.now())
    assert refused.value.extensions["field"] == "name"
    with db.read() as s:
        assert s.scalars(select(ApiKey).where(ApiKey.user_id == admin.id)).all() == []


def test_a_chinese_key_name_is_kept_trimmed(db, clock, acme):
    _, admin = acme
    with db.write() as s:
        issued = issue_api_key(
            s, _principal_of(admin), name=" 车队看板 ", scopes=None, at=clock.now()
        )
    assert issued.key.name == "车队看板"
