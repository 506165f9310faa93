"""The catalog API: TMF620-like offerings with nested prices, versions and lifecycle."""

from __future__ import annotations

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem

API = "/api/v1/product-offerings"

BODY = {
    "code": "SAT-TEST",
    "name": "Satellite messaging (test)",
    "description": "per message",
    "productOfferingPrice": [
        {"name": "Line rental", "kind": "recurring", "price": {"value": "2.00"}},
        {
            "name": "Uplink message",
            "kind": "per-message",
            "price": {"value": "0.05", "unit": "CNY"},
            "appliesTo": "uplink",
        },
        {"name": "Data", "kind": "per-byte", "price": {"value": "0.0005"}, "minBillableBytes": 10},
    ],
}


def _launch(client, headers, offering_id):
    r = client.post(
        f"{API}/{offering_id}/lifecycle", headers=headers, json={"lifecycleStatus": "Active"}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_design_launch_and_read_an_offering(client, world):
    admin = world.admin_headers()
    r = client.post(API, headers=admin | {"Idempotency-Key": "o-1"}, json=BODY)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["version"], made["lifecycleStatus"], made["isAddOn"]) == (1, "In design", False)
    prices = made["productOfferingPrice"]
    assert [p["priceType"] for p in prices] == ["recurring", "usage", "usage"]
    assert [p["unitOfMeasure"] for p in prices] == ["device-month", "message", "byte"]
    assert prices[1]["price"] == {"value": "0.05", "unit": "CNY"}
    assert prices[2]["amountMicros"] == 500 and prices[2]["minBillableBytes"] == 10
    assert prices[2]["description"] == "¥0.0005 per byte (at least 10 B per message)"
    # The same key and body replay the answer; nothing new is made.
    again = client.post(API, headers=admin | {"Idempotency-Key": "o-1"}, json=BODY)
    assert again.status_code == 201 and again.json()["id"] == made["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    launched = _launch(client, admin, made["id"])
    assert launched["lifecycleStatus"] == "Active"
    listed = client.get(API, headers=admin, params={"code": "sat-test"}).json()["items"]
    assert [o["id"] for o in listed] == [made["id"]]


def test_revising_an_active_offering_starts_a_new_version(client, world):
    admin = world.admin_headers()
    v1 = client.post(API, headers=admin, json=BODY).json()
    _launch(client, admin, v1["id"])
    r = client.patch(
        f"{API}/{v1['id']}",
        headers=admin,
        json={"name": "Cheaper messaging", "reason": "price cut"},
    )
    assert r.status_code == 200, r.text
    v2 = r.json()
    assert v2["id"] != v1["id"] and (v2["version"], v2["lifecycleStatus"]) == (2, "In design")
    assert v2["productOfferingPrice"][1]["price"]["value"] == "0.05"  # copied
    # A second version while one is in design is a conflict naming the one to edit.
    r = client.post(f"{API}/{v1['id']}/versions", headers=admin, json={})
    body = assert_problem(r, 409, "conflict")
    assert body["in_design_id"] == v2["id"]
    _launch(client, admin, v2["id"])
    old = client.get(f"{API}/{v1['id']}", headers=admin).json()
    assert old["lifecycleStatus"] == "Retired"
    r = client.post(
        f"{API}/{v2['id']}/versions",
        headers=admin,
        json={"productOfferingPrice": [BODY["productOfferingPrice"][0]]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 3 and len(r.json()["productOfferingPrice"]) == 1


def test_customers_read_launched_offerings_only_and_cannot_design(client, world):
    admin = world.admin_headers()
    launched = client.post(API, headers=admin, json=BODY).json()
    _launch(client, admin, launched["id"])
    draft = client.post(API, headers=admin, json=BODY | {"code": "SAT-DRAFT"}).json()
    tenant = world.tenant()
    customer = world.headers(world.user(tenant, Role.CUSTOMER_USER))
    listed = client.get(API, headers=customer).json()["items"]
    assert [o["id"] for o in listed] == [launched["id"]]
    assert_problem(client.get(f"{API}/{draft['id']}", headers=customer), 404, "offering-not-found")
    assert client.get(f"{API}/{launched['id']}", headers=customer).status_code == 200
    assert_problem(client.post(API, headers=customer, json=BODY), 403, "forbidden")
    admin_of_customer = world.headers(world.user(tenant, Role.CUSTOMER_ADMIN))
    r = client.post(
        f"{API}/{launched['id']}/lifecycle",
        headers=admin_of_customer,
        json={"lifecycleStatus": "Retired"},
    )
    assert_problem(r, 403, "forbidden")


def test_bad_offerings_are_refused_with_the_field(client, world):
    admin = world.admin_headers()
    bad_kind = BODY | {"productOfferingPrice": [{"name": "x", "kind": "per-minute", "price": {}}]}
    body = assert_problem(client.post(API, headers=admin, json=bad_kind), 422, "validation-error")
    assert any("kind" in e["loc"] for e in body["errors"])
    pooled = BODY | {
        "productOfferingPrice": [
            {"name": "x", "kind": "recurring", "price": {"value": "1"}, "pooled": True}
        ]
    }
    body = assert_problem(client.post(API, headers=admin, json=pooled), 422, "invalid-input")
    assert body["field"] == "prices[0].pooled"
    r = client.post(
        f"{API}/{client.post(API, headers=admin, json=BODY).json()['id']}/lifecycle",
        headers=admin,
        json={"lifecycleStatus": "Retired"},
    )
    assert_problem(r, 409, "illegal-transition")
