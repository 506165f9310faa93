"""API keys: the secret is shown once, stored only as a hash, and revocation is immediate."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select, text

from satiot.core.auth.roles import ROLES, Role
from satiot.core.models import ApiKey
from tests.api.conftest import assert_problem, bearer, unchanged

KEYS = "/api/v1/api-keys"


def _all_text(ctx, table: str) -> str:
    with ctx.db.engine.connect() as conn:
        return repr(conn.execute(text(f'SELECT * FROM "{table}"')).all())


def test_created_key_shows_its_secret_once_and_stores_only_a_hash(client, ctx, world):
    r = client.post(KEYS, json={"name": "fleet"}, headers=world.admin_headers())
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert secret.startswith(f"sk_{created['prefix']}_")
    assert set(created["scopes"]) == set(
        client.get("/api/v1/me", headers=world.admin_headers()).json()["scopes"]
    )
    me = client.get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 200 and me.json()["via"] == "api-key"

    listed = client.get(KEYS, headers=bearer(secret))
    got = client.get(f"{KEYS}/{created['id']}", headers=bearer(secret))
    for resp in (listed, got):
        assert resp.status_code == 200
        assert secret not in resp.text and "secret" not in resp.text
    assert created["id"] in {k["id"] for k in listed.json()["items"]}
    assert got.json() == {k: v for k, v in created.items() if k != "secret"}

    with ctx.db.read() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.prefix == created["prefix"]))
        assert row is not None
        assert row.secret_hash == hashlib.sha256(secret.encode()).digest()
    random_part = secret.removeprefix(f"sk_{created['prefix']}_")  # may itself hold "_"
    for table in ("api_keys", "audit_log", "events", "idempotency_records"):
        assert random_part not in _all_text(ctx, table), table


def test_key_with_fewer_scopes_is_limited_to_them(client, world):
    r = client.post(
        KEYS, json={"name": "reader", "scopes": ["users:read"]}, headers=world.admin_headers()
    )
    secret = r.json()["secret"]
    assert client.get("/api/v1/users", headers=bearer(secret)).status_code == 200
    body = assert_problem(client.get("/api/v1/tenants", headers=bearer(secret)), 403, "forbidden")
    assert body["required_scope"] == "tenants:read"


def test_scopes_beyond_the_callers_are_403(client, ctx, world):
    user = world.user(world.tenant(), Role.CUSTOMER_ADMIN)
    headers = world.headers(user)
    with unchanged(ctx):
        r = client.post(
            KEYS, json={"name": "greedy", "scopes": ["users:read", "audit:read"]}, headers=headers
        )
        body = assert_problem(r, 403, "forbidden")
    assert "audit:read" in body["detail"]


def test_a_key_cannot_mint_a_key_with_more_scopes_than_itself(client, ctx, world):
    narrow = world.key(world.admin, scopes=["api-keys:write", "api-keys:read"])
    with unchanged(ctx):
        r = client.post(
            KEYS, json={"name": "wider", "scopes": ["users:write"]}, headers=bearer(narrow)
        )
        assert_problem(r, 403, "forbidden")


def test_unknown_scope_is_422(client, ctx, world):
    headers = world.admin_headers()
    with unchanged(ctx):
        r = client.post(KEYS, json={"name": "x", "scopes": ["root"]}, headers=headers)
        body = assert_problem(r, 422, "invalid-input")
    assert body["field"] == "scopes"


def test_expiry_in_the_past_or_without_zone(client, ctx, world, clock):
    headers = world.admin_headers()
    with unchanged(ctx):
        past = (clock.now() - timedelta(seconds=1)).isoformat()
        assert_problem(
            client.post(KEYS, json={"name": "x", "expires_at": past}, headers=headers), 422
        )
        naive = (clock.now() + timedelta(days=1)).replace(tzinfo=None).isoformat()
        assert_problem(
            client.post(KEYS, json={"name": "x", "expires_at": naive}, headers=headers), 422
        )


def test_key_with_expiry_expires(client, world, clock):
    until = clock.now() + timedelta(days=1)
    r = client.post(
        KEYS, json={"name": "temp", "expires_at": until.isoformat()}, headers=world.admin_headers()
    )
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    clock.advance(timedelta(days=1))
    assert_problem(client.get("/api/v1/me", headers=bearer(secret)), 401, "unauthenticated")


def test_customer_admin_issues_a_key_for_a_user_of_its_tenant(client, world):
    tenant = world.tenant()
    admin = world.user(tenant, Role.CUSTOMER_ADMIN)
    member = world.user(tenant, Role.CUSTOMER_USER)
    r = client.post(
        KEYS, json={"name": "member", "user_id": str(member.id)}, headers=world.headers(admin)
    )
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "customer-user"
    # The member's key carries the member's own scopes, not the administrator's wider ones.
    assert r.json()["scopes"] == sorted(ROLES[Role.CUSTOMER_USER].scopes)
    assert "users:write" not in r.json()["scopes"]
    me = client.get("/api/v1/me", headers=bearer(r.json()["secret"])).json()
    assert me["username"] == member.username


def test_delete_revokes_immediately(client, ctx, world):
    headers = world.admin_headers()
    created = client.post(KEYS, json={"name": "doomed"}, headers=headers).json()
    secret = created["secret"]
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    r = client.delete(f"{KEYS}/{created['id']}", headers=headers)
    assert r.status_code == 204 and r.content == b""
    assert_problem(client.get("/api/v1/me", headers=bearer(secret)), 401, "unauthenticated")
    listed = {k["id"] for k in client.get(KEYS, headers=headers).json()["items"]}
    assert created["id"] not in listed
    everything = client.get(f"{KEYS}?include_revoked=true", headers=headers).json()["items"]
    revoked = next(k for k in everything if k["id"] == created["id"])
    assert revoked["revoked_at"] is not None
    audit = client.get(f"/api/v1/audit?target_id={created['id']}", headers=headers).json()
    assert [e["action"] for e in audit["items"]] == ["api-key.revoked", "api-key.created"]
    # Revoking again changes nothing.
    with unchanged(ctx):
        assert client.delete(f"{KEYS}/{created['id']}", headers=headers).status_code == 204


def test_unknown_key_is_404(client, ctx, world):
    headers = world.admin_headers()
    with unchanged(ctx):
        missing = "018f0000-0000-7000-8000-000000000000"
        assert_problem(client.get(f"{KEYS}/{missing}", headers=headers), 404, "not-found")
        assert_problem(client.delete(f"{KEYS}/{missing}", headers=headers), 404, "not-found")


def test_key_for_a_disabled_user_is_refused(client, ctx, world):
    tenant = world.tenant()
    admin = world.user(tenant, Role.CUSTOMER_ADMIN)
    member = world.user(tenant, Role.CUSTOMER_USER)
    headers = world.headers(admin)
    client.patch(f"/api/v1/users/{member.id}", json={"status": "disabled"}, headers=headers)
    with unchanged(ctx):
        r = client.post(KEYS, json={"name": "x", "user_id": str(member.id)}, headers=headers)
        assert_problem(r, 422, "invalid-input")


def test_a_key_name_with_control_or_direction_characters_is_a_422_naming_it(client, ctx, world):
    admin = world.admin_headers()
    for name in ("fleet\x1b[2J", "fleet \u202eyek"):
        with unchanged(ctx):
            problem = assert_problem(client.post(KEYS, json={"name": name}, headers=admin), 422)
        assert problem["field"] == "name"
    made = client.post(KEYS, json={"name": "车队看板"}, headers=admin)
    assert made.status_code == 201 and made.json()["name"] == "车队看板"
