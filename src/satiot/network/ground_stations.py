"""Ground stations as machine clients: registration and the one API key each station holds.

A station authenticates its posts with a machine key of role ``ground-station`` in the
operator's tenant (scope ``receptions:write``); the station row remembers which key is its
own (``api_key_id``), so a key can post only for the station it was issued to. Issuing a new
key revokes the previous one, so a leaked key is retired by rotating. Stations imported from a
scenario (``satiot twin import``) have no key until one is issued here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core import bulk
from satiot.core.auth.credentials import IssuedKey, issue_api_key, revoke_api_key
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import Role
from satiot.core.bootstrap import operator_tenant
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from satiot.core.lengths import plain_text
from satiot.network.models import GroundStation


@dataclass(frozen=True)
class RegisteredStation:
    station: GroundStation
    key: IssuedKey  # its secret is shown once, to whoever registered the station


def station_view(station: GroundStation) -> dict[str, Any]:
    return {
        "name": station.name,
        "lat": station.lat,
        "lon": station.lon,
        "alt_m": station.alt_m,
        "min_elevation_deg": station.min_elevation_deg,
        "antennas": station.antennas,
        "status": station.status,
    }


def _check_siting(lat: float, lon: float, min_elevation_deg: float, antennas: int) -> None:
    if not -90.0 <= lat <= 90.0:
        raise InvalidInput("lat must be within -90..90", field="lat")
    if not -180.0 <= lon <= 180.0:
        raise InvalidInput("lon must be within -180..180", field="lon")
    if not 0.0 <= min_elevation_deg < 90.0:
        raise InvalidInput("min_elevation_deg must be within 0..90", field="min_elevation_deg")
    if antennas < 1:
        raise InvalidInput("a station has at least one antenna", field="antennas")


def register_station(
    session: Session,
    principal: Principal,
    *,
    name: str,
    lat: float,
    lon: float,
    alt_m: float,
    min_elevation_deg: float,
    antennas: int,
    at: datetime,
) -> RegisteredStation:
    """Add a station and issue its first key; a name already registered is a 409.

    The name is shown in the console, contact plans and reception reports, and it names the
    station's API key: no control or directional override characters (``plain_text``)."""
    name = plain_text(name, GroundStation.name, "name")
    _check_siting(lat, lon, min_elevation_deg, antennas)
    if session.scalar(select(GroundStation.id).where(GroundStation.name == name)) is not None:
        raise Conflict(f"ground station {name!r} already exists", field="name")
    station = GroundStation(
        name=name,
        lat=lat,
        lon=lon,
        alt_m=alt_m,
        min_elevation_deg=min_elevation_deg,
        antennas=antennas,
        status="active",
        created_at=at,
    )
    session.add(station)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="ground-station.added",
        target=("ground-station", station.id),
        tenant_id=None,
        after=station_view(station),
    )
    return RegisteredStation(station, issue_station_key(session, principal, station.id, at=at))


def get_station(session: Session, station_id: uuid.UUID) -> GroundStation:
    station = session.get(GroundStation, station_id)
    if station is None:
        raise NotFound(f"ground station {station_id} not found")
    return station


class PostingStation(NamedTuple):
    """What ingest needs of the station a batch comes from."""

    id: uuid.UUID
    name: str
    api_key_id: uuid.UUID | None


_POSTER = bulk.driver_sql("SELECT name, api_key_id FROM ground_stations WHERE id = ?")


def posting_station(session: Session, station_id: uuid.UUID) -> PostingStation:
    """The station of a posted batch, read with one driver statement: loading the ORM object
    cost a batch more than its device lookup."""
    sqlite = bulk.stores_hex(session)
    sql = _POSTER["sqlite" if sqlite else "postgresql"]
    found: Any = bulk.execute(session, sql, (bulk.stored_id(session, station_id),)).first()
    if found is None:
        raise NotFound(f"ground station {station_id} not found")
    name, key_id = found
    if sqlite and key_id is not None:
        key_id = bulk.sqlite_uuid(key_id)
    return PostingStation(station_id, name, key_id)


def issue_station_key(
    session: Session, principal: Principal, station_id: uuid.UUID, *, at: datetime
) -> IssuedKey:
    """A new key for the station, revoking the one it had: the secret is returned once."""
    station = get_station(session, station_id)
    operator = operator_tenant(session)
    if operator is None:
        raise Conflict("no operator tenant: seed the platform first")
    if station.api_key_id is not None:
        revoke_api_key(session, principal, station.api_key_id, at=at, reason="key rotated")
    issued = issue_api_key(
        session,
        principal,
        name=f"ground station {station.name}"[:100],
        scopes=None,
        at=at,
        machine_role=Role.GROUND_STATION,
        tenant_id=operator.id,
    )
    station.api_key_id = issued.key.id
    record_change(
        session,
        principal,
        at=at,
        action="ground-station.key-issued",
        target=("ground-station", station.id),
        tenant_id=None,
        after={"key_prefix": issued.key.prefix},
    )
    return issued


def authorize_poster(principal: Principal | None, station: PostingStation | GroundStation) -> None:
    """Whether ``principal`` may post receptions for ``station``.

    A ground-station key posts only for the station it was issued to; operator staff holding
    ``receptions:write`` (operator-admin) may post for any station; ``None`` is a trusted
    in-process caller (the MQTT listener, whose broker authenticated the station).
    """
    if principal is None:
        return
    principal.require("receptions:write")
    if principal.role is Role.GROUND_STATION:
        if station.api_key_id is None or principal.credential_id != station.api_key_id:
            raise PermissionDenied("this key belongs to another ground station")
    elif not principal.all_tenants:
        raise PermissionDenied("only a ground station or operator staff may post receptions")
