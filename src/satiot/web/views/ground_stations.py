"""The Ground stations page: is every station talking, and how much is it bringing down?

For the NOC (and the regulator's supervision view): when each station last posted, how many
receptions it delivered in the last hour, and whether it holds a live API key — a station
without one cannot post, which is the first thing to check when its traffic stops.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.core.models import ApiKey
from satiot.network.models import GroundStation, UplinkReception
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, SignedIn
from satiot.web.views.network_rows import ago, id_floor

router = APIRouter()

PATH = "/ground-stations"


@dataclass(frozen=True)
class StationRow:
    station: GroundStation
    last_seen: str
    receptions_hour: int
    key: str  # "active", "revoked", "expired" or "none"
    key_prefix: str | None


def _key_state(key: ApiKey | None, now: datetime) -> str:
    if key is None:
        return "none"
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def receptions_since(session: Session, since: datetime) -> dict[uuid.UUID, int]:
    """Receptions ingested per station since ``since`` (for the tenants the session sees)."""
    rows = session.execute(
        select(UplinkReception.ground_station_id, func.count(UplinkReception.id))
        .where(UplinkReception.id >= id_floor(since), UplinkReception.ingested_at >= since)
        .group_by(UplinkReception.ground_station_id)
    )
    return {station_id: n for station_id, n in rows}


def station_rows(session: Session, signed_in: ConsoleSession) -> list[StationRow]:
    now = signed_in.now()
    stations = list(session.scalars(select(GroundStation).order_by(GroundStation.name)))
    counts = receptions_since(session, now - timedelta(hours=1))
    key_ids = {s.api_key_id for s in stations if s.api_key_id is not None}
    keys = (
        {k.id: k for k in session.scalars(select(ApiKey).where(ApiKey.id.in_(key_ids)))}
        if key_ids
        else {}
    )
    rows = []
    for s in stations:
        key = keys.get(s.api_key_id) if s.api_key_id else None
        rows.append(
            StationRow(
                s,
                ago(s.last_seen_at, now),
                counts.get(s.id, 0),
                _key_state(key, now),
                key.prefix if key is not None else None,
            )
        )
    return rows


@router.get(PATH)
def ground_stations_page(request: Request, signed_in: SignedIn) -> Response:
    signed_in.require_any("ground-stations:read")
    with signed_in.call.read() as session:
        rows = station_rows(session, signed_in)
    return page(
        request,
        signed_in,
        "ground_stations.html",
        {
            "title": "Ground stations",
            "rows": rows,
            "total_hour": sum(r.receptions_hour for r in rows),
        },
    )
