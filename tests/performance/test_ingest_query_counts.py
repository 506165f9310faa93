"""SQL statements per ingest batch, pinned: the same few whatever the batch holds."""

from __future__ import annotations

from satiot.core.auth.roles import Role
from tests.network.ingest_helpers import T0, add_device, add_station, hours, post, rec
from tests.performance.test_query_counts import count_queries


def _batch(devs, first: int, n: int, copies: int):
    """``n`` new frames spread over ``devs`` (counters from ``first``) plus ``copies`` copies,
    via other satellites, of the devices' frames with counter 0."""
    new = [rec(devs[i % len(devs)].frame(first + i // len(devs))) for i in range(n)]
    old = [
        rec(devs[i % len(devs)].frame(0), satellite=f"SAT-{i}", at=T0 + hours(1))
        for i in range(copies)
    ]
    return new + old


def _statements(ctx, station, items) -> list[str]:
    with count_queries(ctx.db.engine) as seen:
        result = post(ctx, station, items)
    assert not result.rejected
    return [" ".join(q.split()[:3]) for q in seen]


def test_a_batch_costs_the_same_statements_for_10_or_400_receptions(ctx, world):
    tenant = world.tenant()
    devs = [add_device(ctx, world, tenant.id) for _ in range(40)]
    station, _ = add_station(ctx, world)
    post(ctx, station, _batch(devs, 0, 40, 0))  # counter 0 of every device
    small = _statements(ctx, station, _batch(devs, 1, 8, 2))
    large = _statements(ctx, station, _batch(devs, 100, 300, 100))
    # station, devices by DevAddr, stored uplinks by (device, FCnt), INSERT uplinks, INSERT
    # copies of new uplinks, INSERT copies of stored ones, UPDATE their counts, UPDATE
    # devices, UPDATE station; at commit: the event log's head and the events
    assert len(small) == len(large) == 11, large


def test_an_authenticated_post_adds_only_the_credential_lookups(client, ctx, world):
    tenant = world.tenant()
    devs = [add_device(ctx, world, tenant.id) for _ in range(10)]
    station, key = add_station(ctx, world)
    assert world.user(tenant, Role.CUSTOMER_USER)  # not involved: stations post as themselves
    with count_queries(ctx.db.engine) as seen:
        r = client.post(
            f"/api/v1/ground-stations/{station}/receptions",
            json={"receptions": _batch(devs, 0, 50, 0)},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 200 and r.json()["accepted"] == 50, r.text
    # key by prefix, its tenant (a machine key has no user), then the batch: station, devices,
    # stored uplinks, INSERT uplinks, INSERT receptions, UPDATE devices, UPDATE station, log
    # head, events
    assert len(seen) == 11, [" ".join(q.split()[:3]) for q in seen]


def test_a_batch_with_throttled_devices_adds_one_lock_on_postgresql(ctx, world, request):
    """Frames of throttled devices (however many) add one statement on PostgreSQL, the lock
    on their rows that makes admission atomic; SQLite's batch already holds the write lock."""
    from sqlalchemy import update

    from satiot.network.models import Device

    tenant = world.tenant()
    devs = [add_device(ctx, world, tenant.id) for _ in range(20)]
    station, _ = add_station(ctx, world)
    post(ctx, station, _batch(devs, 0, 20, 0))
    with ctx.db.write() as s:
        ids = [d.id for d in devs[:5]]
        s.execute(update(Device).where(Device.id.in_(ids)).values(throttle_gap_s=3600))
    # one new frame per device and copies: nothing is throttled, but five devices are
    seen = _statements(ctx, station, _batch(devs, 1, 20, 10))
    expected = 12 if request.config.getoption("--db") == "postgresql" else 11
    assert len(seen) == expected, seen
    if expected == 12:
        assert any(q.startswith("SELECT devices.id, devices.throttle_gap_s") for q in seen), seen
