"""The tenants router: the operator creates customers and moves them through their lifecycle."""

from __future__ import annotations

import pytest

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, unchanged

TENANTS = "/api/v1/tenants"


def test_operator_creates_a_customer(client, world, counts):
    before = counts()
    r = client.post(
        TENANTS,
        json={"slug": "sinotrans", "name": "  Sinotrans Logistics "},
        headers=world.admin_headers(),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert {k: body[k] for k in ("slug", "name", "kind", "status")} == {
        "slug": "sinotrans",
        "name": "Sinotrans Logistics",
        "kind": "customer",
        "status": "active",
    }
    assert counts()["tenants"] == before["tenants"] + 1
    assert client.get(f"{TENANTS}/{body['id']}", headers=world.admin_headers()).json() == body


@pytest.mark.parametrize("slug", ["Upper", "-leading", "has space", "x" * 64, "under_score"])
def test_bad_slug_is_422(client, ctx, world, slug):
    headers = world.admin_headers()
    with unchanged(ctx):
        assert_problem(client.post(TENANTS, json={"slug": slug, "name": "X"}, headers=headers), 422)


def test_duplicate_slug_is_409(client, ctx, world):
    headers = world.admin_headers()
    world.tenant("taken")
    with unchanged(ctx):
        assert_problem(
            client.post(TENANTS, json={"slug": "taken", "name": "X"}, headers=headers),
            409,
            "conflict",
        )


def test_customer_lists_only_itself(client, world):
    mine = world.tenant()
    other = world.tenant()
    headers = world.headers(world.user(mine, Role.CUSTOMER_USER))
    items = client.get(TENANTS, headers=headers).json()["items"]
    assert [t["id"] for t in items] == [str(mine.id)]
    assert client.get(f"{TENANTS}/{mine.id}", headers=headers).status_code == 200
    assert_problem(client.get(f"{TENANTS}/{other.id}", headers=headers), 404, "not-found")
    assert_problem(client.get(f"{TENANTS}/{world.operator.id}", headers=headers), 404)
    everyone = client.get(TENANTS, headers=world.admin_headers()).json()["items"]
    assert len(everyone) == 3


def test_customer_cannot_create_or_change_tenants(client, ctx, world):
    mine = world.tenant()
    headers = world.headers(world.user(mine, Role.CUSTOMER_ADMIN))
    with unchanged(ctx):
        assert_problem(
            client.post(TENANTS, json={"slug": "mine-2", "name": "X"}, headers=headers),
            403,
            "forbidden",
        )
        assert_problem(
            client.patch(f"{TENANTS}/{mine.id}", json={"status": "closed"}, headers=headers),
            403,
            "forbidden",
        )


def test_status_lifecycle(client, ctx, world):
    tenant = world.tenant()
    customer = world.headers(world.user(tenant, Role.CUSTOMER_ADMIN))
    business = world.headers(world.user(world.operator, Role.BUSINESS))
    url = f"{TENANTS}/{tenant.id}"
    r = client.patch(url, json={"status": "suspended", "reason": "unpaid"}, headers=business)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert_problem(client.get("/api/v1/me", headers=customer), 401)
    r = client.patch(url, json={"status": "active"}, headers=business)
    assert r.json()["status"] == "active"
    assert client.get("/api/v1/me", headers=customer).status_code == 200
    assert client.patch(url, json={"status": "closed"}, headers=business).status_code == 200
    with unchanged(ctx):
        body = assert_problem(
            client.patch(url, json={"status": "active"}, headers=business),
            409,
            "illegal-transition",
        )
    assert "closed" in body["detail"]
    audit = client.get(
        f"/api/v1/audit?target_type=tenant&target_id={tenant.id}", headers=world.admin_headers()
    ).json()["items"]
    assert [e["after"]["status"] for e in audit] == ["closed", "active", "suspended", "active"]


def test_noc_cannot_change_tenants(client, ctx, world):
    tenant = world.tenant()
    noc = world.headers(world.user(world.operator, Role.NOC))
    with unchanged(ctx):
        body = assert_problem(
            client.patch(f"{TENANTS}/{tenant.id}", json={"status": "closed"}, headers=noc),
            403,
            "forbidden",
        )
    assert body["required_scope"] == "tenants:write"


@pytest.mark.parametrize("status", ["suspended", "closed", "active"])
def test_operator_tenant_cannot_change(client, ctx, world, status):
    headers = world.admin_headers()
    with unchanged(ctx):
        assert_problem(
            client.patch(
                f"{TENANTS}/{world.operator.id}", json={"status": status}, headers=headers
            ),
            409,
            "conflict",
        )
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_tenants_paginate(client, world):
    for _ in range(4):
        world.tenant()
    headers = world.admin_headers()
    first = client.get(f"{TENANTS}?limit=2", headers=headers)
    assert 'rel="next"' in first.headers["link"]
    ids = [t["id"] for t in first.json()["items"]]
    cursor = first.json()["next_cursor"]
    while cursor:
        page = client.get(f"{TENANTS}?limit=2&cursor={cursor}", headers=headers).json()
        ids += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert len(ids) == len(set(ids)) == 5
