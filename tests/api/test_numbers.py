"""Number blocks and numbers through the API: configuration, allocation, lifecycle, report."""

from __future__ import annotations

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, unchanged

BLOCK = {
    "name": "b1",
    "prefix": "14101234",
    "purpose": "satellite IoT terminals",
    "scope": "national",
}


def _block(client, headers, **kw):
    r = client.post("/api/v1/number-blocks", json=BLOCK | kw, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_blocks_create_list_get_and_refuse_overlaps(client, ctx, world):
    admin = world.admin_headers()
    b = _block(client, admin)
    assert (b["first_number"], b["last_number"], b["size"]) == (
        "1410123400000",
        "1410123499999",
        100000,
    )
    with unchanged(ctx):
        r = client.post(
            "/api/v1/number-blocks",
            json=BLOCK | {"name": "b2", "prefix": "141012345"},
            headers=admin,
        )
    assert "overlaps block b1" in assert_problem(r, 409, "conflict")["detail"]
    assert_problem(
        client.post("/api/v1/number-blocks", json=BLOCK | {"prefix": "14x"}, headers=admin), 422
    )
    assert client.get(f"/api/v1/number-blocks/{b['id']}", headers=admin).json()["name"] == "b1"
    assert [
        x["name"] for x in client.get("/api/v1/number-blocks", headers=admin).json()["items"]
    ] == ["b1"]


def test_allocate_move_and_report(client, world):
    admin = world.admin_headers()
    _block(client, admin)
    tenant = world.tenant()
    key = {"Idempotency-Key": "alloc-1"}
    r = client.post("/api/v1/numbers", json={"tenant_id": str(tenant.id)}, headers=admin | key)
    assert r.status_code == 201, r.text
    n = r.json()["number"]
    assert n == "1410123400000" and r.json()["status"] == "reserved"
    again = client.post("/api/v1/numbers", json={"tenant_id": str(tenant.id)}, headers=admin | key)
    assert again.json()["number"] == n and again.headers["Idempotent-Replayed"] == "true"
    second = client.post(
        "/api/v1/numbers", json={"tenant_id": str(tenant.id)}, headers=admin
    ).json()
    assert second["number"] == "1410123400001"

    for status in ("active", "suspended", "active"):
        r = client.patch(
            f"/api/v1/numbers/{n}", json={"status": status, "reason": "t"}, headers=admin
        )
        assert r.json()["status"] == status
    assert_problem(
        client.patch(f"/api/v1/numbers/{n}", json={"status": "reserved"}, headers=admin),
        409,
        "illegal-transition",
    )
    r = client.patch(f"/api/v1/numbers/{n}", json={"status": "cancelled"}, headers=admin)
    assert r.json()["status"] == "quarantine"
    assert r.json()["quarantine_until"].startswith("2027-02-23")  # 90 days after 2026-11-25

    page = client.get("/api/v1/numbers?status=reserved", headers=admin).json()
    assert [x["number"] for x in page["items"]] == ["1410123400001"]
    first = client.get("/api/v1/numbers?limit=2", headers=admin)
    assert len(first.json()["items"]) == 2 and 'rel="next"' in first.headers["Link"]
    nxt = client.get(f"/api/v1/numbers?limit=2&cursor={first.json()['next_cursor']}", headers=admin)
    assert nxt.json()["items"][0]["number"] == "1410123400002"
    assert (
        client.get(f"/api/v1/numbers?tenant_id={tenant.id}", headers=admin).json()["items"][0][
            "number"
        ]
        == n
    )

    report = client.get("/api/v1/number-blocks/report", headers=admin).json()
    (line,) = report["blocks"]
    assert (line["allocated"], line["active"], line["quarantined"]) == (1, 0, 1)
    assert line["utilisation"] == 1 / 100000


def test_unknown_and_malformed_numbers(client, world):
    admin = world.admin_headers()
    assert_problem(client.get("/api/v1/numbers/1410123400000", headers=admin), 404, "not-found")
    assert_problem(client.get("/api/v1/numbers/123", headers=admin), 422)
    assert_problem(
        client.post("/api/v1/numbers", json={"tenant_id": str(world.operator.id)}, headers=admin),
        409,
        "numbers-exhausted",
    )
    assert client.get("/problems/numbers-exhausted").status_code == 200


def test_who_may_do_what(client, world):
    admin = world.admin_headers()
    _block(client, admin)
    regulator = world.headers(world.user(world.operator, Role.REGULATOR))
    noc = world.headers(world.user(world.operator, Role.NOC))
    business = world.headers(world.user(world.operator, Role.BUSINESS))
    customer = world.headers(world.user(world.tenant(), Role.CUSTOMER_ADMIN))
    assert client.get("/api/v1/number-blocks/report", headers=regulator).status_code == 200
    assert_problem(
        client.post(
            "/api/v1/number-blocks", json=BLOCK | {"name": "x", "prefix": "1411"}, headers=regulator
        ),
        403,
    )
    assert_problem(
        client.post("/api/v1/numbers", json={"tenant_id": str(world.operator.id)}, headers=noc), 403
    )
    assert (
        client.post(
            "/api/v1/numbers", json={"tenant_id": str(world.operator.id)}, headers=business
        ).status_code
        == 201
    )
    assert_problem(client.get("/api/v1/numbers", headers=customer), 403)


def test_allocating_to_an_unknown_tenant_is_404_not_500(client, ctx, world):
    admin = world.admin_headers()
    _block(client, admin)
    body = {"tenant_id": "6f2bc7e7-82a3-4a44-b195-d1eade69ca47"}
    for extra in ({}, {"Idempotency-Key": "alloc-unknown-tenant"}):
        with unchanged(ctx):
            r = client.post("/api/v1/numbers", json=body, headers=admin | extra)
        assert assert_problem(r, 404, "not-found")["field"] == "tenant_id"
