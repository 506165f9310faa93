"""The satellite and ground-station inventory: import from a scenario or TLE file, list.

Element sets change every few days while a satellite's identity and payload do not, so an
import updates a satellite in place (by name) instead of adding a new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.lengths import plain_text
from satiot.network.models import GroundStation, Satellite
from satiot.network.orbits import Tle
from satiot.network.scenario import Payload, Station


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def _payload_fields(payload: Payload) -> dict[str, int | float]:
    return {
        "channels": payload.channels,
        "uplink_frequency_hz": payload.uplink_frequency_hz,
        "channel_spacing_hz": payload.channel_spacing_hz,
        "g_over_t_db_k": payload.g_over_t_db_k,
        "eirp_dbw": payload.eirp_dbw,
        "storage_bytes": payload.storage_bytes,
        "downlink_rate_bps": payload.downlink_rate_bps,
    }


def _update_if_changed(
    session: Session,
    principal: Principal,
    row: Satellite | GroundStation,
    after: Mapping[str, object],
    *,
    kind: str,
    at: datetime,
) -> bool:
    """Set ``after`` on ``row`` if anything differs, auditing before and after; True if it did."""
    before = {key: getattr(row, key) for key in after}
    if before == after:
        return False
    for key, value in after.items():
        setattr(row, key, value)
    record_change(
        session,
        principal,
        at=at,
        action=f"{kind}.updated",
        target=(kind, row.id),
        tenant_id=None,
        before=before,
        after=dict(after),
    )
    return True


def import_satellites(
    session: Session,
    principal: Principal,
    tles: Sequence[Tle],
    payload: Payload,
    *,
    at: datetime,
) -> ImportResult:
    """Add new satellites and refresh the element sets and payloads of known ones.

    Every name is checked before anything is written (``plain_text``): a TLE name line is shown
    in contact plans, the console and reports, and a stray control or directional override
    character from a broken file would garble or reorder them."""
    tles = [
        replace(t, name=plain_text(t.name, Satellite.name, f"satellites.{i}.name"))
        for i, t in enumerate(tles)
    ]
    known = {
        s.name: s
        for s in session.scalars(
            select(Satellite).where(Satellite.name.in_([t.name for t in tles]))
        )
    }
    created = updated = 0
    fields = _payload_fields(payload)
    for tle in tles:
        sat = known.get(tle.name)
        if sat is None:
            sat = Satellite(
                name=tle.name,
                norad_id=tle.norad_id,
                tle_line1=tle.line1,
                tle_line2=tle.line2,
                status="active",
                created_at=at,
                updated_at=at,
                **fields,
            )
            session.add(sat)
            session.flush()
            created += 1
            record_change(
                session,
                principal,
                at=at,
                action="satellite.added",
                target=("satellite", sat.id),
                tenant_id=None,
                after={"name": sat.name, "norad_id": sat.norad_id, **fields},
            )
            continue
        after = {"tle_line1": tle.line1, "tle_line2": tle.line2, **fields}
        if _update_if_changed(session, principal, sat, after, kind="satellite", at=at):
            sat.updated_at = at
            updated += 1
    return ImportResult(created, updated, len(tles) - created - updated)


def import_ground_stations(
    session: Session, principal: Principal, stations: Sequence[Station], *, at: datetime
) -> ImportResult:
    """Add new ground stations and update the siting of known ones (by name).

    Every name is checked first, as :func:`import_satellites` does, and as registering a
    station does (``satiot.network.ground_stations``)."""
    stations = [
        s.model_copy(
            update={"name": plain_text(s.name, GroundStation.name, f"ground_stations.{i}.name")}
        )
        for i, s in enumerate(stations)
    ]
    known = {
        g.name: g
        for g in session.scalars(
            select(GroundStation).where(GroundStation.name.in_([s.name for s in stations]))
        )
    }
    created = updated = 0
    for spec in stations:
        gs = known.get(spec.name)
        after = {
            "lat": spec.lat,
            "lon": spec.lon,
            "alt_m": spec.alt_m,
            "min_elevation_deg": spec.min_elevation_deg,
            "antennas": spec.antennas,
        }
        if gs is None:
            gs = GroundStation(name=spec.name, status="active", created_at=at, **after)
            session.add(gs)
            session.flush()
            created += 1
            record_change(
                session,
                principal,
                at=at,
                action="ground-station.added",
                target=("ground-station", gs.id),
                tenant_id=None,
                after={"name": spec.name, **after},
            )
            continue
        if _update_if_changed(session, principal, gs, after, kind="ground-station", at=at):
            updated += 1
    return ImportResult(created, updated, len(stations) - created - updated)


def satellites_as_tles(session: Session) -> list[Tle]:
    """The active satellites' element sets, for contact plans and the twin."""
    rows = session.scalars(
        select(Satellite).where(Satellite.status == "active").order_by(Satellite.name)
    )
    return [Tle(s.name, s.tle_line1, s.tle_line2) for s in rows]
