"""MQTT delivery on the real local Mosquitto (127.0.0.1:1883), watched by a paho subscriber."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid

import pytest

from satiot.network import mqtt_publish
from satiot.network.mqtt_publish import MqttPublisher, topic
from tests.network.delivery_support import (
    deliveries,
    dispatch,
    dispatcher,
    emit_downlink,
    emit_uplink,
    fan_out,
    free_port,
    integration,
)
from tests.network.mqtt_subscriber import Subscriber

BROKER = "mqtt://127.0.0.1:1883"
DEV = "70b3d57ed0000001"


def broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _broker_running() -> None:
    """These tests are the proof that delivery reaches a real broker: a stopped Mosquitto
    fails them (``.ci/run`` starts it) instead of letting them pass unrun."""
    if not broker_up():
        pytest.fail("Mosquitto is not listening on 127.0.0.1:1883; start it (see .ci/run)")


@pytest.fixture
def subscriber_for():
    made: list[Subscriber] = []

    def make(pattern: str) -> Subscriber:
        made.append(Subscriber(pattern))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_topics_per_device_and_kind():
    t = uuid.UUID(int=1)
    assert topic(t, DEV, "uplink.accepted") == f"satiot/tenants/{t}/devices/{DEV}/up"
    assert topic(t, DEV, "downlink.sent") == f"satiot/tenants/{t}/devices/{DEV}/downlinks"
    assert topic(t, None, "downlink.sent") == f"satiot/tenants/{t}/events"


def test_uplinks_and_downlink_statuses_reach_the_platform_broker(ctx, world, subscriber_for):
    t = world.tenant()
    sub = subscriber_for(f"satiot/tenants/{t.id}/#")
    hook = integration(ctx, world, t.id, "mqtt", platform_mqtt_url=BROKER)
    up = emit_uplink(ctx, t.id, DEV, 7)
    down = emit_downlink(ctx, t.id, DEV, "queued")
    fan_out(ctx)
    stats = dispatch(ctx, platform_mqtt_url=BROKER)
    assert stats.delivered == 2

    got = sorted(sub.take(2), key=lambda m: m[0])
    assert got[0][0] == f"satiot/tenants/{t.id}/devices/{DEV}/downlinks"
    assert got[0][1]["type"] == "downlink.queued" and got[0][1]["status"] == "queued"
    assert got[1][0] == f"satiot/tenants/{t.id}/devices/{DEV}/up"
    assert got[1][1]["id"] == up and got[1][1]["f_cnt"] == 7
    rows = deliveries(ctx, hook)
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 1)] * 2
    assert rows[1].message_id == str(down)
    assert sub.messages.empty()  # delivered once each


def test_a_customer_broker_named_by_url_is_used(ctx, world, subscriber_for):
    t = world.tenant()
    sub = subscriber_for(f"satiot/tenants/{t.id}/devices/+/up")
    integration(ctx, world, t.id, "mqtt", url=BROKER)
    up = emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    assert dispatch(ctx, platform_mqtt_url=None).delivered == 1
    ((where, body),) = sub.take(1)
    assert where.endswith(f"/devices/{DEV}/up") and body["id"] == up


def test_an_unreachable_broker_retries_then_dead_letters(ctx, world):
    t = world.tenant()
    hook = integration(
        ctx, world, t.id, "mqtt", url=f"mqtt://127.0.0.1:{free_port()}", max_attempts=2
    )
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    assert dispatch(ctx).retrying == 1
    (row,) = deliveries(ctx, hook)
    assert row.last_error.startswith("connect:")
    ctx.clock.advance(600)
    assert dispatch(ctx).dead == 1
    assert deliveries(ctx, hook)[0].status == "dead"


def test_publisher_waits_for_the_puback_and_reuses_its_connection():
    publisher = MqttPublisher(timeout_s=5, platform_url=BROKER)
    try:
        first = publisher.publish(None, "satiot/tests/puback", b"{}")
        second = publisher.publish(None, "satiot/tests/puback", b"{}")
        assert first.ok and second.ok, (first, second)
        assert len(publisher._connections) == 1
    finally:
        publisher.close()
    missing = MqttPublisher(timeout_s=1, platform_url=None).publish(None, "x", b"{}")
    assert not missing.ok and "no MQTT broker" in (missing.error or "")


def test_a_connection_nothing_publishes_on_is_closed_after_a_while():
    publisher = MqttPublisher(
        timeout_s=5, platform_url=BROKER, allow_private=True, idle_close_s=0.3
    )
    customer = "mqtt://127.0.0.1:1883"
    try:
        assert publisher.publish(None, "satiot/tests/idle", b"{}").ok
        platform = next(iter(publisher._connections.values()))
        assert publisher.publish(customer, "satiot/tests/idle", b"{}", username="acme").ok
        time.sleep(0.5)
        assert publisher.publish(customer, "satiot/tests/idle", b"{}", username="acme").ok
        # the platform broker's connection went idle and was closed; the customer's is in use
        assert platform.broken
        assert [login.username for login in publisher._connections] == ["acme"]
        assert publisher.publish(None, "satiot/tests/idle", b"{}").ok  # and comes back
        assert len(publisher._connections) == 2
    finally:
        publisher.close()


def test_a_hanging_customer_broker_does_not_hold_up_the_platform_broker(ctx, world, subscriber_for):
    """A broker that accepts TCP and never answers CONNECT ties up only its own integration."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    hung, fine = world.tenant(), world.tenant()
    sub = subscriber_for(f"satiot/tenants/{fine.id}/#")
    integration(ctx, world, hung.id, "mqtt", url=f"mqtt://127.0.0.1:{silent.getsockname()[1]}")
    integration(ctx, world, fine.id, "mqtt", platform_mqtt_url=BROKER)
    for n in range(3):
        emit_uplink(ctx, hung.id, f"70b3d57ed000000{n}", 1)
    emit_uplink(ctx, fine.id, DEV, 1)
    fan_out(ctx)
    stop = threading.Event()

    async def loop() -> None:
        async with dispatcher(ctx, timeout_s=3, platform_mqtt_url=BROKER) as d:
            await d.run(stop, poll_s=0.02)

    worker = threading.Thread(target=asyncio.run, args=(loop(),))
    started = time.monotonic()
    worker.start()
    try:
        ((where, _body),) = sub.take(1, timeout_s=2)
        assert where.endswith(f"/devices/{DEV}/up")
        assert time.monotonic() - started < 1.5  # long before the silent broker times out
    finally:
        stop.set()
        worker.join(15)
        silent.close()
    assert not worker.is_alive()


def test_a_broker_name_is_tried_on_each_checked_address_until_one_answers(monkeypatch):
    """A customer's broker whose name has several public addresses, the first down: the
    publisher goes on to the next, as a client connecting to the name would."""
    tried: list[str] = []
    addresses = ["127.0.0.3", "127.0.0.1"]  # nothing listens on the first (refused at once)

    def checked(host: str, port: int) -> list[str]:
        tried.append(host)
        return addresses

    monkeypatch.setattr(mqtt_publish, "resolve_public", checked)
    publisher = MqttPublisher(timeout_s=5, platform_url=None)  # customers' brokers guarded
    try:
        sent = publisher.publish("mqtt://broker.example.com:1883", "satiot/tests/multi", b"{}")
        assert sent.ok, sent
        assert tried == ["broker.example.com"]
        addresses[:] = ["127.0.0.3", "127.0.0.4"]
        publisher.close()
        down = publisher.publish("mqtt://broker.example.com:1883", "satiot/tests/multi", b"{}")
        assert not down.ok and "tried 2 addresses" in (down.error or ""), down
    finally:
        publisher.close()
