"""MQTT delivery to a customer's own broker over TLS with a login, on a real Mosquitto that
refuses anonymous clients (see tls_broker.py)."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from satiot.network import mqtt_publish
from satiot.network.ingest_mqtt import Listener
from satiot.network.mqtt_publish import MqttPublisher
from satiot.network.mqtt_tls import read_ca_file
from tests.network.delivery_support import deliveries, dispatch, emit_uplink, fan_out, integration
from tests.network.ingest_helpers import add_device, add_station, rec
from tests.network.mqtt_subscriber import Subscriber
from tests.network.tls_broker import (
    TlsBroker,
    other_ca_pem,
    tls_subscriber,
)

DEV = "70b3d57ed0000001"
LOGINS = {
    "acme-app": "correct horse battery staple",
    "watcher": "watcher-pass-0123",
    "satiot-server": "server-pass-0123",
    "station-1": "station-pass-0123",
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    started = TlsBroker(tmp_path_factory.mktemp("mosquitto-tls"), LOGINS).start()
    yield started
    started.stop()


@pytest.fixture
def subscriber(broker):
    made: list[Subscriber] = []

    def make(pattern: str) -> Subscriber:
        made.append(tls_subscriber(broker, "watcher", pattern))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _own_broker(ctx, world, broker, tenant_id, **options):
    options = {
        "url": broker.url,
        "username": "acme-app",
        "password": LOGINS["acme-app"],
        "ca_pem": broker.pki.ca_pem,
    } | options
    return integration(ctx, world, tenant_id, "mqtt", **options)


def test_a_message_published_over_tls_with_the_login_arrives(ctx, world, broker, subscriber):
    t = world.tenant()
    sub = subscriber(f"satiot/tenants/{t.id}/#")
    hook = _own_broker(ctx, world, broker, t.id)
    up = emit_uplink(ctx, t.id, DEV, 3)
    fan_out(ctx)
    stats = dispatch(ctx, platform_mqtt_url=None)
    assert stats.delivered == 1, deliveries(ctx, hook)[0].last_error
    ((where, body),) = sub.take(1)
    assert where == f"satiot/tenants/{t.id}/devices/{DEV}/up"
    assert body["id"] == up and body["f_cnt"] == 3
    assert [(r.status, r.attempts) for r in deliveries(ctx, hook)] == [("delivered", 1)]


def test_a_refused_password_is_a_failed_delivery_with_its_reason(ctx, world, broker):
    t = world.tenant()
    hook = _own_broker(ctx, world, broker, t.id, password="not the password", max_attempts=2)
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    first = dispatch(ctx, timeout_s=5)
    assert first.retrying == 1
    (row,) = deliveries(ctx, hook)
    assert "refused the login" in row.last_error and "username and password" in row.last_error
    assert "not the password" not in row.last_error
    ctx.clock.advance(600)
    assert dispatch(ctx, timeout_s=5).dead == 1
    assert deliveries(ctx, hook)[0].status == "dead"


def test_a_refused_login_answers_at_once_not_after_the_timeout(broker):
    publisher = MqttPublisher(timeout_s=10, platform_url=None, allow_private=True)
    try:
        out = publisher.publish(
            broker.url,
            "satiot/x",
            b"{}",
            username="acme-app",
            password="wrong",
            ca_pem=broker.pki.ca_pem,
        )
    finally:
        publisher.close()
    assert not out.ok and "refused the login" in (out.error or "")
    assert out.duration_ms < 5000


@pytest.mark.parametrize("ca", ["other", "system"])
def test_a_certificate_from_a_ca_not_trusted_fails_the_delivery(ctx, world, broker, ca):
    t = world.tenant()
    ca_pem = other_ca_pem() if ca == "other" else None
    hook = _own_broker(ctx, world, broker, t.id, ca_pem=ca_pem)
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    assert dispatch(ctx).retrying == 1
    (row,) = deliveries(ctx, hook)
    assert row.last_error.startswith("connect: TLS: the broker's certificate is not trusted")
    assert "certificate" in row.last_error


def test_without_credentials_the_broker_refuses(ctx, world, broker):
    t = world.tenant()
    hook = _own_broker(ctx, world, broker, t.id, username=None, password=None)
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    assert dispatch(ctx).retrying == 1
    assert "refused" in deliveries(ctx, hook)[0].last_error


def test_tls_to_the_checked_address_verifies_the_url_host_name(broker, monkeypatch):
    """With the guard on, the connection goes to the address the guard checked, and TLS still
    names and verifies the url's host: the certificate names only ``localhost``, no IP."""
    looked_up: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]  # as if checked public

    monkeypatch.setattr(mqtt_publish, "resolve_public", resolve)
    publisher = MqttPublisher(timeout_s=5, platform_url=None, allow_private=False)
    login = {"username": "acme-app", "password": LOGINS["acme-app"], "ca_pem": broker.pki.ca_pem}
    try:
        ok = publisher.publish(broker.url, "satiot/tests/tls", b"{}", **login)
        assert ok.ok, ok.error
        (conn,) = publisher._connections.values()
        assert conn.client.host == "127.0.0.1"  # TCP went to the checked address
        other_name = f"mqtts://broker.example.net:{broker.port}"
        wrong = publisher.publish(other_name, "satiot/tests/tls", b"{}", **login)
    finally:
        publisher.close()
    assert looked_up == ["localhost", "broker.example.net"]
    assert not wrong.ok and "not trusted" in (wrong.error or "")
    assert "broker.example.net" in (wrong.error or "")  # the name was checked, and failed


