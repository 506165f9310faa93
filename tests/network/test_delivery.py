"""Fan-out of events to integrations, and the delivery queue's order, leases and settling."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from satiot.core import consumers, events
from satiot.core.clock import ManualClock
from satiot.core.events import consume_batch
from satiot.core.models import Event
from satiot.network import delivery, delivery_queue
from satiot.network.delivery_queue import Outcome, Result, RetryPolicy
from satiot.network.integrations import set_integration_status
from satiot.network.models import Delivery, DeliveryAttempt
from tests.network.delivery_support import (
    Receiver,
    deliveries,
    dispatch,
    emit_downlink,
    emit_uplink,
    fan_out,
    integration,
    webhook,
)

DEV_A, DEV_B = "70b3d57ed0000001", "70b3d57ed0000002"


def delivery_count(ctx) -> int:
    with ctx.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Delivery)) or 0)


def test_consumer_is_registered_by_entry_point():
    found = consumers.registered()
    assert delivery.CONSUMER_NAME in found
    assert found[delivery.CONSUMER_NAME].types == delivery.DELIVERED_TYPES
    assert {"uplink.accepted", "downlink.sent", "downlink.cancelled"} <= delivery.DELIVERED_TYPES


def test_each_event_is_owed_once_to_each_active_integration_of_its_tenant(ctx, world):
    a, b = world.tenant(), world.tenant()
    hook = webhook(ctx, world, a.id, "https://a.example/hook")
    other = integration(ctx, world, a.id, "mqtt", url="mqtt://127.0.0.1:1883")
    b_hook = webhook(ctx, world, b.id, "https://b.example/hook")
    up = emit_uplink(ctx, a.id, DEV_A, 1)
    down = emit_downlink(ctx, a.id, DEV_A, "sent")
    with ctx.db.write() as s:  # not for customers: no tenant, or another type
        events.emit(s, "uplink.accepted", at=ctx.clock.now(), payload={"id": "x"})
        events.emit(s, "device.created", at=ctx.clock.now(), payload={}, tenant_id=a.id)
    fan_out(ctx)

    rows = deliveries(ctx, hook)
    assert [(r.event_type, r.message_id, r.dev_eui, r.status) for r in rows] == [
        ("uplink.accepted", up, DEV_A, "pending"),
        ("downlink.sent", str(down), DEV_A, "pending"),
    ]
    assert rows[0].body["id"] == up and rows[0].body["type"] == "uplink.accepted"
    assert rows[1].body["type"] == "downlink.sent" and rows[1].body["status"] == "sent"
    assert rows[0].event_seq < rows[1].event_seq
    assert rows[0].next_attempt_at == ctx.clock.now() and rows[0].attempts == 0
    assert len(deliveries(ctx, other)) == 2
    assert deliveries(ctx, b_hook) == []


def test_the_body_is_the_event_payload_plus_its_type(ctx, world):
    t = world.tenant()
    hook = webhook(ctx, world, t.id, "https://a.example/hook")
    emit_uplink(ctx, t.id, DEV_A, 9)
    fan_out(ctx)
    with ctx.db.read() as s:
        ev = s.scalars(select(Event).where(Event.type == "uplink.accepted")).one()
    (row,) = deliveries(ctx, hook)
    assert row.body == {**ev.payload, "type": "uplink.accepted"}
    assert list(row.body)[: len(ev.payload)] == list(ev.payload)  # the message's own order


def test_a_notice_without_a_type_gets_one_after_its_own_fields(ctx, world):
    t = world.tenant()
    hook = webhook(ctx, world, t.id, "https://a.example/hook")
    with ctx.db.write() as s:
        events.emit(s, "bill.sent", at=ctx.clock.now(), payload={"z": 1, "a": [2]}, tenant_id=t.id)
        events.emit(s, "subscription.resumed", at=ctx.clock.now(), payload={}, tenant_id=t.id)
        events.emit(s, "device.created", at=ctx.clock.now(), payload={}, tenant_id=t.id)
    fan_out(ctx)
    bodies = [(r.event_type, list(r.body.items())) for r in deliveries(ctx, hook)]
    assert sorted(bodies) == [  # not owed: events customers do not receive
        ("bill.sent", [("z", 1), ("a", [2]), ("type", "bill.sent")]),
        ("subscription.resumed", [("type", "subscription.resumed")]),
    ]


def test_rewinding_the_consumer_owes_nothing_twice(ctx, world):
    t = world.tenant()
    webhook(ctx, world, t.id, "https://a.example/hook")
    for n in range(5):
        emit_uplink(ctx, t.id, DEV_A, n)
    fan_out(ctx)
    assert delivery_count(ctx) == 5
    for forget in (False, True):  # re-read and skipped; then applied again (ON CONFLICT)
        with ctx.db.write() as s:
            events.rewind(s, delivery.CONSUMER_NAME, 0, forget=forget, at=ctx.clock.now())
        with ctx.db.read() as s:
            assert fan_out(ctx) == events.head(s)  # the whole log was read again
        assert delivery_count(ctx) == 5


def test_an_integration_created_after_an_event_is_not_owed_it(ctx, world):
    t = world.tenant()
    emit_uplink(ctx, t.id, DEV_A, 1)
    hook = webhook(ctx, world, t.id, "https://a.example/hook")
    later = emit_uplink(ctx, t.id, DEV_A, 2)
    fan_out(ctx)
    with ctx.db.write() as s:  # not even when the fan-out is replayed from the start
        events.rewind(s, delivery.CONSUMER_NAME, 0, forget=True, at=ctx.clock.now())
    fan_out(ctx)
    assert [r.message_id for r in deliveries(ctx, hook)] == [later]


def test_a_disabled_integration_gets_nothing_and_no_backlog_when_enabled(ctx, world):
    t = world.tenant()
    hook = webhook(ctx, world, t.id, "https://a.example/hook")
    with ctx.db.write() as s:
        set_integration_status(s, world.system, hook, "disabled", at=ctx.clock.now(), reason="x")
    emit_uplink(ctx, t.id, DEV_A, 1)
    fan_out(ctx)
    assert deliveries(ctx, hook) == []
    emit_uplink(ctx, t.id, DEV_A, 2)  # logged while disabled, consumed after re-enabling
    with ctx.db.write() as s:
        set_integration_status(s, world.system, hook, "active", at=ctx.clock.now(), reason=None)
    after = emit_uplink(ctx, t.id, DEV_A, 3)
    fan_out(ctx)
    assert [r.message_id for r in deliveries(ctx, hook)] == [after]


def test_a_fan_out_batch_is_one_statement_whatever_its_size(ctx, world):
    tenants = [world.tenant(), world.tenant()]
    for t in tenants:
        for n in range(3):
            webhook(ctx, world, t.id, f"https://{n}.example/hook")

    def statements_for(n_events: int) -> list[str]:
        for n in range(n_events):
            emit_uplink(ctx, tenants[n % 2].id, f"70b3d57ed00000{n:02x}", n)
        seen: list[str] = []

        def count(conn, cursor, statement, *args):
            seen.append(statement)

        sa_event.listen(ctx.db.engine, "before_cursor_execute", count)
        try:
            assert consume_batch(ctx.db, delivery.consumer(), ctx.clock) >= n_events
        finally:
            sa_event.remove(ctx.db.engine, "before_cursor_execute", count)
        return seen

    statements_for(1)  # the consumer's cursor is created
    few, many = statements_for(4), statements_for(120)
    assert len(few) == len(many)
    assert sum(s.startswith("INSERT INTO deliveries") for s in many) == 1
    assert not any("processed_events" in s for s in many)  # the cursor alone, no marks
    assert delivery_count(ctx) == (1 + 4 + 120) * 3


def test_a_devices_later_message_waits_behind_its_failing_one(ctx, world):
    """Head-of-line per (integration, device) only: device B and other integrations go on."""
    t = world.tenant()
    failing = Receiver(fail_if=lambda body: body["dev_eui"] == DEV_A and body["f_cnt"] == 1)
    fine = Receiver()
    try:
        hook = webhook(ctx, world, t.id, failing.url)
        other = webhook(ctx, world, t.id, fine.url)
        for f_cnt in (1, 2, 3):
            emit_uplink(ctx, t.id, DEV_A, f_cnt)
            emit_uplink(ctx, t.id, DEV_B, f_cnt)
        fan_out(ctx)
        stats = dispatch(ctx)
        assert stats.integrations == 2 and stats.retrying == 1
        sent = [(r.json()["dev_eui"], r.json()["f_cnt"]) for r in failing.requests]
        assert sent.count((DEV_A, 1)) == 1 and (DEV_A, 2) not in sent
        assert [f for d, f in sent if d == DEV_B] == [1, 2, 3]
        assert len(fine.delivered()) == 6
        by_f_cnt = {r.body["f_cnt"]: r for r in deliveries(ctx, hook) if r.dev_eui == DEV_A}
        assert by_f_cnt[1].attempts == 1 and by_f_cnt[1].last_error.startswith("HTTP 500")
        assert by_f_cnt[2].attempts == 0 and by_f_cnt[3].attempts == 0
        assert by_f_cnt[2].next_attempt_at == ctx.clock.now()  # released, not leased
        assert all(r.status == "delivered" for r in deliveries(ctx, other))

        failing.fail_if = None
        ctx.clock.advance(RetryPolicy().cap_s)
        dispatch(ctx)
        got = [(r.json()["dev_eui"], r.json()["f_cnt"]) for r in failing.delivered()]
        assert [f for d, f in got if d == DEV_A] == [1, 2, 3]
    finally:
        failing.close()
        fine.close()


def test_a_claim_leases_whole_lanes_and_a_settle_releases_what_was_not_tried(ctx, world):
    t = world.tenant()
    hook = webhook(ctx, world, t.id, "https://a.example/hook")
    for f_cnt in (1, 2, 3):
        emit_uplink(ctx, t.id, DEV_A, f_cnt)
    fan_out(ctx)
    now = ctx.clock.now()
    target, items = delivery_queue.claim(ctx.db, hook, now, limit=10, timeout_s=5)
    assert target is not None and [i.body["f_cnt"] for i in items] == [1, 2, 3]
    assert delivery_queue.claim(ctx.db, hook, now, limit=10, timeout_s=5)[1] == []  # leased
    assert delivery_queue.due_integrations(ctx.db, now) == []
    leased = deliveries(ctx, hook)[0].next_attempt_at
    assert leased == now + timedelta(seconds=4 * 5 * (1 + 3) + 60)  # 1 wave of 8, lane of 3

    failed = Result(items[0], Outcome(False, error="boom"), now, now)
    settled = delivery_queue.settle(
        ctx.db, target, [failed], items[1:], policy=RetryPolicy(), rng=random.Random(1)
    )
    assert (settled.retrying, settled.released) == (1, 2)
    rows = deliveries(ctx, hook)
    assert now <= rows[0].next_attempt_at <= now + timedelta(seconds=10)
    assert [r.next_attempt_at for r in rows[1:]] == [now, now]
    # Due by their own time, but held behind the backed-off first message.
    assert delivery_queue.claim(ctx.db, hook, now, limit=10, timeout_s=5)[1] == []
    with ctx.db.read() as s:
        (attempt,) = s.scalars(select(DeliveryAttempt)).all()
    assert (attempt.outcome, attempt.error, attempt.delivery_id) == ("failed", "boom", items[0].id)


def test_a_lapsed_lease_is_claimed_again(ctx, world):
    """A dispatcher that died mid-round leaves leases; they lapse and the messages go again."""
    clock: ManualClock = ctx.clock
    t = world.tenant()
    hook = webhook(ctx, world, t.id, "https://a.example/hook")
    emit_uplink(ctx, t.id, DEV_A, 1)
    fan_out(ctx)
    assert len(delivery_queue.claim(ctx.db, hook, clock.now(), limit=10, timeout_s=5)[1]) == 1
    clock.advance(4 * 5 * 2 + 60)
    assert len(delivery_queue.claim(ctx.db, hook, clock.now(), limit=10, timeout_s=5)[1]) == 1


def test_pending_deliveries_of_a_disabled_integration_wait(ctx, world):
    t = world.tenant()
    receiver = Receiver()
    try:
        hook = webhook(ctx, world, t.id, receiver.url)
        emit_uplink(ctx, t.id, DEV_A, 1)
        fan_out(ctx)
        with ctx.db.write() as s:
            set_integration_status(s, world.system, hook, "disabled", at=ctx.clock.now(), reason="")
        assert dispatch(ctx).integrations == 0 and receiver.requests == []
        with ctx.db.write() as s:
            set_integration_status(s, world.system, hook, "active", at=ctx.clock.now(), reason="")
        assert dispatch(ctx).delivered == 1 and len(receiver.delivered()) == 1
    finally:
        receiver.close()


def test_retry_policy_grows_exponentially_to_its_cap_with_full_jitter():
    policy = RetryPolicy(base_s=2, cap_s=600)
    assert [policy.ceiling(n) for n in range(1, 12)] == [
        2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600
    ]  # fmt: skip
    rng = random.Random(3)
    for n in range(1, 12):
        draws = [policy.delay(n, rng) for _ in range(300)]
        assert all(0 <= d <= policy.ceiling(n) for d in draws)
        assert max(draws) > 0.9 * policy.ceiling(n) and min(draws) < 0.1 * policy.ceiling(n)
    one, two = random.Random(42), random.Random(42)
    assert [policy.delay(n, one) for n in range(1, 9)] == [
        policy.delay(n, two) for n in range(1, 9)
    ]
