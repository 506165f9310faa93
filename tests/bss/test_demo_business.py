"""The live twin's demo tenant brought into the business: a real-name customer with a signed
contract, and every terminal activated with its own number and handle, so its traffic is
rated instead of rejected; safe to repeat, and kept away from a real identification node."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

from sqlalchemy import func, select

from satiot.bss import contracts, demo_business
from satiot.bss.models import Customer, Subscription, UsageRecord
from satiot.core import events
from satiot.core.ids import new_id
from satiot.network import devices
from satiot.network.live_setup import DEMO_TENANT_NAME, DEMO_TENANT_SLUG
from satiot.network.models import Device
from satiot.oss.models import Handle, IotNumber
from tests.bss.billing_world import rate_all


def _twin_devices(ctx, world, tenant, first: int, n: int) -> list[str]:
    euis = []
    with ctx.db.write() as s:
        for i in range(first, first + n):
            eui = f"70B3D57E{i:08X}"
            devices.create_device(
                s,
                world.system,
                kek=ctx.kek,
                tenant_id=tenant.id,
                dev_eui=eui,
                dev_addr=f"{0x26000000 + i:08X}",
                nwk_s_key="00" * 16,
                app_s_key="11" * 16,
                at=ctx.clock.now(),
                status="active",
            )
            euis.append(eui)
    return euis


def _subscriptions(ctx) -> list[Subscription]:
    with ctx.db.read() as s:
        return list(s.scalars(select(Subscription).order_by(Subscription.dev_eui)))


def test_the_demo_tenant_becomes_a_customer_whose_terminals_are_bound(ctx, world):
    tenant = world.tenant(DEMO_TENANT_SLUG, DEMO_TENANT_NAME)
    euis = _twin_devices(ctx, world, tenant, 1, 5)
    assert demo_business.adopt(ctx, chunk=2, pause_s=0) == 5

    with ctx.db.read() as s:
        customer = s.scalar(select(Customer).where(Customer.tenant_id == tenant.id))
        assert customer is not None and customer.name == DEMO_TENANT_NAME
        assert (customer.status, customer.risk_status) == ("validated", "passed")
        contract = contracts.contract_in_force(s, customer.id)
        assert contract is not None and contract.allowed_models == [demo_business.MODEL]
        statuses = set(s.scalars(select(Device.status).where(Device.tenant_id == tenant.id)))
        numbers = list(s.scalars(select(IotNumber).where(IotNumber.status == "active")))
        handles = list(s.scalars(select(Handle)))
    subs = _subscriptions(ctx)
    assert [sub.dev_eui for sub in subs] == euis
    assert {sub.status for sub in subs} == {"active"} and statuses == {"active"}
    # one device, one code, one number: each distinct, numbers from the demo's own block
    assert len({sub.iot_number for sub in subs}) == len({sub.handle for sub in subs}) == 5
    assert all(sub.iot_number.startswith(demo_business.BLOCK_PREFIX) for sub in subs)
    assert all(sub.handle.startswith(demo_business.HANDLE_PREFIX + "/") for sub in subs)
    assert len(numbers) == len(handles) == 5

    # Again: nothing is added; a device the twin adds later is adopted alone.
    assert demo_business.adopt(ctx, chunk=2, pause_s=0) == 0
    more = _twin_devices(ctx, world, tenant, 6, 1)
    assert demo_business.adopt(ctx, chunk=2, pause_s=0) == 1
    assert [sub.dev_eui for sub in _subscriptions(ctx)] == euis + more
    with ctx.db.read() as s:
        assert s.scalar(select(func.count(Customer.id))) == 1


def test_the_demo_traffic_is_rated_instead_of_rejected(ctx, world):
    tenant = world.tenant(DEMO_TENANT_SLUG, DEMO_TENANT_NAME)
    (eui,) = _twin_devices(ctx, world, tenant, 1, 1)
    demo_business.adopt(ctx, pause_s=0)
    at = ctx.clock.now() + timedelta(minutes=5)
    with ctx.db.write() as s:
        events.emit(
            s,
            "uplink.accepted",
            at=at,
            tenant_id=tenant.id,
            payload={
                "id": str(new_id()),
                "dev_eui": eui,
                "payload": base64.b64encode(b"x" * 12).decode(),
                "received_at": at.isoformat().replace("+00:00", "Z"),
            },
        )
    rate_all(ctx)
    with ctx.db.read() as s:
        record = s.scalar(select(UsageRecord))
    assert record is not None and (record.state, record.reason) == ("rated", None)


def test_nothing_is_done_before_the_twin_or_beside_a_real_identification_node(ctx, world):
    assert demo_business.adopt(ctx, pause_s=0) == 0  # no demo tenant yet
    tenant = world.tenant(DEMO_TENANT_SLUG, DEMO_TENANT_NAME)
    _twin_devices(ctx, world, tenant, 1, 2)
    ctx.settings = ctx.settings.model_copy(update={"handle_node_url": "http://node.invalid/"})
    assert demo_business.adopt(ctx, pause_s=0) == 0
    assert _subscriptions(ctx) == []
    with ctx.db.read() as s:
        assert s.scalar(select(func.count(Customer.id))) == 0


def test_a_stop_ends_the_adoption_between_two_chunks(ctx, world):
    tenant = world.tenant(DEMO_TENANT_SLUG, DEMO_TENANT_NAME)
    _twin_devices(ctx, world, tenant, 1, 3)
    stop = threading.Event()
    stop.set()
    assert demo_business.adopt(ctx, chunk=1, pause_s=0, stop=stop) == 0
    assert _subscriptions(ctx) == []
    stop.clear()
    assert demo_business.adopt(ctx, chunk=1, pause_s=0, stop=stop) == 3