def test_integrations_with_different_logins_never_share_a_connection(broker):
    publisher = MqttPublisher(timeout_s=5, platform_url=None, allow_private=True)
    try:
        for user in LOGINS:
            out = publisher.publish(
                broker.url,
                "satiot/tests/tls",
                b"{}",
                username=user,
                password=LOGINS[user],
                ca_pem=broker.pki.ca_pem,
            )
            assert out.ok, out.error
        assert sorted(c.username for c in publisher._connections) == sorted(LOGINS)
        assert all(LOGINS[u] not in repr(c) for c in publisher._connections for u in LOGINS)
    finally:
        publisher.close()


def test_the_platform_broker_url_carries_its_login():
    publisher = MqttPublisher(timeout_s=1, platform_url="mqtts://satiot:pw-123@broker.internal")
    login = publisher.login_for(None)
    assert (login.host, login.port, login.tls) == ("broker.internal", 8883, True)
    assert (login.username, login.password, login.guarded) == ("satiot", "pw-123", False)


# ---- the platform's own broker behind a private CA (SATIOT_MQTT_CA_FILE) -----------------------


def _platform(ctx, broker, ca_file):
    url = f"mqtts://satiot-server:{LOGINS['satiot-server']}@localhost:{broker.port}"
    ctx.settings = ctx.settings.model_copy(update={"mqtt_url": url, "mqtt_ca_file": ca_file})
    return ctx


def _listening(ctx, root):
    listener = Listener(ctx, root=root, client_id=f"satiot-ingest-{uuid.uuid4().hex[:8]}")
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), kwargs={"retry_wait_s": 0.2})
    thread.start()
    return listener, stop, thread


def test_stations_publish_to_a_platform_broker_with_a_private_ca(ctx, world, broker, tmp_path):
    """The listener trusts the CA file; a station's batch over TLS is ingested and answered,
    and the delivery publisher reaches the same broker with the same CA."""
    _platform(ctx, broker, broker.ca_file)
    root = f"test-{uuid.uuid4().hex[:10]}"
    station, _ = add_station(ctx, world)
    dev = add_device(ctx, world, world.tenant().id)
    answers = tls_subscriber(broker, "watcher", f"{root}/gs/+/up/result")
    listener, stop, thread = _listening(ctx, root)
    try:
        assert listener.subscribed.wait(10), "the listener did not connect over TLS"
        publisher = MqttPublisher(
            timeout_s=5,
            platform_url=f"mqtts://station-1:{LOGINS['station-1']}@localhost:{broker.port}",
            platform_ca_pem=read_ca_file(broker.ca_file),
        )
        try:
            body = json.dumps({"receptions": [rec(dev.frame(1))], "batch_id": "b-1"}).encode()
            sent = publisher.publish(None, f"{root}/gs/{station}/up", body)
            assert sent.ok, sent.error
        finally:
            publisher.close()
        ((topic, answer),) = answers.take(1, timeout_s=15)
        assert topic == f"{root}/gs/{station}/up/result"
        assert (answer["accepted"], answer["batch_id"]) == (1, "b-1")
    finally:
        stop.set()
        thread.join(10)
        answers.close()


def test_without_the_ca_file_the_listener_does_not_trust_the_broker(ctx, broker):
    _platform(ctx, broker, None)
    listener, stop, thread = _listening(ctx, f"test-{uuid.uuid4().hex[:10]}")
    try:
        assert not listener.subscribed.wait(3)
    finally:
        stop.set()
        thread.join(10)


def test_a_ca_file_that_cannot_serve_stops_the_listener_at_start(ctx, broker, tmp_path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match=r"SATIOT_MQTT_CA_FILE .*nope\.pem: cannot be read"):
        Listener(_platform(ctx, broker, missing))
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMC4CAQA=\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="holds a private key"):
        Listener(_platform(ctx, broker, key))
    plain = ctx.settings.model_copy(
        update={"mqtt_url": "mqtt://127.0.0.1:1883", "mqtt_ca_file": broker.ca_file}
    )
    ctx.settings = plain
    with pytest.raises(ValueError, match="is for TLS"):
        Listener(ctx)
