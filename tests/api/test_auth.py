"""The OAuth2 password grant and /me."""

from __future__ import annotations

import pytest

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, bearer, unchanged
from tests.factories import PASSWORD

TOKEN = "/api/v1/auth/token"


def test_password_grant_returns_a_working_bearer_token(client, world, settings, counts):
    before = counts()["access_tokens"]
    r = client.post(
        TOKEN,
        data={"username": world.admin.username, "password": PASSWORD, "grant_type": "password"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_s
    assert counts()["access_tokens"] == before + 1
    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() | {"scopes": None} == {
        "tenant_id": str(world.operator.id),
        "role": "operator-admin",
        "scopes": None,
        "username": world.admin.username,
        "via": "bearer",
    }
    got = client.get(f"/api/v1/users/{world.admin.id}", headers=bearer(body["access_token"]))
    assert got.json()["last_login_at"] is not None


@pytest.mark.parametrize(
    "who,password", [("admin", "wrong-password-123"), ("nobody", PASSWORD), ("disabled", PASSWORD)]
)
def test_bad_credentials_are_400_invalid_grant_without_token(client, ctx, world, who, password):
    user = world.user(world.tenant(), Role.CUSTOMER_USER)
    if who == "disabled":
        client.patch(
            f"/api/v1/users/{user.id}", json={"status": "disabled"}, headers=world.admin_headers()
        )
    username = {"admin": world.admin.username, "nobody": "no-such-user", "disabled": user.username}[
        who
    ]
    with unchanged(ctx):
        r = client.post(TOKEN, data={"username": username, "password": password})
        body = assert_problem(r, 400, "invalid-grant")
    assert body["error"] == "invalid_grant"
    assert "access_token" not in body
    assert password not in r.text


def test_suspended_tenant_cannot_log_in(client, world):
    tenant = world.tenant()
    user = world.user(tenant, Role.CUSTOMER_ADMIN)
    client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"status": "suspended"}, headers=world.admin_headers()
    )
    r = client.post(TOKEN, data={"username": user.username, "password": PASSWORD})
    assert_problem(r, 400, "invalid-grant")


@pytest.mark.parametrize(
    "form",
    [
        {"username": "admin"},
        {"password": PASSWORD},
        {"username": "admin", "password": PASSWORD, "grant_type": "client_credentials"},
    ],
)
def test_incomplete_or_wrong_grant_is_422(client, ctx, world, form):
    with unchanged(ctx):
        assert_problem(client.post(TOKEN, data=form), 422, "validation-error")


def test_token_endpoint_refuses_json(client, ctx, world):
    with unchanged(ctx):
        r = client.post(TOKEN, json={"username": world.admin.username, "password": PASSWORD})
        assert_problem(r, 422, "validation-error")


def test_me_via_api_key_reports_the_keys_scopes(client, world):
    tenant = world.tenant()
    user = world.user(tenant, Role.CUSTOMER_ADMIN)
    key = world.key(user, scopes=["users:read", "tenants:read"])
    body = client.get("/api/v1/me", headers=bearer(key)).json()
    assert body["via"] == "api-key"
    assert body["role"] == "customer-admin"
    assert body["tenant_id"] == str(tenant.id)
    assert body["scopes"] == ["tenants:read", "users:read"]
