"""Signed webhooks against a real HTTP receiver: signature, retries, dead letters, replay,
a long outage, and a slow endpoint that must not hold up anyone else."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import select

from satiot.core.models import Event
from satiot.network import delivery_queue
from satiot.network.delivery_queue import RetryPolicy
from satiot.network.integrations import replay_dead_letters, replay_delivery
from satiot.network.models import DeliveryAttempt
from satiot.network.webhooks import DISPATCHER_NAME, Dispatcher, dispatcher_service, sign
from tests.network.delivery_support import (
    SECRET,
    Receiver,
    deliveries,
    dispatch,
    dispatcher,
    drive,
    emit_downlink,
    emit_uplink,
    fan_out,
    free_port,
    webhook,
)

DEV = "70b3d57ed0000001"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# The verification recipe from docs/network-server.md, as a customer would write it.
def verify(
    secret: bytes, headers: Any, body: bytes, tolerance_s: int = 300, now: float | None = None
) -> bool:
    timestamp = headers["X-Satiot-Timestamp"]
    signed = timestamp.encode() + b"." + body
    expected = "v1=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers["X-Satiot-Signature"]):
        return False
    now = time.time() if now is None else now
    return abs(now - int(timestamp)) <= tolerance_s


def test_a_webhook_is_signed_json_with_the_documented_headers(ctx, world, receiver):
    t = world.tenant()
    webhook(ctx, world, t.id, receiver.url)
    up = emit_uplink(ctx, t.id, DEV, 1)
    down = emit_downlink(ctx, t.id, DEV, "acknowledged")
    fan_out(ctx)
    assert dispatch(ctx).delivered == 2

    first, second = receiver.delivered()
    now = ctx.clock.now().timestamp()
    for got in (first, second):
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["X-Satiot-Timestamp"] == str(int(now))
        assert verify(SECRET.encode(), got.headers, got.body, now=now)
        assert not verify(b"not-the-secret-0123456789", got.headers, got.body, now=now)
        assert not verify(SECRET.encode(), got.headers, got.body + b" ", now=now)
        assert not verify(SECRET.encode(), got.headers, got.body, now=now + 301)  # stale
    assert (first.headers["X-Satiot-Id"], first.headers["X-Satiot-Event"]) == (
        up,
        "uplink.accepted",
    )
    assert first.json()["id"] == up and first.json()["type"] == "uplink.accepted"
    with ctx.db.read() as s:
        event = s.scalars(select(Event).where(Event.type == "uplink.accepted")).one()
    assert first.json() == {**event.payload, "type": "uplink.accepted"}
    assert second.headers["X-Satiot-Id"] == str(down)
    assert second.headers["X-Satiot-Event"] == "downlink.acknowledged"
    assert second.json()["status"] == "acknowledged"


def test_sign_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"id":"x"}'
    mac = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"k" * 16, 1_700_000_000, body) == f"v1={mac}"


def test_failures_back_off_with_full_jitter_then_dead_letter(ctx, world, receiver):
    """Deterministic under a seeded RNG: the waits are exactly the seeded draws, each within
    its exponential ceiling, and the last failure makes a dead letter and a delivery.dead."""
    receiver.status = 503
    t = world.tenant()
    hook = webhook(ctx, world, t.id, receiver.url, max_attempts=6)
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    policy = RetryPolicy(base_s=2, cap_s=600)
    replica = random.Random(11)
    expected = [policy.delay(n, replica) for n in range(1, 6)]

    async def steps(d: Dispatcher) -> list[float]:
        waits = []
        for n in range(1, 7):
            stats = await d.run_once()
            assert stats.attempted == 1, n
            (row,) = deliveries(ctx, hook)
            assert row.attempts == n
            if n < 6:
                wait = (row.next_attempt_at - ctx.clock.now()).total_seconds()
                assert 0 <= wait <= policy.ceiling(n)
                assert (await d.run_once()).attempted == 0  # not due yet
                waits.append(wait)
                ctx.clock.advance(wait)
        return waits

    waits = drive(ctx, steps, seed=11, policy=policy)
    assert waits == pytest.approx(expected, abs=1e-5)
    (row,) = deliveries(ctx, hook)
    assert (row.status, row.attempts) == ("dead", 6)
    assert row.last_error == "HTTP 503"  # never the answer's body (no SSRF read-back)
    with ctx.db.read() as s:
        attempts = s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.at)).all()
        dead = s.scalars(select(Event).where(Event.type == delivery_queue.DEAD_EVENT)).one()
    assert [(a.outcome, a.status_code) for a in attempts] == [("failed", 503)] * 6
    assert all(a.duration_ms >= 0 for a in attempts)
    assert dead.tenant_id == t.id
    assert dead.payload["delivery_id"] == str(row.id) and dead.payload["attempts"] == 6
    assert len(receiver.requests) == 6
    assert len({r.headers["X-Satiot-Id"] for r in receiver.requests}) == 1
    assert dispatch(ctx).attempted == 0  # a dead letter is not tried again


def test_timeouts_and_refused_connections_are_failed_attempts(ctx, world, receiver):
    receiver.delay_s = 5
    t = world.tenant()
    slow = webhook(ctx, world, t.id, receiver.url)
    closed = webhook(ctx, world, t.id, f"http://127.0.0.1:{free_port()}/hook")
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    started = time.monotonic()
    stats = dispatch(ctx, timeout_s=0.5)
    assert time.monotonic() - started < 3
    assert (stats.attempted, stats.retrying) == (2, 2)
    (timed_out,) = deliveries(ctx, slow)
    (refused,) = deliveries(ctx, closed)
    assert timed_out.last_error == "no answer within 0.5s"
    assert refused.last_error.startswith("ConnectError")
    with ctx.db.read() as s:
        durations = {a.error: a.duration_ms for a in s.scalars(select(DeliveryAttempt)).all()}
    assert 400 < durations["no answer within 0.5s"] < 2000


@pytest.mark.parametrize(("status", "ok"), [(200, True), (204, True), (301, False), (404, False)])
def test_only_2xx_counts_as_delivered(ctx, world, receiver, status, ok):
    receiver.status = status
    t = world.tenant()
    hook = webhook(ctx, world, t.id, receiver.url)
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    dispatch(ctx)
    (row,) = deliveries(ctx, hook)
    assert row.status == ("delivered" if ok else "pending")
    assert (row.delivered_at is not None) is ok


def test_replaying_dead_letters_sends_the_same_message_again(ctx, world, receiver):
    receiver.status = 500
    t = world.tenant()
    hook = webhook(ctx, world, t.id, receiver.url, max_attempts=1)
    ids = [emit_uplink(ctx, t.id, f"70b3d57ed000000{n}", n) for n in range(3)]
    fan_out(ctx)
    assert dispatch(ctx).dead == 3
    failed_bodies = {r.headers["X-Satiot-Id"]: r.body for r in receiver.requests}
    receiver.status = 200
    first = deliveries(ctx, hook)[0]

    with ctx.db.write() as s:
        replayed = replay_delivery(s, world.system, hook, first.id, at=ctx.clock.now())
        assert (replayed.status, replayed.attempts) == ("pending", 0)
    assert dispatch(ctx).delivered == 1
    assert [r.headers["X-Satiot-Id"] for r in receiver.delivered()] == [ids[0]]

    with ctx.db.write() as s:
        assert replay_dead_letters(s, world.system, hook, at=ctx.clock.now()) == 2
    assert dispatch(ctx).delivered == 2
    got = {r.headers["X-Satiot-Id"]: r.body for r in receiver.delivered()}
    assert got == failed_bodies  # same ids, byte-identical bodies
    assert all(r.status == "delivered" for r in deliveries(ctx, hook))
    with ctx.db.write() as s:
        assert replay_dead_letters(s, world.system, hook, at=ctx.clock.now()) == 0


def test_an_endpoint_down_for_ten_minutes_then_back_receives_everything_in_order(
    ctx, world, receiver
):
    """Simulated time: five devices' messages interleaved, the endpoint answers 500 for ten
    minutes; afterwards every message arrives exactly once, each device's in acceptance order,
    and during the outage only each device's oldest message was tried."""
    receiver.status = 500
    t = world.tenant()
    hook = webhook(ctx, world, t.id, receiver.url)  # the default 12 attempts
    devices = [f"70b3d57ed00000a{n}" for n in range(5)]
    sent: dict[str, list[str]] = defaultdict(list)
    for f_cnt in range(8):
        for dev in devices:
            sent[dev].append(emit_uplink(ctx, t.id, dev, f_cnt))
            ctx.clock.advance(1)
        sent[devices[f_cnt % 5]].append(str(emit_downlink(ctx, t.id, devices[f_cnt % 5], "sent")))
    fan_out(ctx)
    outage_ends = ctx.clock.now().timestamp() + 600

    async def steps(d: Dispatcher) -> None:
        while ctx.clock.now().timestamp() < outage_ends:
            await d.run_once()
            ctx.clock.advance(5)
        receiver.status = 200
        for _ in range(2000):
            await d.run_once()
            if all(r.status == "delivered" for r in deliveries(ctx, hook)):
                return
            ctx.clock.advance(5)
        raise AssertionError("not everything was delivered")

    drive(ctx, steps, seed=5)
    heads = {ids[0] for ids in sent.values()}
    failed = {r.headers["X-Satiot-Id"] for r in receiver.requests if r.status == 500}
    assert failed == heads
    got = [r.headers["X-Satiot-Id"] for r in receiver.delivered()]
    assert len(got) == len(set(got)) == sum(len(ids) for ids in sent.values())
    by_device: dict[str, list[str]] = defaultdict(list)
    for r in receiver.delivered():
        by_device[r.json()["dev_eui"]].append(r.headers["X-Satiot-Id"])
    assert dict(by_device) == dict(sent)
    assert max(r.attempts for r in deliveries(ctx, hook)) < 12


