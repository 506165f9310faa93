"""Usage API: records and counters of one's own subscriptions only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem
from tests.bss.billing_world import offering, price, rate_all, shop, uplink

API = "/api/v1"
T = datetime(2026, 11, 10, tzinfo=UTC)


def _mine_and_theirs(ctx, world, off, messages: int, **shop_kw):  # type: ignore[no-untyped-def]
    """A customer's device that sent ``messages`` uplinks a minute apart from ``T``, another
    customer's device that sent one, all rated: (shop, device, the other's device)."""
    s = shop(world, **shop_kw)
    sub = s.device(off, T - timedelta(days=3))
    for i in range(messages):
        uplink(ctx, sub, 12, T + timedelta(minutes=i))
    other = shop(world, uscc="91310115MA1K3BTP2B")
    theirs = other.device(off, T - timedelta(days=3))
    uplink(ctx, theirs, 12, T)
    rate_all(ctx)
    return s, sub, theirs


def test_a_customer_sees_its_usage_and_counters(client, world, ctx):
    off = offering(
        ctx,
        "Bundle",
        [price("recurring", 1_000_000, allowance_messages=4), price("per-message", 5)],
    )
    s, sub, theirs = _mine_and_theirs(ctx, world, off, 5, quota_messages=10, quota_action="notify")
    me = world.headers(world.user(s.tenant, Role.CUSTOMER_USER))

    r = client.get(f"{API}/usage?subscription_id={sub.id}&period=2026-11", headers=me)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 5 and {i["state"] for i in items} == {"rated"}
    assert sorted(i["charge_micros"] for i in items) == [0, 0, 0, 0, 5]
    assert client.get(f"{API}/usage?subscription_id={theirs.id}", headers=me).json()["items"] == []
    everything = client.get(f"{API}/usage", headers=me).json()["items"]
    assert {i["subscription_id"] for i in everything} == {str(sub.id)}
    one = client.get(f"{API}/usage/{items[0]['id']}", headers=me)  # a record by its id
    assert one.status_code == 200 and one.json() == items[0], one.text
    staff = world.admin_headers()
    their_record = client.get(f"{API}/usage?subscription_id={theirs.id}", headers=staff)
    (their_item,) = their_record.json()["items"]
    assert client.get(f"{API}/usage/{their_item['id']}", headers=staff).json() == their_item
    assert_problem(client.get(f"{API}/usage/{their_item['id']}", headers=me), 404)
    assert_problem(client.get(f"{API}/usage/not-an-id", headers=me), 422)

    counters = client.get(f"{API}/usage/counters?subscription_id={sub.id}", headers=me).json()
    by = {c["measure"]: c for c in counters}
    assert by["allowance"]["messages"] == 5 and by["allowance"]["percent"] == 125
    assert by["allowance"]["notified_pct"] == 100
    assert by["quota"]["percent"] == 50 and by["quota"]["allowance_messages"] == 10
    assert_problem(client.get(f"{API}/usage/counters?subscription_id={theirs.id}", headers=me), 404)
    assert_problem(client.get(f"{API}/usage?period=11-2026", headers=me), 422)

    reached = client.get(f"{API}/usage/thresholds", headers=me).json()
    assert [(t["measure"], t["threshold_pct"]) for t in reached] == [
        ("allowance", 50),
        ("allowance", 80),
        ("allowance", 100),
        ("quota", 50),
    ]
    assert {t["subscription_id"] for t in reached} == {str(sub.id)}
    later = client.get(f"{API}/usage/thresholds?after={reached[1]['seq']}", headers=me).json()
    assert len(later) == 2


def test_usage_needs_its_scope(client, world):
    s = shop(world)
    key = world.headers(world.user(s.tenant, Role.CUSTOMER_USER), scopes=["devices:read"])
    assert_problem(client.get(f"{API}/usage", headers=key), 403)


def test_a_threshold_position_beyond_64_bits_is_422_not_500(client, world):
    me = world.admin_headers()
    assert client.get(f"{API}/usage/thresholds?after={2**63 - 1}", headers=me).json() == []
    for after in (2**63, 2662850807553224343552):
        assert_problem(client.get(f"{API}/usage/thresholds?after={after}", headers=me), 422)


def test_a_month_of_usage_records_downloads_as_a_file(client, world, ctx):
    off = offering(ctx, "Metered", [price("recurring", 1_000_000), price("per-message", 20_000)])
    s, sub, theirs = _mine_and_theirs(ctx, world, off, 3)
    me = world.headers(world.user(s.tenant, Role.CUSTOMER_USER))
    clerk = world.headers(world.user(world.operator, Role.BILLING, "clerk"))

    mine = {"period": "2026-11", "billing_account_id": s.account_id}
    r = client.get(f"{API}/usage/csv", headers=me, params=mine)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    name = f"satiot-usage-2026-11-account-{s.account_id.hex[:8]}.csv"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("used_at,dev_eui,direction,bytes,billable_bytes,charge_yuan,")
    assert [line.split(",")[:3] for line in lines[1:]] == [
        [f"2026-11-10 08:0{i}:00", sub.dev_eui, "uplink"] for i in range(3)
    ]
    assert {line.split(",")[5] for line in lines[1:]} == {"0.020000"}

    theirs_csv = {"period": "2026-11", "subscription_id": theirs.id}
    assert_problem(client.get(f"{API}/usage/csv", headers=me, params=theirs_csv), 404)
    staff = client.get(f"{API}/usage/csv", headers=clerk, params=theirs_csv)
    assert staff.status_code == 200 and len(staff.content.decode("utf-8-sig").splitlines()) == 2
    # the whole customer: its one account here, so the same lines as the account's file
    whole = {"period": "2026-11", "customer_id": s.customer_id}
    r = client.get(f"{API}/usage/csv", headers=me, params=whole)
    account_file = client.get(f"{API}/usage/csv", headers=me, params=mine).content
    assert r.status_code == 200 and r.content == account_file, r.text
    name = f"satiot-usage-2026-11-customer-{s.customer_id.hex[:8]}.csv"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
    other = {"period": "2026-11", "customer_id": theirs.customer_id}
    assert_problem(client.get(f"{API}/usage/csv", headers=me, params=other), 404)
    for bad, field in (
        ({"period": "2026-11"}, "billing_account_id"),
        (whole | {"subscription_id": sub.id}, "customer_id"),
        ({"period": "2026-11", "billing_account_id": s.account_id, "state": "lost"}, "state"),
        ({"billing_account_id": s.account_id}, "period"),
    ):
        problem = assert_problem(client.get(f"{API}/usage/csv", headers=me, params=bad), 422)
        assert field in str(problem), problem
