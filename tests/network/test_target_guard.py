"""Customers' delivery targets must be public addresses unless the operator allows private
ones: refused at registration when visibly private, and refused at connection time on the
address actually connected to (a name that resolves to 127.0.0.1 never gets a request)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from satiot.core.errors import InvalidInput
from satiot.network.integration_targets import check_webhook_url
from satiot.network.mqtt_publish import MqttPublisher
from satiot.network.target_guard import PrivateTarget, check_host, is_public, public_addresses
from tests.network.delivery_support import (
    Receiver,
    deliveries,
    dispatch,
    emit_uplink,
    fan_out,
    webhook,
)

PRIVATE = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",  # noqa: S104 - an address under test, nothing binds to it
    "224.0.0.1",
    "::1",
    "fe80::1",
    "fd00::1",
    "::ffff:127.0.0.1",
]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_loopback_link_local_and_mapped_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "203.0.114.1"])
def test_public_addresses_are_public(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "http://localhost:8000/hook",
        "http://api.localhost/hook",
        "http://10.0.0.5/hook",
    ],
)
def test_registration_refuses_visibly_private_webhook_urls(url):
    with pytest.raises(InvalidInput) as exc:
        check_webhook_url(url)
    assert exc.value.extensions["field"] == "url"
    assert "SATIOT_DELIVERY_ALLOW_PRIVATE" in exc.value.detail
    assert check_webhook_url(url, allow_private=True) == url


def test_registration_takes_public_names_without_looking_them_up():
    assert (
        check_webhook_url("https://hooks.example.com/satiot") == "https://hooks.example.com/satiot"
    )
    check_host("8.8.8.8")


def test_a_name_resolving_to_any_private_address_is_refused():
    infos = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443)),
    ]
    with pytest.raises(PrivateTarget, match=r"10\.0\.0\.1"):
        public_addresses("mixed.example", infos)
    assert public_addresses("pub.example", infos[:1]) == ["8.8.8.8"]


def test_the_dispatcher_does_not_connect_to_a_name_that_resolves_to_loopback(ctx, world):
    """'localhost' passes registration here (allowed for the set-up), but with the guard on
    the dispatcher resolves it, finds 127.0.0.1 and never sends: a failed attempt, logged."""
    receiver = Receiver()
    try:
        t = world.tenant()
        port = receiver.server.server_address[1]
        iid = webhook(ctx, world, t.id, f"http://localhost:{port}/hook")
        emit_uplink(ctx, t.id, "70b3d57ed0000001", 1)
        fan_out(ctx)
        stats = dispatch(ctx, allow_private=False)
        assert stats.delivered == 0
        assert receiver.requests == []
        (delivery,) = deliveries(ctx, iid)
        assert delivery.attempts == 1
        assert "not a public address" in (delivery.last_error or "")
        # The same target with the operator's permission is delivered to.
        assert dispatch(ctx, now=delivery.next_attempt_at, allow_private=True).delivered == 1
        assert len(receiver.delivered()) == 1
    finally:
        receiver.close()


def test_a_customer_mqtt_broker_on_loopback_is_refused_but_the_platform_broker_is_not():
    guarded = MqttPublisher(timeout_s=2, platform_url="mqtt://127.0.0.1:1883")
    try:
        refused = guarded.publish("mqtt://localhost:1883", "satiot/x", b"{}")
        assert not refused.ok and "not a public address" in (refused.error or "")
        assert guarded.publish(None, "satiot/x", b"{}").ok  # the operator's own broker
    finally:
        guarded.close()
