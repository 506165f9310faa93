"""Directional access: a tenant's messages go only where its allow-list says, checked when an
integration is registered and again before every delivery round."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import httpcore
import pytest
from sqlalchemy import select

from satiot.core.errors import InvalidInput
from satiot.core.models import Event
from satiot.network import mqtt_publish
from satiot.network.destinations import Policy, Refused, delivering_for, parse, set_policy
from satiot.network.integrations import update_integration
from satiot.network.models import Delivery, DeliveryAttempt, Integration
from satiot.network.mqtt_publish import MqttPublisher
from satiot.network.target_guard import PublicOnlyBackend
from tests.network.delivery_support import (
    Receiver,
    deliveries,
    dispatch,
    emit_uplink,
    fan_out,
    integration,
    webhook,
)

DEV = "70b3d57ed0000001"


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


# ---- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "host", "port", "allowed"),
    [
        (["iot.example.com"], "iot.example.com", 443, True),
        (["iot.example.com"], "IOT.Example.com.", 8080, True),  # any port, any case
        (["iot.example.com"], "x.iot.example.com", 443, False),  # no subdomains without *.
        (["*.example.com"], "hooks.eu.example.com", 443, True),
        (["*.example.com"], "example.com", 443, False),  # *. is for subdomains only
        (["*.example.com"], "badexample.com", 443, False),
        (["*.example.com:8883"], "mq.example.com", 8883, True),
        (["*.example.com:8883"], "mq.example.com", 1883, False),
        (["203.0.113.10:443"], "203.0.113.10", 443, True),
        (["203.0.113.10:443"], "203.0.113.10", 80, False),
        (["203.0.113.0/24"], "203.0.113.77", 80, True),
        (["203.0.113.0/24"], "203.0.114.1", 80, False),
        (["[2001:db8::10]:443"], "[2001:db8::10]", 443, True),
        (["2001:db8::/48"], "2001:db8:0:ffff::1", 443, True),
        (["203.0.113.0/24"], "::ffff:203.0.113.9", 443, True),  # IPv4 carried in IPv6
        (["::ffff:203.0.113.0/120"], "203.0.113.9", 443, True),  # and listed that way
        (["::ffff:0:0"], "::ffff:0:0", 443, True),
        (["::ffff:198.51.100.1"], "198.51.100.1", 443, True),
        (["::ffff:203.0.113.0/120"], "203.0.114.9", 443, False),
        ([], "iot.example.com", 443, False),
    ],
)
def test_a_target_is_allowed_by_name_or_by_address(entries, host, port, allowed):
    policy = Policy.of(entries)
    refused = policy.refusal(host, port) is not None or policy.needs_addresses(host, port)
    assert refused is not allowed


def test_a_host_name_only_networks_can_allow_is_decided_by_every_address_it_has():
    policy = Policy.of(["203.0.113.0/24"], "SC-2026-000001 v1")
    names = resolver(
        {
            "inside.example.net": ["203.0.113.5", "203.0.113.6"],
            "split.example.net": ["203.0.113.5", "198.51.100.1"],
        }
    )
    policy.check("inside.example.net", 443, resolve=names)
    with pytest.raises(Refused) as refused:
        policy.check("split.example.net", 443, resolve=names)
    assert str(refused.value) == (
        "split.example.net:443 (resolves to 203.0.113.5, 198.51.100.1) is not on the "
        "destination allow-list of SC-2026-000001 v1"
    )
    with pytest.raises(Refused, match="cannot resolve it"):
        policy.check("gone.example.net", 443, resolve=names)


def test_no_contract_in_force_means_nowhere():
    with pytest.raises(Refused, match="no contract in force lists a destination"):
        Policy.of([]).check("203.0.113.10", 443)


@pytest.mark.parametrize("entry", ["", "*.", "a/b", "10.0.0.0/33", "[zz]:1"])
def test_an_entry_that_is_not_canonical_is_refused(entry):
    with pytest.raises(ValueError):
        parse(entry)


# ---- registering an integration ---------------------------------------------------------------


def restrict(ctx, tenant_id, *entries: str) -> None:
    with ctx.db.write() as s:
        set_policy(s, tenant_id, entries, source="SC-2026-000001 v1", at=ctx.clock.now())


def test_a_tenant_without_a_policy_is_not_restricted(ctx, world):
    t = world.tenant()
    assert integration(ctx, world, t.id, "webhook", url="https://a.example.org/h", secret="x" * 16)


def test_an_integration_off_the_allow_list_is_refused_naming_url(ctx, world):
    t = world.tenant()
    restrict(ctx, t.id, "*.example.com:443", "203.0.113.0/24")
    names = resolver(
        {
            "hooks.acme.cn": ["198.51.100.7"],
            "edge.acme.cn": ["203.0.113.20"],
            "iot.example.com": ["198.51.100.8"],
            "mq.example.com": ["198.51.100.9"],
        }
    )
    with pytest.raises(InvalidInput, match="not on the destination allow-list") as bad:
        integration(
            ctx, world, t.id, "webhook", url="https://hooks.acme.cn/in", secret="x" * 16,
            resolve=names,
        )  # fmt: skip
    assert bad.value.extensions["field"] == "url"
    with pytest.raises(InvalidInput, match=r"iot.example.com:80 \(resolves to 198.51.100.8\)"):
        integration(
            ctx, world, t.id, "webhook", url="http://iot.example.com/in", secret="x" * 16,
            resolve=names,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match=r"mq.example.com:8883 \(resolves to 198.51.100.9\)"):
        integration(ctx, world, t.id, "mqtt", url="mqtts://mq.example.com", resolve=names)
    with pytest.raises(InvalidInput, match=r"gone\.acme\.cn:443: cannot resolve it"):
        integration(
            ctx, world, t.id, "webhook", url="https://gone.acme.cn/in", secret="x" * 16,
            resolve=names,
        )  # fmt: skip
    with ctx.db.read() as s:
        assert s.scalars(select(Integration)).all() == []  # nothing was created
    good = "https://iot.example.com/in"
    assert integration(ctx, world, t.id, "webhook", url=good, secret="x" * 16)
    assert integration(
        ctx, world, t.id, "webhook", url="https://edge.acme.cn/in", secret="x" * 16, resolve=names
    )
    assert integration(ctx, world, t.id, "mqtt", url="mqtt://203.0.113.9")


def test_changing_the_url_off_the_allow_list_changes_nothing(ctx, world):
    t = world.tenant()
    restrict(ctx, t.id, "iot.example.com")
    good = "https://iot.example.com/a"
    hook = integration(ctx, world, t.id, "webhook", url=good, secret="x" * 16)
    refused = pytest.raises(InvalidInput, match=r"evil\.example\.org:443 is not on")
    with refused, ctx.db.write() as s:
        update_integration(
            s, world.system, ctx.kek, hook, at=ctx.clock.now(),
            changes={"url": "https://evil.example.org/a"}, allow_private=True,
        )  # fmt: skip
    with ctx.db.read() as s:
        assert s.get(Integration, hook).url == "https://iot.example.com/a"


# ---- delivering -------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_a_narrowed_allow_list_holds_deliveries_until_it_allows_them_again(ctx, world, receiver):
    """The receiver listens on 127.0.0.1, which no contract may list; the policy is written
    directly. When the contract stops covering the target, each device's next message records
    why and nothing is sent; once covered again, everything arrives, in order, once."""
    t = world.tenant()
    restrict(ctx, t.id, "127.0.0.1")
    hook = webhook(ctx, world, t.id, receiver.url)
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    assert dispatch(ctx).delivered == 1

    restrict(ctx, t.id, "iot.example.com")
    for f_cnt in (2, 3):
        emit_uplink(ctx, t.id, DEV, f_cnt)
    fan_out(ctx)
    stats = dispatch(ctx)
    assert (stats.attempted, stats.delivered, len(receiver.requests)) == (1, 0, 1)
    with ctx.db.read() as s:
        (attempt,) = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outcome == "failed"))
        assert "127.0.0.1:" in attempt.error and "not on the destination allow-list" in (
            attempt.error
        )
        assert "SC-2026-000001 v1" in attempt.error

    later = max(d.next_attempt_at for d in deliveries(ctx, hook)) + timedelta(seconds=1)
    assert dispatch(ctx, now=later).attempted == 1  # refused again: no second event
    (refusal,) = changes(ctx)
    assert refusal.type == "integration.destination-refused"
    assert refusal.tenant_id == t.id and refusal.subject_id == str(hook)
    assert refusal.payload["reason"] == attempt.error
    with ctx.db.read() as s:
        assert s.get(Integration, hook).destination_refused == attempt.error

    restrict(ctx, t.id, "127.0.0.1")
    later = max(d.next_attempt_at for d in deliveries(ctx, hook)) + timedelta(seconds=1)
    assert dispatch(ctx, now=later).delivered == 2
    assert [r.json()["f_cnt"] for r in receiver.delivered()] == [1, 2, 3]
    assert {d.status for d in deliveries(ctx, hook)} == {"delivered"}
    _, allowed = changes(ctx)
    assert allowed.type == "integration.destination-allowed"
    assert allowed.payload["refused_before"] == attempt.error
    with ctx.db.read() as s:
        assert s.get(Integration, hook).destination_refused is None


def changes(ctx) -> list[Event]:
    with ctx.db.read() as s:
        return list(
            s.scalars(
                select(Event)
                .where(Event.type.like("integration.destination-%"))
                .order_by(Event.seq)
            )
        )


def test_an_emptied_allow_list_refuses_every_round_without_sending(ctx, world, receiver):
    t = world.tenant()
    hook = webhook(ctx, world, t.id, receiver.url, max_attempts=1)
    restrict(ctx, t.id)
    emit_uplink(ctx, t.id, DEV, 1)
    fan_out(ctx)
    assert dispatch(ctx).dead == 1
    assert receiver.requests == []
    with ctx.db.read() as s:
        dead = s.scalars(select(Delivery).where(Delivery.integration_id == hook)).one()
        assert dead.status == "dead" and "no contract in force" in dead.last_error


# ---- the connection itself --------------------------------------------------------------------


class _Inner:
    """A network backend that records where it was asked to connect instead of connecting."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connected.append((host, port))
        return object()


