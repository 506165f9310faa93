"""Planner statistics on SQLite: with them, a device's downlinks, and the uplinks of a page of
devices however many the tenant has, are read through the devices' index, not by reading
every row of the tenant."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

from satiot.api.context import AppContext
from satiot.core.auth.tenancy import scope_session
from satiot.core.db_statistics import NAME, refresh_statistics, statistics_refresher
from satiot.core.ids import new_id_block, uuid_from_int
from satiot.network import downlinks
from satiot.network.models import Device, Downlink, Uplink
from satiot.server import BACKGROUND_SERVICES
from satiot.web.views.devices import _counts
from tests.factories import World

DEVICES = 40
EACH = 25


def _fleet(ctx: AppContext, tenant_id: uuid.UUID) -> str:
    """A tenant with 40 devices of 25 downlinks each; the first device's DevEUI."""
    now = ctx.clock.now()
    euis = [f"70B3D5BE{n:08X}" for n in range(DEVICES)]
    devices = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "dev_eui": eui,
            "dev_addr": 0x26000000 + n,
            "name": "",
            "status": "active",
            "nwk_s_key_sealed": bytes(48),
            "app_s_key_sealed": bytes(48),
            "kek_id": "k1",
            "f_cnt_down": 0,
            "priority": 0,
            "created_at": now,
            "updated_at": now,
        }
        for n, eui in enumerate(euis)
    ]
    queued = [
        {
            "tenant_id": tenant_id,
            "device_id": d["id"],
            "dev_eui": d["dev_eui"],
            "f_port": 1,
            "payload": b"\x01",
            "confirmed": False,
            "status": "queued",
            "created_at": now,
            "updated_at": now,
        }
        for d in devices
        for _ in range(EACH)
    ]
    with ctx.db.write() as s:
        s.execute(insert(Device), devices)
        s.execute(insert(Downlink), queued)
    return euis[0]


def _plan_of(
    ctx: AppContext, tenant_id: uuid.UUID, table: str, run: Callable[[Session], object]
) -> str:
    """The database's plan for the statement on ``table`` that ``run`` sends in a session
    scoped to the tenant."""
    sent: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if f"FROM {table}" in statement:
            sent.append((statement, parameters))

    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        with ctx.db.read() as s:
            scope_session(s, tenant_id)
            run(s)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)
    ((statement, parameters),) = sent
    explain = "EXPLAIN QUERY PLAN " if ctx.db.is_sqlite else "EXPLAIN "
    with ctx.db.engine.connect() as conn:
        rows = conn.exec_driver_sql(explain + statement, parameters)
        return " | ".join(str(row[-1] if ctx.db.is_sqlite else row[0]) for row in rows)


def _plan(ctx: AppContext, tenant_id: uuid.UUID, dev_eui: str) -> str:
    """SQLite's plan for the page of a device's downlinks, as the scoped session sends it."""

    def page(s: Session) -> None:
        found = downlinks.list_downlinks(s, dev_eui, status=None, cursor=None, limit=50)
        assert len(found.items) == EACH

    return _plan_of(ctx, tenant_id, "downlinks", page)


def test_with_statistics_a_devices_downlinks_are_read_through_its_index(
    ctx: AppContext, world: World
):
    tenant = world.tenant()
    dev_eui = _fleet(ctx, tenant.id)
    if ctx.db.engine.dialect.name != "sqlite":
        assert refresh_statistics(ctx.db) is False, "PostgreSQL gathers its own"
        return
    before = _plan(ctx, tenant.id, dev_eui)
    assert "ix_downlinks_tenant_id" in before, before  # every downlink of the tenant
    assert refresh_statistics(ctx.db) is True
    after = _plan(ctx, tenant.id, dev_eui)
    assert "ix_downlinks_device_status" in after and "tenant_id" not in after, after


def test_satiot_up_gathers_them_at_start(ctx: AppContext, world: World):
    assert NAME in {s.name for s in BACKGROUND_SERVICES}
    tenant = world.tenant()
    dev_eui = _fleet(ctx, tenant.id)
    stop = threading.Event()
    worker = threading.Thread(target=statistics_refresher(interval_s=60).run, args=(ctx, stop))
    worker.start()
    try:
        if ctx.db.engine.dialect.name == "sqlite":
            for _ in range(100):
                if "ix_downlinks_device_status" in _plan(ctx, tenant.id, dev_eui):
                    break
                stop.wait(0.05)
            assert "ix_downlinks_device_status" in _plan(ctx, tenant.id, dev_eui)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()


def _uplinks(ctx: AppContext, tenant_id: uuid.UUID, devices: int, each: int) -> list[uuid.UUID]:
    """``devices`` devices of the tenant with ``each`` uplinks apiece; their ids."""
    dev_eui = _fleet(ctx, tenant_id)
    now = ctx.clock.now()
    with ctx.db.read() as s:
        ids = list(s.scalars(select(Device.id).where(Device.tenant_id == tenant_id)))[:devices]
    first = new_id_block(devices * each)
    rows = [
        {
            "id": uuid_from_int(first + n * each + i),
            "tenant_id": tenant_id,
            "device_id": device_id,
            "dev_eui": dev_eui,
            "f_cnt": i,
            "f_port": 1,
            "mic": 0,
            "confirmed": False,
            "ack": False,
            "adr": False,
            "f_opts": b"",
            "payload": b"\x01",
            "received_at": now,
            "accepted_at": now,
            "reception_count": 1,
        }
        for n, device_id in enumerate(ids)
        for i in range(each)
    ]
    with ctx.db.write() as s:
        s.execute(insert(Uplink), rows)
    return ids


def test_a_page_of_devices_counts_their_uplinks_not_the_tenants(ctx: AppContext, world: World):
    """40 devices of 300 uplinks: ANALYZE's first thousand rows of the tenant index hold one
    tenant and of the device index four devices, which alone made SQLite read all 12,000
    uplinks of the tenant to count those of a page of devices."""
    tenant = world.tenant()
    world.tenant()  # a tenant with no uplinks is not counted as holding any
    ids = _uplinks(ctx, tenant.id, DEVICES, 300)
    if ctx.db.is_sqlite:
        assert refresh_statistics(ctx.db) is True
    else:
        with ctx.db.engine.begin() as conn:  # what autovacuum does in its own time
            conn.exec_driver_sql("ANALYZE uplinks")
    plan = _plan_of(ctx, tenant.id, "uplinks", lambda s: _counts(s, ids, ctx.clock.now()))
    assert "device_id" in plan and "tenant_id_id" not in plan, plan
    if ctx.db.is_sqlite:
        with ctx.db.read() as s:
            stat = s.scalar(
                text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_uplinks_tenant_id_id'")
            )
        rows, per_tenant, *_ = str(stat).split()
        assert per_tenant == rows, "one tenant holds every uplink"
