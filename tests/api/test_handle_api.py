"""Handle-compatible resolution at /api/handles/{handle}, and the identifiers management API."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from satiot.core.auth.roles import Role
from satiot.oss.identifiers import create_handle
from tests.api.conftest import assert_problem
from tests.oss.helpers import IMEI, PREFIX, USCC, record

NUMBER = "1410123400000"


@pytest.fixture
def handle(ctx, world):
    tenant = world.tenant("bravo")
    with ctx.db.write() as s:
        return create_handle(
            s,
            world.system,
            prefix=PREFIX,
            record=record(NUMBER),
            tenant_id=tenant.id,
            at=ctx.clock.now(),
            suffix="META_zj02",
        ).handle


def test_public_resolution_serves_only_public_values_in_the_handle_shape(client, handle):
    r = client.get(f"/api/handles/{handle}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"responseCode", "handle", "values"}
    assert body["responseCode"] == 1 and body["handle"] == "88.608.8899/META_zj02"
    assert [v["type"] for v in body["values"]] == ["MODEL", "LICENCE_NO", "STATUS"]
    assert body["values"][0] == {
        "index": 2,
        "type": "MODEL",
        "data": {"format": "string", "value": "TQ-M100"},
        "ttl": 86400,
        "timestamp": "2026-11-25T08:00:00Z",
    }
    assert IMEI not in r.text and USCC not in r.text and NUMBER not in r.text


def test_a_credential_with_identifiers_read_sees_every_value(client, world, handle):
    regulator = world.user(world.operator, Role.REGULATOR)
    r = client.get(f"/api/handles/{handle}", headers=world.headers(regulator))
    assert [v["index"] for v in r.json()["values"]] == [1, 2, 3, 4, 7, 8]
    public = client.get(f"/api/handles/{handle}?publicOnly=true", headers=world.admin_headers())
    assert [v["index"] for v in public.json()["values"]] == [2, 3, 8]


def test_a_customer_of_another_tenant_learns_only_public_values(client, world, handle):
    alpha = world.tenant("alpha")
    h = world.headers(world.user(alpha, Role.CUSTOMER_ADMIN))
    r = client.get(f"/api/handles/{handle}", headers=h)
    assert r.status_code == 200 and [v["index"] for v in r.json()["values"]] == [2, 3, 8]
    assert IMEI not in r.text and USCC not in r.text and "bravo" not in r.text
    r = client.get(f"/api/handles/{handle}?publicOnly=false", headers=h)
    assert (r.status_code, r.json()["responseCode"]) == (403, 401)
    assert "values" not in r.json() and r.json()["message"]


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("type=MODEL", [2]),
        ("type=status", [8]),
        ("type=STATUS.", [8]),
        ("index=3&index=8", [3, 8]),
        ("type=MODEL&index=8", [2, 8]),
    ],
)
def test_type_and_index_filters(client, handle, query, indexes):
    r = client.get(f"/api/handles/{handle}?{query}")
    assert r.status_code == 200 and r.json()["responseCode"] == 1
    assert [v["index"] for v in r.json()["values"]] == indexes


@pytest.mark.parametrize(
    ("path", "http", "code"),
    [
        ("88.608.8899/nothing", 404, 100),
        ("99.608/x", 400, 102),
        ("88.608.8899", 400, 102),
        ("88.608.8899/META_zj02?type=URL", 200, 200),
        ("88.608.8899/META_zj02?index=1", 200, 200),
        ("88.608.8899/META_zj02?index=x", 200, 200),
        # "³" passed str.isdigit() and failed int(), and 5,000 digits fail int(): were 500s
        ("88.608.8899/META_zj02?index=%C2%B3", 200, 200),
        ("88.608.8899/META_zj02?index=" + "1" * 5000, 200, 200),
        ("88.608.8899/META_zj02?index=%D9%A3", 200, 200),
        ("88.608.8899/META_zj02?publicOnly=false", 401, 402),
    ],
)
def test_every_error_code_replaces_values_with_a_message(client, handle, path, http, code):
    r = client.get(f"/api/handles/{path}")
    assert r.status_code == http, r.text
    body = r.json()
    assert body["responseCode"] == code and body["message"] and "values" not in body
    assert body["handle"] == path.split("?")[0]


@pytest.mark.parametrize("text", ["88.608.8899/a%0Ab", "%0A", "88.608.8899/%0D%0A%09"])
def test_a_handle_with_line_breaks_is_answered_in_the_handle_shape(client, world, text):
    """Not the router's generic 404: a Handle client parses every answer."""
    r = client.get(f"/api/handles/{text}")
    assert r.status_code in (400, 404), r.text
    body = r.json()
    assert body["responseCode"] in (100, 102) and body["handle"] == unquote(text)
    managed = client.get(f"/api/v1/identifiers/{text}", headers=world.admin_headers())
    assert managed.status_code in (404, 422) and managed.json()["type"] != "/problems/not-found"


