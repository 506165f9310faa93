"""Network data for the console's pages: two customers with devices, messages that came in
through real ingest, a planned downlink, and an integration with a dead letter each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from satiot.api.context import AppContext
from satiot.core.auth.roles import Role
from satiot.core.ids import new_id
from satiot.network import integrations
from satiot.network.models import Delivery, Downlink
from tests.factories import World
from tests.network.ingest_helpers import Dev, add_device, add_station, post, rec


@dataclass
class Customer:
    tenant_id: uuid.UUID
    name: str
    device: Dev
    integration_id: uuid.UUID
    dead_letter_id: uuid.UUID
    downlink_id: uuid.UUID


@dataclass
class NetworkWorld:
    a: Customer
    b: Customer
    station_id: uuid.UUID
    station_name: str


def _customer(
    ctx: AppContext, world: World, slug: str, station_id: uuid.UUID, first_f_cnt: int
) -> Customer:
    tenant = world.tenant(slug, f"{slug.title()} Logistics")
    dev = add_device(ctx, world, tenant.id)
    now = ctx.clock.now()
    items = [
        rec(dev.frame(first_f_cnt + i, bytes([0xCA, 0xFE, i])), satellite=f"TQ-A0{i + 1}", at=now)
        for i in range(3)
    ]
    result = post(ctx, station_id, items)
    assert result.accepted == 3, result.to_json()
    with ctx.db.write() as s:
        integration = integrations.create_integration(
            s,
            world.system,
            ctx.kek,
            tenant_id=tenant.id,
            kind="webhook",
            url=f"https://{slug}.example.com/hook",
            secret="s" * 32,
            name=f"{slug} backend",
            max_attempts=3,
            at=now,
        )
        dead = Delivery(
            id=new_id(),
            tenant_id=tenant.id,
            integration_id=integration.id,
            event_id=uuid.uuid4(),
            event_seq=1,
            event_type="uplink.accepted",
            message_id=str(uuid.uuid4()),
            dev_eui=dev.dev_eui,
            status="dead",
            attempts=3,
            next_attempt_at=now,
            last_error=f"HTTP 503 from {slug}.example.com",
            body={},
            created_at=now,
        )
        downlink = Downlink(
            id=new_id(),
            tenant_id=tenant.id,
            device_id=dev.id,
            dev_eui=dev.dev_eui,
            f_port=2,
            payload=b"\x01\x02\x03",
            confirmed=False,
            status="scheduled",
            satellite="TQ-A04",
            ground_station_id=station_id,
            load_at=now + timedelta(minutes=20),
            load_until=now + timedelta(minutes=29),
            estimated_delivery_at=now + timedelta(minutes=95),
            expires_at=now + timedelta(days=1),
            created_at=now,
            updated_at=now,
        )
        s.add_all([dead, downlink])
        s.flush()
        return Customer(tenant.id, tenant.name, dev, integration.id, dead.id, downlink.id)


def build(ctx: AppContext, world: World) -> NetworkWorld:
    """Customers ``acme`` and ``bolt``, staff users and a regulator (see :func:`users`)."""
    station_id, _key = add_station(ctx, world, "Kashgar")
    a = _customer(ctx, world, "acme", station_id, 0)
    b = _customer(ctx, world, "bolt", station_id, 100)
    world.user(a.tenant_id, Role.CUSTOMER_ADMIN, "acme-admin")
    world.user(a.tenant_id, Role.CUSTOMER_USER, "acme-user")
    world.user(b.tenant_id, Role.CUSTOMER_ADMIN, "bolt-admin")
    world.user(world.operator, Role.REGULATOR, "miit")
    world.user(world.operator, Role.NOC, "noc")
    return NetworkWorld(a, b, station_id, "Kashgar")
