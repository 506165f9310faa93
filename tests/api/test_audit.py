"""The audit log, its verification, and the event-log consumers, as the API shows them."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from satiot.core import events
from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem


@pytest.fixture
def history(client, world):
    """Some audited changes: two tenants, a user in each, one user disabled."""
    headers = world.admin_headers()
    made = []
    for slug in ("north", "south"):
        t = client.post("/api/v1/tenants", json={"slug": slug, "name": slug}, headers=headers)
        u = client.post(
            "/api/v1/users",
            headers=headers,
            json={
                "username": f"{slug}-admin",
                "password": "correct-horse-battery",
                "role": "customer-admin",
                "tenant_id": t.json()["id"],
            },
        )
        made.append((t.json(), u.json()))
    client.patch(f"/api/v1/users/{made[0][1]['id']}", json={"status": "disabled"}, headers=headers)
    return made


def test_audit_is_newest_first_and_pages(client, world, history):
    headers = world.headers(world.user(world.operator, Role.COMPLIANCE))
    first = client.get("/api/v1/audit?limit=4", headers=headers)
    assert first.status_code == 200, first.text
    seqs = [e["seq"] for e in first.json()["items"]]
    assert first.json()["items"][0]["action"] == "api-key.created"  # the compliance key
    cursor = first.json()["next_cursor"]
    while cursor:
        page = client.get(f"/api/v1/audit?limit=4&cursor={cursor}", headers=headers).json()
        seqs += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
    assert seqs == sorted(seqs, reverse=True)
    assert seqs[-1] == 1 and len(seqs) == len(set(seqs)) == max(seqs)


def test_audit_filters(client, world, history):
    headers = world.admin_headers()
    (north, north_admin), (south, _) = history
    by_target = client.get(
        f"/api/v1/audit?target_type=user&target_id={north_admin['id']}", headers=headers
    ).json()["items"]
    assert [e["action"] for e in by_target] == ["user.status-changed", "user.created"]
    by_tenant = client.get(f"/api/v1/audit?tenant_id={south['id']}", headers=headers).json()
    assert {e["tenant_id"] for e in by_tenant["items"]} == {south["id"]}
    assert {e["action"] for e in by_tenant["items"]} == {"tenant.created", "user.created"}
    tenants = client.get("/api/v1/audit?target_type=tenant", headers=headers).json()["items"]
    assert {e["target_id"] for e in tenants} >= {north["id"], south["id"]}
    assert all(e["target_type"] == "tenant" for e in tenants)
    assert client.get("/api/v1/audit?target_type=nothing", headers=headers).json() == {
        "items": [],
        "next_cursor": None,
    }


def test_audit_entries_name_the_actor(client, world, history):
    entry = client.get(
        f"/api/v1/audit?target_id={history[1][0]['id']}", headers=world.admin_headers()
    ).json()["items"][0]
    assert entry["action"] == "tenant.created"
    assert world.admin.username in entry["actor"]
    assert entry["actor"].startswith("api-key:")
    assert len(entry["hash"]) == 64


def test_verification_is_ok_and_detects_tampering(client, ctx, world, history):
    headers = world.headers(world.user(world.operator, Role.REGULATOR))
    r = client.get("/api/v1/audit/verification", headers=headers)
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["ok"] is True and v["problem"] is None
    assert v["checked"] == v["last_seq"] > 5
    with ctx.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET reason = 'forged' WHERE seq = 3"))
    v = client.get("/api/v1/audit/verification", headers=headers).json()
    assert v["ok"] is False and v["seq"] == 3 and v["problem"]


@pytest.mark.parametrize(
    "role,status",
    [
        (Role.OPERATOR_ADMIN, 200),
        (Role.COMPLIANCE, 200),
        (Role.REGULATOR, 200),
        (Role.NOC, 403),
        (Role.BUSINESS, 403),
        (Role.BILLING, 403),
        (Role.CUSTOMER_ADMIN, 403),
        (Role.CUSTOMER_USER, 403),
    ],
)
def test_only_audit_readers_read_the_audit(client, world, role, status):
    tenant = (
        world.operator
        if role.value not in ("customer-admin", "customer-user")
        else (world.tenant())
    )
    headers = world.headers(world.user(tenant, role))
    for path in ("/api/v1/audit", "/api/v1/audit/verification"):
        r = client.get(path, headers=headers)
        if status == 403:
            assert assert_problem(r, 403, "forbidden")["required_scope"] == "audit:read"
        else:
            assert r.status_code == 200, r.text


def test_event_consumers_show_position_and_lag(client, ctx, world, clock, history):
    headers = world.headers(world.user(world.operator, Role.NOC))
    assert client.get("/api/v1/events/consumers", headers=headers).json() == []
    seen = []
    consumer = events.Consumer("test-counter", lambda s, ev: seen.append(ev.seq), batch_size=3)
    events.consume_batch(ctx.db, consumer, clock)
    r = client.get("/api/v1/events/consumers", headers=headers)
    assert r.status_code == 200
    [status] = r.json()
    with ctx.db.read() as s:
        head = events.head(s)
    assert status == {
        "name": "test-counter",
        "position": 3,
        "head": head,
        "lag": head - 3,
        "updated_at": status["updated_at"],
    }
    assert status["updated_at"] is not None
    while events.consume_batch(ctx.db, consumer, clock):
        pass
    [status] = client.get("/api/v1/events/consumers", headers=headers).json()
    assert status["lag"] == 0 and status["position"] == head == len(seen)


def test_event_consumers_need_events_read(client, world):
    headers = world.headers(world.user(world.operator, Role.REGULATOR))
    body = assert_problem(client.get("/api/v1/events/consumers", headers=headers), 403)
    assert body["required_scope"] == "events:read"
