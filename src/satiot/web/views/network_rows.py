"""Reading the network server's records for the console, shaped once for HTML and JSON.

The Messages page renders its first rows on the server and then adds new ones in the browser
from a JSON feed; both go through :func:`message_rows`, so a row looks the same whichever way
it arrived. Every query here runs in the caller's tenant-scoped session (``ConsoleSession.
call``), so a customer's rows are confined to its tenant by the session, not by a filter here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.core.models import Tenant
from satiot.network.models import Device, GroundStation, Uplink, UplinkReception

#: Bytes of payload shown in a table cell before it is cut with an ellipsis.
PAYLOAD_SHOWN = 8
#: How far an id's minting time may trail the clock's "now" (several processes, clock steps).
ID_CLOCK_MARGIN = timedelta(minutes=10)


def hex_payload(data: bytes, limit: int = PAYLOAD_SHOWN) -> str:
    """Payload bytes as spaced-out hex pairs, cut at ``limit`` bytes."""
    shown = " ".join(f"{b:02x}" for b in data[:limit])
    return shown + (" …" if len(data) > limit else "")


def clock_time(when: datetime | None) -> str:
    """A time to the second in UTC (messages arrive seconds apart, unlike the audit log)."""
    return "—" if when is None else when.strftime("%Y-%m-%d %H:%M:%S")


def ago(when: datetime | None, now: datetime) -> str:
    """How long ago, in the largest sensible unit: 'just now', '5 min ago', '3 h ago'."""
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


@dataclass(frozen=True)
class MessageRow:
    """One uplink as a row of the Messages page and of the device page."""

    id: str
    at: str  # time of day, UTC
    date: str
    at_iso: str
    dev_eui: str
    device: str
    device_url: str
    tenant: str
    f_cnt: int
    f_port: int | None
    payload: str
    payload_bytes: int
    receptions: int
    satellites: list[str]
    stations: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def station_names(session: Session) -> dict[uuid.UUID, str]:
    """All ground stations by id (a few dozen rows; not tenant data)."""
    rows = session.execute(select(GroundStation.id, GroundStation.name))
    return {station_id: name for station_id, name in rows}


def tenant_names(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(wanted)))
    return {tenant_id: name for tenant_id, name in rows}


def _paths(
    session: Session, uplink_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[list[str], list[uuid.UUID]]]:
    """Per uplink: the satellites and stations its copies came through (first seen first)."""
    out: dict[uuid.UUID, tuple[list[str], list[uuid.UUID]]] = {}
    if not uplink_ids:
        return out
    rows = session.execute(
        select(
            UplinkReception.uplink_id, UplinkReception.satellite, UplinkReception.ground_station_id
        )
        .where(UplinkReception.uplink_id.in_(uplink_ids))
        .order_by(UplinkReception.received_at)
    )
    for uplink_id, satellite, station_id in rows:
        sats, stations = out.setdefault(uplink_id, ([], []))
        if satellite not in sats:
            sats.append(satellite)
        if station_id not in stations:
            stations.append(station_id)
    return out


def message_rows(
    session: Session, uplinks: Sequence[Uplink], *, with_tenant: bool
) -> list[MessageRow]:
    """Rows for ``uplinks`` with their devices' names, routes and (for staff) tenants."""
    if not uplinks:
        return []
    device_ids = {u.device_id for u in uplinks}
    found = session.execute(select(Device.id, Device.name).where(Device.id.in_(device_ids)))
    names = {device_id: name for device_id, name in found}
    paths = _paths(session, [u.id for u in uplinks])
    stations = station_names(session) if paths else {}
    tenants = tenant_names(session, {u.tenant_id for u in uplinks}) if with_tenant else {}
    rows = []
    for u in uplinks:
        sats, via = paths.get(u.id, ([], []))
        rows.append(
            MessageRow(
                id=str(u.id),
                at=u.accepted_at.strftime("%H:%M:%S"),
                date=u.accepted_at.strftime("%Y-%m-%d"),
                at_iso=u.accepted_at.isoformat(),
                dev_eui=u.dev_eui,
                device=names.get(u.device_id, "") or u.dev_eui,
                device_url=f"/devices/{u.dev_eui}",
                tenant=tenants.get(u.tenant_id, "") if with_tenant else "",
                f_cnt=u.f_cnt,
                f_port=u.f_port,
                payload=hex_payload(u.payload),
                payload_bytes=len(u.payload),
                receptions=u.reception_count,
                satellites=sats,
                stations=[stations.get(s, "?") for s in via],
            )
        )
    return rows


def newest_uplinks(
    session: Session,
    *,
    limit: int,
    after: uuid.UUID | None = None,
    device_id: uuid.UUID | None = None,
) -> list[Uplink]:
    """The newest uplinks the session may see, newest first; only those newer than ``after``
    when given (ids are time-ordered, so this is an index range, not a scan)."""
    stmt = select(Uplink).order_by(Uplink.id.desc()).limit(limit)
    if after is not None:
        stmt = stmt.where(Uplink.id > after)
    if device_id is not None:
        stmt = stmt.where(Uplink.device_id == device_id)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Traffic:
    """Uplinks accepted in the last minute and the last hour."""

    last_minute: int
    last_hour: int

    def to_json(self) -> dict[str, int]:
        return {"last_minute": self.last_minute, "last_hour": self.last_hour}


def traffic(session: Session, now: datetime) -> Traffic:
    """How busy the network is for the session's tenant(s), counted in one query."""
    minute, hour = now - timedelta(minutes=1), now - timedelta(hours=1)
    row = session.execute(
        select(
            func.count(Uplink.id).filter(Uplink.accepted_at >= minute),
            func.count(Uplink.id),
        ).where(Uplink.id >= id_floor(hour), Uplink.accepted_at >= hour)
    ).one()
    return Traffic(int(row[0] or 0), int(row[1] or 0))


def id_floor(when: datetime) -> uuid.UUID:
    """The smallest UUIDv7 minted at ``when`` or later, less :data:`ID_CLOCK_MARGIN`.

    Rows get time-ordered ids when they are written (``core.ids``), so "written in the last
    hour" can be answered from the primary-key index as ``id >= id_floor(now - 1 h)`` instead of
    scanning a table that grows by tens of thousands of rows an hour. The margin keeps the bound
    loose; the exact test on the row's own timestamp is always applied as well.
    """
    ms = max(0, int((when - ID_CLOCK_MARGIN).timestamp() * 1000))
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62))


def parse_uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
