"""Builders for ingest tests: devices with real ABP sessions, stations, frames and records."""

from __future__ import annotations

import base64
import itertools
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.core.models import Event
from satiot.network import devices, frames, ground_stations
from satiot.network.frames import MType
from satiot.network.ingest import IngestResult, ingest
from satiot.network.models import Uplink, UplinkReception
from tests.factories import World

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
_serial = itertools.count(1)


@dataclass(frozen=True)
class Dev:
    id: uuid.UUID
    tenant_id: uuid.UUID
    dev_eui: str
    dev_addr: int
    nwk: bytes
    app: bytes

    def frame(
        self,
        f_cnt: int,
        payload: bytes = b"\x01\x02",
        *,
        confirmed: bool = False,
        ack: bool = False,
        f_port: int | None = 1,
        nwk: bytes | None = None,
    ) -> bytes:
        return frames.encode(
            mtype=MType.CONFIRMED_UP if confirmed else MType.UNCONFIRMED_UP,
            dev_addr=self.dev_addr,
            f_cnt32=f_cnt,
            f_port=f_port,
            payload=payload if f_port is not None else b"",
            nwk_s_key=nwk or self.nwk,
            app_s_key=self.app,
            ack=ack,
        )


def add_device(
    ctx: AppContext,
    world: World,
    tenant_id: uuid.UUID,
    *,
    dev_addr: int | None = None,
    status: str = "active",
) -> Dev:
    n = next(_serial)
    nwk, app = os.urandom(16), os.urandom(16)
    addr = dev_addr if dev_addr is not None else 0x26000000 + n
    with ctx.db.write() as s:
        d = devices.create_device(
            s,
            world.system,
            kek=ctx.kek,
            tenant_id=tenant_id,
            dev_eui=f"{0x70B3D57ED0000000 + n:016X}",
            dev_addr=f"{addr:08X}",
            nwk_s_key=nwk.hex(),
            app_s_key=app.hex(),
            status=status,
            at=ctx.clock.now(),
        )
        return Dev(d.id, d.tenant_id, d.dev_eui, addr, nwk, app)


def add_station(ctx: AppContext, world: World, name: str | None = None) -> tuple[uuid.UUID, str]:
    """A registered station and its key."""
    with ctx.db.write() as s:
        made = ground_stations.register_station(
            s,
            world.system,
            name=name or f"GS-{next(_serial)}",
            lat=39.9,
            lon=116.4,
            alt_m=50.0,
            min_elevation_deg=10.0,
            antennas=2,
            at=ctx.clock.now(),
        )
        return made.station.id, made.key.secret


def rec(
    phy: bytes,
    *,
    satellite: str = "SAT-1",
    at: datetime = T0,
    frequency_hz: int = 400_100_000,
    rssi_dbm: float = -128.5,
    snr_db: float = -3.5,
    doppler_hz: float | None = 1234.5,
) -> dict[str, Any]:
    """A reception record as a station posts it."""
    return {
        "satellite": satellite,
        "received_at": at.isoformat().replace("+00:00", "Z"),
        "frequency_hz": frequency_hz,
        "rssi_dbm": rssi_dbm,
        "snr_db": snr_db,
        "doppler_hz": doppler_hz,
        "phy_payload": base64.b64encode(phy).decode(),
    }


def post(
    ctx: AppContext, station_id: uuid.UUID, items: list[Any], *, window: int | None = None
) -> IngestResult:
    return ingest(
        ctx.db,
        station_id,
        items,
        kek=ctx.kek,
        at=ctx.clock.now(),
        fcnt_window=window if window is not None else ctx.settings.fcnt_window,
    )


def reasons(result: IngestResult) -> dict[int, str]:
    return {r.index: r.reason for r in result.rejected}


def counts(ctx: AppContext) -> tuple[int, int, int]:
    """(uplinks, receptions, uplink.accepted events) stored now."""
    with ctx.db.read() as s:
        return (
            s.scalar(select(func.count()).select_from(Uplink)) or 0,
            s.scalar(select(func.count()).select_from(UplinkReception)) or 0,
            s.scalar(select(func.count()).where(Event.type == "uplink.accepted")) or 0,
        )


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
