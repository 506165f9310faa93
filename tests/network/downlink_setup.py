"""Builders shared by the downlink tests: inventory, devices with real keys, station keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.core.models import AuditEntry, Event, Tenant
from satiot.network import ground_stations
from satiot.network.devices import create_device
from satiot.network.downlink_plan import Inventory, StationSite
from satiot.network.inventory import import_ground_stations, import_satellites
from satiot.network.models import GroundStation
from satiot.network.scenario import constellation, load_scenario
from tests.factories import World

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "tianqi-like.toml"
NWK = bytes.fromhex("44024241ED4CE9A68C6A8BC055233FD3")
APP = bytes.fromhex("EC925802AE430CA77FD3DD73CB2CC588")
#: A data collector in Tibet: far enough from every station that a plan has two distinct legs.
TIBET = (31.0, 88.0)


def scenario_inventory() -> Inventory:
    """The packaged scenario's satellites and stations as plans see them (no database)."""
    scenario, folder = load_scenario(SCENARIO)
    stations = tuple(
        StationSite(uuid.uuid4(), g.name, g.lat, g.lon, g.alt_m, g.min_elevation_deg)
        for g in scenario.ground_stations
    )
    return Inventory(tuple(constellation(scenario, folder)), stations)


def import_inventory(ctx: AppContext, world: World) -> None:
    scenario, folder = load_scenario(SCENARIO)
    tles = constellation(scenario, folder)
    with ctx.db.write() as s:
        import_satellites(s, world.system, tles, scenario.payload, at=ctx.clock.now())
        import_ground_stations(s, world.system, scenario.ground_stations, at=ctx.clock.now())


@dataclass(frozen=True)
class TestDevice:
    id: uuid.UUID
    dev_eui: str
    dev_addr: int
    tenant_id: uuid.UUID


def make_device(
    ctx: AppContext,
    world: World,
    tenant: Tenant,
    dev_eui: str = "70B3D57ED0000001",
    *,
    position: tuple[float, float] | None = TIBET,
    dev_addr: int = 0x26000001,
    status: str | None = None,
) -> TestDevice:
    lat, lon = position if position else (None, None)
    with ctx.db.write() as s:
        device = create_device(
            s,
            world.system,
            kek=ctx.kek,
            tenant_id=tenant.id,
            dev_eui=dev_eui,
            dev_addr=f"{dev_addr:08X}",
            nwk_s_key=NWK.hex(),
            app_s_key=APP.hex(),
            at=ctx.clock.now(),
            lat=lat,
            lon=lon,
            status=status,
        )
        return TestDevice(device.id, device.dev_eui, device.dev_addr, device.tenant_id)


def station_key(ctx: AppContext, world: World, name: str) -> tuple[uuid.UUID, str]:
    """(station id, the station's own API key)."""
    with ctx.db.write() as s:
        station = s.scalars(select(GroundStation).where(GroundStation.name == name)).one()
        issued = ground_stations.issue_station_key(s, world.system, station.id, at=ctx.clock.now())
        return station.id, issued.secret


def history(ctx: AppContext, downlink_id: uuid.UUID | str) -> tuple[list[str], list[str]]:
    """(audit actions, event types) recorded for one downlink, in order."""
    with ctx.db.read() as s:
        audit = s.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_type == "downlink", AuditEntry.target_id == str(downlink_id))
            .order_by(AuditEntry.seq)
        ).all()
        events = s.scalars(
            select(Event.type)
            .where(Event.subject_type == "downlink", Event.subject_id == str(downlink_id))
            .order_by(Event.seq)
        ).all()
    return list(audit), list(events)
