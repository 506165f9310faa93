"""Rating: prices, allowances, pools, quotas, prepaid debits, thresholds, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import event as sa_event
from sqlalchemy import select

from satiot.bss import rating_sql
from satiot.bss.housekeeping import lift_quota_suspensions
from satiot.bss.models import BillingAccount, Subscription, UsageCounter, UsageRecord
from satiot.bss.payments import top_up
from satiot.bss.rating import CONSUMER_NAME, THROTTLE_GAP_S, Rater
from satiot.bss.subscriptions import change_offering
from satiot.core import events
from satiot.core.models import Event
from satiot.network.models import Device
from satiot.network.mqtt_publish import topic
from tests.bss.billing_world import downlink_sent, offering, price, rate_all, shop, uplink
from tests.network.delivery_support import deliveries, fan_out, webhook
from tests.network.ingest_helpers import add_device

T = datetime(2026, 11, 10, 4, 0, tzinfo=UTC)


def _records(ctx):
    with ctx.db.read() as s:
        return list(s.scalars(select(UsageRecord).order_by(UsageRecord.occurred_at)))


def _events(ctx, type_):
    with ctx.db.read() as s:
        return list(s.scalars(select(Event).where(Event.type == type_).order_by(Event.seq)))


def _pay_per_use(ctx):
    return offering(
        ctx,
        "Pay per use",
        [
            price("per-message", 20_000),  # ¥0.02 per message
            price("per-byte", 100, min_billable_bytes=50, applies_to="uplink"),  # ¥0.0001 per B
            price("per-byte", 300, applies_to="downlink"),
        ],
    )


def test_per_message_and_per_byte_with_a_minimum_billable_size(world):
    ctx = world.ctx
    s = shop(world)
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    uplink(ctx, sub, 10, T)  # billed as 50 bytes
    uplink(ctx, sub, 80, T + timedelta(minutes=1))
    downlink_sent(ctx, sub, 8, T + timedelta(minutes=2))
    rate_all(ctx)
    recs = _records(ctx)
    assert [(r.kind, r.bytes, r.billable_bytes, r.charge_micros) for r in recs] == [
        ("uplink", 10, 50, 20_000 + 50 * 100),
        ("uplink", 80, 80, 20_000 + 80 * 100),
        ("downlink", 8, 8, 20_000 + 8 * 300),
    ]
    assert {r.state for r in recs} == {"rated"}
    assert {r.period for r in recs} == {"2026-11"}
    assert all(r.offering_id == sub.offering_id for r in recs)


def test_usage_belongs_to_the_beijing_month(world):
    ctx = world.ctx
    s = shop(world)
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    uplink(ctx, sub, 1, datetime(2026, 11, 30, 15, 59, tzinfo=UTC))  # 23:59 in Beijing
    uplink(ctx, sub, 1, datetime(2026, 11, 30, 16, 0, tzinfo=UTC))  # 00:00 on 1 December
    rate_all(ctx)
    assert [r.period for r in _records(ctx)] == ["2026-11", "2026-12"]


def test_a_business_zone_with_summer_time_names_months_by_its_own_clock(world):
    ctx = world.ctx
    s = shop(world)
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=40))
    uplink(ctx, sub, 1, datetime(2026, 10, 31, 22, 30, tzinfo=UTC))  # 23:30 in Berlin (CET)
    uplink(ctx, sub, 1, datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # 00:30 on 1 November
    uplink(ctx, sub, 1, datetime(2026, 6, 30, 22, 30, tzinfo=UTC))  # 00:30 on 1 July (CEST)
    with ctx.db.write() as w:
        Rater("Europe/Berlin").rate_range(w, 0, events.head(w))
    assert [r.period for r in _records(ctx)] == ["2026-07", "2026-10", "2026-11"]


def test_a_device_without_a_live_subscription_is_rejected_and_not_charged(world):
    ctx = world.ctx
    s = shop(world)
    off = _pay_per_use(ctx)
    ended = s.device(off, T - timedelta(days=40), status="terminated")
    pending = s.device(off, None, status="pendingActive")
    uplink(ctx, ended, 20, T)
    uplink(ctx, pending, 20, T)
    rate_all(ctx)
    recs = _records(ctx)
    assert [(r.state, r.reason, r.charge_micros) for r in recs] == [
        ("rejected", "no-subscription", 0),
        ("rejected", "not-active", 0),
    ]
    assert recs[0].subscription_id is None and recs[0].dev_eui == ended.dev_eui


def test_rating_is_idempotent_by_event_id(world):
    ctx = world.ctx
    s = shop(world)
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    for i in range(5):
        uplink(ctx, sub, 20, T + timedelta(minutes=i))
    rate_all(ctx)
    with ctx.db.write() as w:  # replay everything, forgetting the processed marks
        events.rewind(w, CONSUMER_NAME, 0, forget=True, at=T)
    rate_all(ctx)
    assert len(_records(ctx)) == 5
    with ctx.db.read() as r:
        counter = r.scalar(select(UsageCounter).where(UsageCounter.bucket == f"sub:{sub.id}"))
    assert counter is not None and counter.messages == 5


def test_own_allowance_then_overage_at_the_usage_price_and_thresholds(world):
    ctx = world.ctx
    s = shop(world)
    off = offering(
        ctx,
        "Bundle 4",
        [
            price("recurring", 5_000_000, allowance_messages=4, allowance_bytes=100),
            price("per-message", 10_000),
            price("per-byte", 1_000),
        ],
    )
    sub = s.device(off, T - timedelta(days=5))
    for i, size in enumerate([30, 30, 30, 30, 30]):
        uplink(ctx, sub, size, T + timedelta(minutes=i))
    rate_all(ctx)
    charges = [r.charge_micros for r in _records(ctx)]
    # messages 1-4 are included; bytes: 100 included (30+30+30+10), then 20 + 30 over
    assert charges == [0, 0, 0, 20 * 1_000, 10_000 + 30 * 1_000]
    thresholds = [e.payload["threshold_pct"] for e in _events(ctx, "usage.threshold")]
    assert thresholds == [50, 80, 100]
    ev = _events(ctx, "usage.threshold")[0]
    assert ev.tenant_id == s.tenant.id and ev.payload["measure"] == "allowance"
    assert ev.payload["subscription_id"] == str(sub.id)


def test_thresholds_and_suspensions_are_pushed_to_the_customers_integrations(world):
    """Not only polled: the webhook (or MQTT) integration is owed each notice."""
    ctx = world.ctx
    s = shop(world, quota_messages=2, quota_action="suspend")
    hook = webhook(ctx, world, s.tenant.id, "https://hooks.example.com/satiot")
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    for i in range(3):
        uplink(ctx, sub, 10, T + timedelta(minutes=i))
    rate_all(ctx)
    fan_out(ctx)
    owed = [(d.event_type, d.body.get("threshold_pct")) for d in deliveries(ctx, hook)]
    notices = [o for o in owed if o[0] != "uplink.accepted"]
    assert notices == [
        ("usage.threshold", 50),
        ("usage.threshold", 80),
        ("usage.threshold", 100),
        ("subscription.suspended", None),
    ]
    assert topic(s.tenant.id, None, "usage.threshold").endswith("/events")


def test_a_pooled_allowance_is_shared_by_the_accounts_devices(world):
    ctx = world.ctx
    s = shop(world)
    off = offering(
        ctx,
        "Pool 2",
        [
            price("recurring", 3_000_000, allowance_messages=2, pooled=True),
            price("per-message", 50_000),
        ],
    )
    a = s.device(off, T - timedelta(days=5))
    b = s.device(off, T - timedelta(days=5))
    for i in range(4):
        uplink(ctx, a, 10, T + timedelta(minutes=i))
    uplink(ctx, b, 10, T + timedelta(minutes=9))
    rate_all(ctx)
    assert [r.charge_micros for r in _records(ctx)] == [0, 0, 0, 0, 50_000]
    with ctx.db.read() as r:
        pool = r.scalar(
            select(UsageCounter).where(UsageCounter.bucket == f"pool:{s.account_id}:{off}")
        )
    assert pool is not None and (pool.messages, pool.allowance_messages) == (5, 4)
    pool_events = [
        e for e in _events(ctx, "usage.threshold") if e.payload["bucket"].startswith("pool")
    ]
    assert [e.payload["threshold_pct"] for e in pool_events] == [50, 80, 100]
    assert pool_events[0].payload["subscription_id"] is None


def test_a_rater_counts_a_pool_again_only_when_a_device_joins_or_leaves_it(world, monkeypatch):
    """Pool sizes are kept between batches (counting a large pool costs as much as rating a
    batch); a change of offering, like an activation or a termination, has them counted again,
    and the next message sees the larger allowance."""
    ctx = world.ctx
    s = shop(world)
    pool = offering(
        ctx,
        "Pool 2b",
        [
            price("recurring", 3_000_000, allowance_messages=2, pooled=True),
            price("per-message", 50_000),
        ],
    )
    a = s.device(pool, T - timedelta(days=5))
    b = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    counted: list[int] = []
    real = rating_sql.member_counts
    monkeypatch.setattr(
        rating_sql,
        "member_counts",
        lambda conn, pools: counted.append(len(pools)) or real(conn, pools),
    )
    rater, done = Rater(), [0]

    def rate(uplinks: int, minute: int) -> None:
        for i in range(uplinks):
            uplink(ctx, a, 10, T + timedelta(minutes=minute + i))
        with ctx.db.write() as w:
            last = events.head(w)
            rater.rate_range(w, done[0], last)
        done[0] = last

    rate(2, 0)  # the allowance of one device: two free messages
    rate(1, 10)  # no device came or went: the pool is not counted again
    assert counted == [1]
    with ctx.db.write() as w:
        change_offering(w, world.system, b.id, pool, at=T + timedelta(minutes=15))
    rate(1, 20)  # b joined: four messages in the pool's allowance, the fourth is free
    assert counted == [1, 1]
    assert [r.charge_micros for r in _records(ctx)] == [0, 0, 50_000, 0]


def test_a_message_tagged_with_another_tenant_is_rejected_and_counts_nowhere(world):
    ctx = world.ctx
    s = shop(world)
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    stranger = world.tenant()
    uplink(ctx, sub, 10, T, tenant_id=stranger.id)
    rate_all(ctx)
    [rec] = _records(ctx)
    assert (rec.state, rec.reason, rec.charge_micros) == ("rejected", "tenant-mismatch", 0)
    assert (rec.subscription_id, rec.billing_account_id, rec.tenant_id) == (
        None,
        None,
        stranger.id,
    )
    with ctx.db.read() as r:
        assert r.scalars(select(UsageCounter)).all() == []


def test_a_pool_holds_the_allowance_of_every_device_subscribed_in_the_month(world):
    ctx = world.ctx
    s = shop(world)
    off = offering(
        ctx, "Pool 10", [price("recurring", 1_000_000, allowance_messages=10, pooled=True)]
    )
    sender = s.device(off, T - timedelta(days=40))
    s.device(off, T - timedelta(days=40), terminated_at=T - timedelta(days=3), status="terminated")
    s.device(off, T - timedelta(days=60), terminated_at=T - timedelta(days=35), status="terminated")
    s.device(off, datetime(2026, 12, 5, tzinfo=UTC))  # activated next month
    uplink(ctx, sender, 10, T)
    rate_all(ctx)
    with ctx.db.read() as r:
        pool = r.scalar(select(UsageCounter).where(UsageCounter.bucket.startswith("pool:")))
    # the sender and the device terminated this month; not last month's, not next month's
    assert pool is not None and (pool.messages, pool.allowance_messages) == (1, 20)


def test_quota_cap_with_suspend_rejects_the_excess_and_suspends(world):
    ctx = world.ctx
    s = shop(world, quota_messages=3, quota_action="suspend")
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    for i in range(5):
        uplink(ctx, sub, 10, T + timedelta(minutes=i))
    rate_all(ctx, batch_size=2)  # the cap is reached across batches
    recs = _records(ctx)
    assert [r.state for r in recs] == ["rated", "rated", "rated", "rejected", "rejected"]
    assert recs[-1].reason == "quota-exceeded" and recs[-1].charge_micros == 0
    with ctx.db.read() as r:
        got = r.get(Subscription, sub.id)
        assert got is not None and (got.status, got.suspended_by) == ("suspended", "quota")
    assert len(_events(ctx, "subscription.suspended")) == 1
    # "until the next month": nothing lifts it this month, the first run in December does
    assert lift_quota_suspensions(ctx.db, T + timedelta(days=10)) == []
    assert lift_quota_suspensions(ctx.db, datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == [sub.id]
    with ctx.db.read() as r:
        got = r.get(Subscription, sub.id)
        assert got is not None and (got.status, got.suspended_by) == ("active", None)
    quota = [e.payload for e in _events(ctx, "usage.threshold") if e.payload["measure"] == "quota"]
    assert [q["threshold_pct"] for q in quota] == [50, 80, 100]


def test_quota_cap_with_throttle_rejects_until_the_month_ends(world):
    ctx = world.ctx
    s = shop(world, quota_bytes=100, quota_action="throttle")
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    network_device = add_device(ctx, world, s.tenant.id)
    with ctx.db.write() as w:
        w.get(Subscription, sub.id).device_id = network_device.id
    sub.device_id = network_device.id
    for i, size in enumerate([60, 60, 10]):
        uplink(ctx, sub, size, T + timedelta(minutes=i))
    rate_all(ctx)
    assert [r.state for r in _records(ctx)] == ["rated", "rejected", "rejected"]
    with ctx.db.read() as r:
        assert r.get(Subscription, sub.id).throttled is True
        # the network server enforces it: one message an hour from now on
        assert r.get(Device, sub.device_id).throttle_gap_s == THROTTLE_GAP_S == 3600
    uplink(ctx, sub, 10, datetime(2026, 12, 2, tzinfo=UTC))
    rate_all(ctx)
    assert _records(ctx)[-1].state == "rated"
    with ctx.db.read() as r:
        assert r.get(Subscription, sub.id).throttled is False
        assert r.get(Device, sub.device_id).throttle_gap_s is None


def test_a_quota_reached_exactly_refuses_even_an_empty_message(world):
    ctx = world.ctx
    s = shop(world, quota_bytes=100, quota_action="suspend")
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    uplink(ctx, sub, 10, T)  # 50 billable bytes each: the cap is reached exactly
    uplink(ctx, sub, 10, T + timedelta(minutes=1))
    downlink_sent(ctx, sub, 0, T + timedelta(minutes=2))  # no billable bytes at all
    rate_all(ctx)
    assert [(r.state, r.reason) for r in _records(ctx)] == [
        ("rated", None),
        ("rated", None),
        ("rejected", "quota-exceeded"),
    ]


def test_quota_notify_only_announces(world):
    ctx = world.ctx
    s = shop(world, quota_messages=2, quota_action="notify")
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    for i in range(3):
        uplink(ctx, sub, 10, T + timedelta(minutes=i))
    rate_all(ctx)
    assert {r.state for r in _records(ctx)} == {"rated"}
    assert [e.payload["threshold_pct"] for e in _events(ctx, "usage.threshold")] == [50, 80, 100]


def test_prepaid_balance_is_debited_and_zero_stops_the_service(world):
    ctx = world.ctx
    s = shop(world, payment_mode="prepaid", balance=50_000, stop_at_zero_balance=True)
    off = offering(ctx, "Prepaid per message", [price("per-message", 20_000)])
    a = s.device(off, T - timedelta(days=5))
    b = s.device(off, T - timedelta(days=5))
    uplink(ctx, a, 10, T)
    uplink(ctx, a, 10, T + timedelta(minutes=1))
    rate_all(ctx)
    with ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros == 10_000
        assert r.get(Subscription, a.id).status == "active"
    uplink(ctx, b, 10, T + timedelta(minutes=2))
    rate_all(ctx)
    with ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros == -10_000
        assert {r.get(Subscription, x.id).status for x in (a, b)} == {"suspended"}
        assert {r.get(Subscription, x.id).suspended_by for x in (a, b)} == {"balance"}
    # a top-up that leaves the balance at or below zero changes nothing; one above zero
    # brings the service back
    for amount, reference in ((10_000, "T-1"), (30_000, "T-2")):
        with ctx.db.write() as w:
            top_up(
                w,
                world.system,
                s.account_id,
                amount_micros=amount,
                method="bank-transfer",
                reference=reference,
                at=T + timedelta(hours=1),
            )
        with ctx.db.read() as r:
            statuses = {r.get(Subscription, x.id).status for x in (a, b)}
        assert statuses == ({"suspended"} if reference == "T-1" else {"active"})


def test_prepaid_without_stop_keeps_running_below_zero(world):
    ctx = world.ctx
    s = shop(world, payment_mode="prepaid", balance=0)
    sub = s.device(offering(ctx, "P", [price("per-message", 20_000)]), T - timedelta(days=5))
    uplink(ctx, sub, 10, T)
    rate_all(ctx)
    with ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros == -20_000
        assert r.get(Subscription, sub.id).status == "active"


def test_a_batch_costs_the_same_queries_whatever_its_size(world):
    ctx = world.ctx
    s = shop(world)
    off = _pay_per_use(ctx)
    subs = [s.device(off, T - timedelta(days=5)) for _ in range(20)]

    def selects_for(n_events: int) -> int:
        for i in range(n_events):
            uplink(ctx, subs[i % len(subs)], 10, T + timedelta(seconds=i))
        count = 0

        def count_selects(conn, cursor, statement, *args):
            nonlocal count
            if statement.lstrip().upper().startswith("SELECT"):
                count += 1

        sa_event.listen(ctx.db.engine, "before_cursor_execute", count_selects)
        try:
            rate_all(ctx, batch_size=1000)
        finally:
            sa_event.remove(ctx.db.engine, "before_cursor_execute", count_selects)
        return count

    assert selects_for(5) == selects_for(200)


def test_only_sent_downlinks_and_accepted_uplinks_are_rated_sized_from_base64(world):
    ctx = world.ctx
    s = shop(world)
    with ctx.db.write() as w:
        for type_, payload in (
            ("downlink.queued", {"dev_eui": "a1", "payload": "AAAA"}),
            ("uplink.accepted", {"dev_eui": "a1", "payload": "AAE=", "received_at": "bad"}),
            ("uplink.accepted", {"dev_eui": 7, "payload": "AAAA"}),  # not a DevEUI: ignored
        ):
            events.emit(w, type_, at=T, payload=payload, tenant_id=s.tenant.id)
    rate_all(ctx)
    [rec] = _records(ctx)
    # an unreadable time falls back to the event's own time
    assert (rec.bytes, rec.dev_eui, rec.period, rec.occurred_at) == (2, "A1", "2026-11", T)
    assert (rec.state, rec.reason) == ("rejected", "no-subscription")


def test_a_usage_record_is_named_by_its_event(world):
    ctx = world.ctx
    s = shop(world)
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=5))
    event_id = uplink(ctx, sub, 10, T)
    rate_all(ctx)
    [rec] = _records(ctx)
    assert rec.id == rec.event_id == event_id


def test_rating_an_empty_range_does_nothing(db):
    with db.write() as s:
        assert Rater().rate_range(s, 0, 0).rated == 0


def test_a_time_with_a_zone_offset_counts_at_its_instant(world):
    """A payload time written in Beijing time is that instant, not the event's own time: its
    month is the business month it falls in."""
    ctx = world.ctx
    s = shop(world)
    sub = s.device(_pay_per_use(ctx), T - timedelta(days=40))
    at = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=8)))  # 16:30 UTC, 30 Nov
    with ctx.db.write() as w:
        payload = {"dev_eui": sub.dev_eui, "payload": "AAAA", "received_at": at.isoformat()}
        events.emit(w, "uplink.accepted", at=T, payload=payload, tenant_id=s.tenant.id)
    rate_all(ctx)
    [rec] = _records(ctx)
    assert (rec.occurred_at, rec.period, rec.state) == (at, "2026-12", "rated")