def test_a_slow_endpoint_does_not_delay_another_tenants_integration(ctx, world):
    """The loop serves each integration as its own task: while one endpoint holds every
    request for seconds, another tenant's messages (old and new) arrive at once."""
    slow, fast = Receiver(delay_s=30), Receiver()
    a, b = world.tenant(), world.tenant()
    webhook(ctx, world, a.id, slow.url)
    webhook(ctx, world, b.id, fast.url)
    for n in range(4):
        emit_uplink(ctx, a.id, f"70b3d57ed000000{n}", 1)
    emit_uplink(ctx, b.id, DEV, 1)
    fan_out(ctx)
    stop = threading.Event()

    async def loop() -> None:
        async with dispatcher(ctx, timeout_s=20) as d:
            await d.run(stop, poll_s=0.02)

    worker = threading.Thread(target=asyncio.run, args=(loop(),))
    worker.start()
    try:
        wait_for(lambda: slow.in_flight == 4, 5)
        wait_for(lambda: len(fast.delivered()) == 1, 2)
        emit_uplink(ctx, b.id, DEV, 2)
        fan_out(ctx)
        started = time.monotonic()
        wait_for(lambda: len(fast.delivered()) == 2, 2)
        assert time.monotonic() - started < 1.0
        assert slow.in_flight == 4 and slow.requests == []  # still hanging all along
        slow.release.set()
        wait_for(lambda: len(slow.delivered()) == 4, 5)
    finally:
        stop.set()
        slow.release.set()
        worker.join(10)
        slow.close()
        fast.close()
    assert not worker.is_alive()


def test_the_dispatcher_service_runs_until_stopped(ctx, world, receiver):
    """What ``satiot up`` runs: the service built from the application context."""
    service = dispatcher_service(poll_s=0.02)
    assert service.name == DISPATCHER_NAME == "network.delivery-dispatcher"
    t = world.tenant()
    webhook(ctx, world, t.id, receiver.url)
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(ctx, stop))
    worker.start()
    try:
        wait_for(lambda: len(receiver.delivered()) == 1, 5)
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()


def wait_for(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