def test_an_unknown_credential_is_code_402(client, handle):
    r = client.get(f"/api/handles/{handle}", headers={"Authorization": "Bearer sk_nope_nope"})
    assert (r.status_code, r.json()["responseCode"]) == (401, 402)


def test_the_example_handles_resolve_when_registered(client, ctx, world):
    with ctx.db.write() as s:
        create_handle(
            s,
            world.system,
            prefix="88.1021.150",
            record=record(NUMBER),
            tenant_id=None,
            at=ctx.clock.now(),
            suffix="002",
        )
    assert client.get("/api/handles/88.1021.150/002").json()["responseCode"] == 1


# -- management API --------------------------------------------------------------------------------

BODY = {
    "terminal_id": IMEI,
    "model": "TQ-M100",
    "licence_number": "00-B182-228209",
    "iot_number": NUMBER,
    "credit_code": USCC,
}


def test_manage_handles_through_the_api(client, ctx, world):
    tenant = world.tenant()
    admin = world.admin_headers()
    r = client.post("/api/v1/identifiers", json=BODY | {"tenant_id": str(tenant.id)}, headers=admin)
    assert_problem(r, 409, "conflict")  # no prefix configured yet
    ctx.settings.handle_prefix = PREFIX
    r = client.post(
        "/api/v1/identifiers",
        json=BODY | {"tenant_id": str(tenant.id), "suffix": "dev-1"},
        headers=admin | {"Idempotency-Key": "h-1"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["handle"] == "88.608.8899/dev-1" and len(created["values"]) == 6
    again = client.post(
        "/api/v1/identifiers",
        json=BODY | {"tenant_id": str(tenant.id), "suffix": "dev-1"},
        headers=admin | {"Idempotency-Key": "h-1"},
    )
    assert again.headers.get("Idempotent-Replayed") == "true"
    r = client.post("/api/v1/identifiers", json=BODY | {"tenant_id": str(tenant.id)}, headers=admin)
    assert_problem(r, 409, "conflict")
    r = client.patch(
        "/api/v1/identifiers/88.608.8899/dev-1",
        json={"status": "suspended", "reason": "fraud"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    r = client.patch(
        "/api/v1/identifiers/88.608.8899/dev-1",
        json={"status": "active"},
        headers=world.headers(world.user(world.operator, Role.NOC)),
    )
    assert_problem(r, 403)
    listing = client.get("/api/v1/identifiers?status=suspended", headers=admin).json()
    assert [h["handle"] for h in listing["items"]] == ["88.608.8899/dev-1"]
    assert client.get("/api/v1/identifiers/88.608.8899/dev-1", headers=admin).status_code == 200
    assert (
        client.delete("/api/v1/identifiers/88.608.8899/dev-1?reason=x", headers=admin).status_code
        == 204
    )
    assert_problem(
        client.get("/api/v1/identifiers/88.608.8899/dev-1", headers=admin), 404, "handle-not-found"
    )
    assert_problem(client.get("/api/v1/identifiers/nonsense", headers=admin), 422, "invalid-handle")


def test_bad_device_records_are_problems(client, ctx, world):
    ctx.settings.handle_prefix = PREFIX
    tenant = world.tenant()
    r = client.post(
        "/api/v1/identifiers",
        json=BODY | {"tenant_id": str(tenant.id), "terminal_id": "354178036859788"},
        headers=world.admin_headers(),
    )
    body = assert_problem(r, 422, "invalid-input")
    assert body["field"] == "imei"


def test_minting_for_an_unknown_tenant_is_404_not_500(client, ctx, world):
    ctx.settings.handle_prefix = PREFIX
    body = BODY | {"tenant_id": "6f2bc7e7-82a3-4a44-b195-d1eade69ca47"}
    r = client.post("/api/v1/identifiers", json=body, headers=world.admin_headers())
    assert assert_problem(r, 404, "not-found")["field"] == "tenant_id"
