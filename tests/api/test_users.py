"""The users router: lists, creation, roles and the active/disabled lifecycle."""

from __future__ import annotations

import pytest

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, bearer, unchanged
from tests.factories import PASSWORD

USERS = "/api/v1/users"


def _new(name: str, role: str = "customer-user", **extra):
    return {"username": name, "password": PASSWORD, "role": role, **extra}


def test_list_pages_through_every_user_with_link_headers(client, world):
    tenant = world.tenant()
    for _ in range(6):
        world.user(tenant, Role.CUSTOMER_USER)
    headers = world.admin_headers()
    seen: list[str] = []
    url = f"{USERS}?limit=3"
    pages = 0
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        seen += [u["id"] for u in body["items"]]
        if body["next_cursor"]:
            assert len(body["items"]) == 3
            link = r.headers["link"]
            assert link.endswith('>; rel="next"')
            url = link[1 : link.index(">")]
            assert f"cursor={body['next_cursor']}" in url and "limit=3" in url
        else:
            assert "link" not in r.headers
            url = ""
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7  # the operator's admin and six customer users
    assert seen == sorted(seen)  # time-ordered ids: oldest first


def test_create_then_get_then_log_in(client, world, counts):
    tenant = world.tenant()
    headers = world.admin_headers()
    before = counts()
    r = client.post(
        USERS,
        headers=headers,
        json=_new(
            "carol",
            "customer-admin",
            tenant_id=str(tenant.id),
            display_name="Carol",
            email="carol@example.org",
        ),
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert {k: user[k] for k in ("username", "role", "status", "tenant_id", "email")} == {
        "username": "carol",
        "role": "customer-admin",
        "status": "active",
        "tenant_id": str(tenant.id),
        "email": "carol@example.org",
    }
    assert "password" not in r.text and PASSWORD not in r.text
    after = counts()
    assert after["users"] == before["users"] + 1
    assert after["audit_log"] == before["audit_log"] + 1
    got = client.get(f"{USERS}/{user['id']}", headers=world.admin_headers())
    assert got.json() == user
    token = client.post("/api/v1/auth/token", data={"username": "carol", "password": PASSWORD})
    assert token.status_code == 200


def test_customer_admin_creates_in_its_own_tenant_by_default(client, world):
    tenant = world.tenant()
    admin = world.user(tenant, Role.CUSTOMER_ADMIN)
    r = client.post(USERS, headers=world.headers(admin), json=_new("dave"))
    assert r.status_code == 201, r.text
    assert r.json()["tenant_id"] == str(tenant.id)


@pytest.mark.parametrize("role", ["operator-admin", "noc", "regulator", "ground-station"])
def test_customer_admin_cannot_create_operator_roles(client, ctx, world, role):
    headers = world.headers(world.user(world.tenant(), Role.CUSTOMER_ADMIN))
    with unchanged(ctx):
        r = client.post(USERS, headers=headers, json=_new("mallory", role))
        assert r.status_code in (403, 422)
        assert_problem(r, r.status_code)


def test_customer_admin_cannot_create_users_in_the_operator_tenant(client, ctx, world):
    headers = world.headers(world.user(world.tenant(), Role.CUSTOMER_ADMIN))
    with unchanged(ctx):
        r = client.post(
            USERS,
            headers=headers,
            json=_new("mallory", "customer-user", tenant_id=str(world.operator.id)),
        )
        assert_problem(r, 404, "not-found")


def test_only_operator_admin_grants_operator_roles(client, ctx, world):
    business = world.headers(world.user(world.operator, Role.BUSINESS))
    with unchanged(ctx):
        assert_problem(
            client.post(USERS, headers=business, json=_new("eve", "noc")), 403, "forbidden"
        )
    r = client.post(USERS, headers=world.admin_headers(), json=_new("eve", "noc"))
    assert r.status_code == 201, r.text


def test_role_must_fit_the_tenant_kind(client, ctx, world):
    headers = world.admin_headers()
    with unchanged(ctx):
        body = assert_problem(
            client.post(USERS, headers=headers, json=_new("x1")), 422, "invalid-input"
        )
    assert body["field"] == "role"


@pytest.mark.parametrize(
    "patch",
    [
        {"username": "Bad Name!"},
        {"username": "x"},
        {"password": "short"},
        {"email": "not-an-email"},
        {"role": "superuser"},
    ],
)
def test_invalid_user_fields_are_422(client, ctx, world, patch):
    headers = world.admin_headers()
    with unchanged(ctx):
        assert_problem(client.post(USERS, headers=headers, json=_new("okname", "noc") | patch), 422)


def test_duplicate_username_is_409(client, ctx, world):
    headers = world.admin_headers()
    with unchanged(ctx):
        body = assert_problem(
            client.post(USERS, headers=headers, json=_new(world.admin.username, "noc")),
            409,
            "conflict",
        )
    assert body["field"] == "username"


def test_disable_and_enable(client, ctx, world, counts):
    tenant = world.tenant()
    admin = world.user(tenant, Role.CUSTOMER_ADMIN)
    member = world.user(tenant, Role.CUSTOMER_USER)
    member_key = world.key(member)
    headers = world.headers(admin)
    r = client.patch(
        f"{USERS}/{member.id}",
        headers=headers,
        json={"status": "disabled", "reason": "left the company"},
    )
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    assert client.get("/api/v1/me", headers=bearer(member_key)).status_code == 401
    listed = client.get(f"{USERS}?status=disabled", headers=headers).json()["items"]
    assert [u["id"] for u in listed] == [str(member.id)]

    with unchanged(ctx):
        body = assert_problem(
            client.patch(f"{USERS}/{member.id}", headers=headers, json={"status": "disabled"}),
            409,
            "illegal-transition",
        )
    assert body["current"] == "disabled"

    r = client.patch(f"{USERS}/{member.id}", headers=headers, json={"status": "active"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert client.get("/api/v1/me", headers=bearer(member_key)).status_code == 200
    entries = client.get(
        f"/api/v1/audit?target_id={member.id}", headers=world.admin_headers()
    ).json()["items"]
    assert [e["action"] for e in entries] == [
        "user.status-changed",
        "user.status-changed",
        "user.created",
    ]
    assert entries[1]["reason"] == "left the company"
    assert entries[1]["before"]["status"] == "active"
    assert entries[1]["after"]["status"] == "disabled"


def test_cannot_disable_yourself(client, ctx, world):
    headers = world.admin_headers()
    with unchanged(ctx):
        assert_problem(
            client.patch(f"{USERS}/{world.admin.id}", headers=headers, json={"status": "disabled"}),
            409,
            "conflict",
        )
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_unknown_user_is_404(client, ctx, world):
    headers = world.admin_headers()
    missing = "018f0000-0000-7000-8000-000000000000"
    with unchanged(ctx):
        assert_problem(client.get(f"{USERS}/{missing}", headers=headers), 404, "not-found")
        assert_problem(
            client.patch(f"{USERS}/{missing}", headers=headers, json={"status": "disabled"}),
            404,
            "not-found",
        )


def test_customer_sees_only_its_own_users(client, world):
    mine, other = world.tenant(), world.tenant()
    admin = world.user(mine, Role.CUSTOMER_ADMIN)
    world.user(other, Role.CUSTOMER_ADMIN)
    items = client.get(USERS, headers=world.headers(admin)).json()["items"]
    assert {u["tenant_id"] for u in items} == {str(mine.id)}
    everyone = client.get(USERS, headers=world.admin_headers()).json()["items"]
    assert len(everyone) == 3
    only = client.get(f"{USERS}?tenant_id={other.id}", headers=world.admin_headers()).json()
    assert {u["tenant_id"] for u in only["items"]} == {str(other.id)}


def test_customer_user_cannot_read_users(client, world):
    member = world.user(world.tenant(), Role.CUSTOMER_USER)
    body = assert_problem(client.get(USERS, headers=world.headers(member)), 403, "forbidden")
    assert body["required_scope"] == "users:read"