def _connect(monkeypatch, policy, address: str) -> _Inner:
    """Connect to hooks.acme.cn:443 through the guard, the name resolving to ``address``."""

    async def getaddrinfo(self, host, port, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    inner = _Inner()

    async def main() -> None:
        token = delivering_for.set(policy)
        try:
            await PublicOnlyBackend(inner).connect_tcp("hooks.acme.cn", 443, timeout=5)
        finally:
            delivering_for.reset(token)

    asyncio.run(main())
    return inner


def test_the_connection_checks_the_addresses_it_goes_to(monkeypatch):
    """Between a round's check and the connection the name may resolve elsewhere: the
    guard holds the addresses it is about to use to the tenant's networks."""
    policy = Policy.of(["8.8.8.0/24:443"], "SC-2026-000001 v1")
    assert _connect(monkeypatch, policy, "8.8.8.8").connected == [("8.8.8.8", 443)]
    with pytest.raises(httpcore.ConnectError, match=r"resolves to 1\.1\.1\.1\) is not on"):
        _connect(monkeypatch, policy, "1.1.1.1")
    assert _connect(monkeypatch, None, "1.1.1.1").connected == [("1.1.1.1", 443)]
    by_name = Policy.of(["hooks.acme.cn"])  # a domain entry allows wherever the name points
    assert _connect(monkeypatch, by_name, "1.1.1.1").connected == [("1.1.1.1", 443)]


def test_an_mqtt_connection_checks_the_addresses_it_goes_to(monkeypatch):
    """The same for a customer's own broker: its name resolves to an address off the
    tenant's networks, so the publisher never connects."""
    monkeypatch.setattr(mqtt_publish, "resolve_public", lambda host, port: ["1.1.1.1"])
    publisher = MqttPublisher(timeout_s=2, platform_url=None, allow_private=False)
    policy = Policy.of(["8.8.8.0/24"], "SC-2026-000001 v1")
    try:
        sent = publisher.publish("mqtt://mq.acme.cn", "t/x", b"{}", allowed=policy)
    finally:
        publisher.close()
    assert not sent.ok
    assert sent.error == (
        "connect: mq.acme.cn:1883 (resolves to 1.1.1.1) is not on the destination allow-list "
        "of SC-2026-000001 v1"
    )
    assert publisher._connections == {}
