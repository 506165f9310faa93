"""Idempotency-Key on the POSTs that create things."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from satiot.core.auth.roles import Role
from satiot.core.models import IdempotencyRecord
from tests.api.conftest import assert_problem, unchanged
from tests.factories import PASSWORD

#: route -> (table that grows, a body, a different body)
CASES = {
    "/api/v1/users": (
        "users",
        {"username": "idem-user", "password": PASSWORD, "role": "customer-user"},
        {"username": "idem-other", "password": PASSWORD, "role": "customer-user"},
    ),
    "/api/v1/tenants": (
        "tenants",
        {"slug": "idem-co", "name": "Idem Co"},
        {"slug": "idem-co", "name": "Idem Co Ltd"},
    ),
    "/api/v1/api-keys": ("api_keys", {"name": "idem-key"}, {"name": "idem-key-2"}),
}


def _body(world, path, body):
    """Users are created in a customer tenant (its admin may create customer users)."""
    if path.endswith("/users"):
        return body | {"tenant_id": str(world.tenant().id)}
    return body


@pytest.mark.parametrize("path", list(CASES))
def test_same_key_same_body_replays_the_first_answer(client, world, counts, path):
    table, body, _ = CASES[path]
    body = _body(world, path, body)
    headers = world.admin_headers() | {"Idempotency-Key": "k-1"}
    before = counts()
    first = client.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = client.post(path, json=body, headers=headers)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    expected = first.json() | ({"secret": None} if path.endswith("api-keys") else {})
    assert second.json() == expected
    after = counts()
    assert after[table] == before[table] + 1
    assert after["audit_log"] == before["audit_log"] + 1
    assert after["events"] == before["events"] + 1
    assert after["idempotency_records"] == before["idempotency_records"] + 1


@pytest.mark.parametrize("path", list(CASES))
def test_same_key_different_body_is_409(client, ctx, world, path):
    _, body, other = CASES[path]
    body, other = _body(world, path, body), _body(world, path, other)
    headers = world.admin_headers() | {"Idempotency-Key": "k-2"}
    assert client.post(path, json=body, headers=headers).status_code == 201
    with unchanged(ctx):
        r = client.post(path, json=other, headers=headers)
        body409 = assert_problem(r, 409, "conflict")
    assert body409["field"] == "Idempotency-Key"


def test_different_callers_use_the_same_key_independently(client, world, counts):
    tenant = world.tenant()
    one = world.headers(world.user(tenant, Role.CUSTOMER_ADMIN)) | {"Idempotency-Key": "same"}
    two = world.headers(world.user(tenant, Role.CUSTOMER_ADMIN)) | {"Idempotency-Key": "same"}
    before = counts()["users"]
    a = client.post(
        "/api/v1/users",
        headers=one,
        json={"username": "made-by-one", "password": PASSWORD, "role": "customer-user"},
    )
    b = client.post(
        "/api/v1/users",
        headers=two,
        json={"username": "made-by-two", "password": PASSWORD, "role": "customer-user"},
    )
    assert (a.status_code, b.status_code) == (201, 201), (a.text, b.text)
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert counts()["users"] == before + 2


def test_replayed_api_key_creation_never_reveals_the_secret(client, ctx, world):
    headers = world.admin_headers() | {"Idempotency-Key": "key-once"}
    first = client.post("/api/v1/api-keys", json={"name": "once"}, headers=headers)
    secret = first.json()["secret"]
    assert secret
    replay = client.post("/api/v1/api-keys", json={"name": "once"}, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["secret"] is None
    assert secret not in replay.text
    with ctx.db.read() as s:
        records = s.scalars(select(IdempotencyRecord)).all()
    assert len(records) == 1
    assert secret not in records[0].response_body
    # sk_<prefix>_<random>: the random part itself may hold "_", so split off the prefix only.
    assert secret.split("_", 2)[2] not in records[0].response_body


def test_a_failed_request_is_not_remembered(client, world, counts):
    headers = world.admin_headers() | {"Idempotency-Key": "retry-me"}
    tenant = world.tenant()
    body = {"username": "later", "password": PASSWORD, "role": "noc", "tenant_id": str(tenant.id)}
    before = counts()
    assert_problem(client.post("/api/v1/users", json=body, headers=headers), 422)
    assert counts() == before
    fixed = client.post("/api/v1/users", json=body | {"role": "customer-user"}, headers=headers)
    assert fixed.status_code == 201, fixed.text


@pytest.mark.parametrize("key", ["x" * 256, "tab\there", ""])
def test_unusable_idempotency_key_is_422(client, ctx, world, key):
    headers = world.admin_headers() | {"Idempotency-Key": key}
    with unchanged(ctx):
        r = client.post("/api/v1/tenants", json={"slug": "k", "name": "K"}, headers=headers)
        assert_problem(r, 422, "invalid-input")


def test_key_expires_after_its_ttl(client, world, clock, settings, counts):
    headers = world.admin_headers() | {"Idempotency-Key": "old"}
    assert (
        client.post(
            "/api/v1/tenants", json={"slug": "ttl-1", "name": "T"}, headers=headers
        ).status_code
        == 201
    )
    clock.advance(settings.idempotency_ttl_s + 1)
    r = client.post("/api/v1/tenants", json={"slug": "ttl-2", "name": "T"}, headers=headers)
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
