"""The pull API's reading side: a device's messages in acceptance order, with every reception.

Each item is exactly :func:`satiot.network.messages.uplink_message` — the shape the webhook,
MQTT and the ``uplink.accepted`` event carry — except that its ``receptions`` are all the copies
known now, not only those known at acceptance. A page costs two queries whatever its length:
the uplinks, then all their receptions with their stations' names.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core.pagination import Page, paginate
from satiot.network.devices import get_device
from satiot.network.messages import reception_json, uplink_message
from satiot.network.models import GroundStation, Uplink, UplinkReception


def receptions_of(session: Session, uplink_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    """Every stored reception of these uplinks, as delivered JSON, by uplink id (one query)."""
    if not uplink_ids:
        return {}
    r = UplinkReception
    rows = session.execute(
        select(
            r.uplink_id,
            r.ground_station_id,
            GroundStation.name,
            r.satellite,
            r.received_at,
            r.frequency_hz,
            r.rssi_dbm,
            r.snr_db,
            r.doppler_hz,
        )
        .join(GroundStation, GroundStation.id == r.ground_station_id)
        .where(r.uplink_id.in_(uplink_ids))
    )
    out: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        out[row.uplink_id].append(
            reception_json(
                ground_station_id=row.ground_station_id,
                ground_station=row.name,
                satellite=row.satellite,
                received_at=row.received_at,
                frequency_hz=row.frequency_hz,
                rssi_dbm=row.rssi_dbm,
                snr_db=row.snr_db,
                doppler_hz=row.doppler_hz,
            )
        )
    return out


def message_of(uplink: Uplink, receptions: list[Any]) -> dict[str, Any]:
    return uplink_message(
        id=uplink.id,
        tenant_id=uplink.tenant_id,
        dev_eui=uplink.dev_eui,
        f_cnt=uplink.f_cnt,
        f_port=uplink.f_port,
        payload=uplink.payload,
        confirmed=uplink.confirmed,
        ack=uplink.ack,
        received_at=uplink.received_at,
        accepted_at=uplink.accepted_at,
        receptions=receptions,
    )


def list_uplinks(
    session: Session, dev_eui: str, *, cursor: str | None, limit: int
) -> Page[dict[str, Any]]:
    """One page of a device's messages, oldest accepted first (ids are time-ordered and count
    up within a batch, so id order is acceptance order). 404 for a device the caller cannot
    see."""
    device = get_device(session, dev_eui)
    stmt = select(Uplink).where(Uplink.device_id == device.id)
    page = paginate(session, stmt, Uplink.id, cursor=cursor, limit=limit)
    receptions = receptions_of(session, [u.id for u in page.items])
    return Page([message_of(u, receptions.get(u.id, [])) for u in page.items], page.next_cursor)
