"""The Ground stations page: is every station talking, and how much is it bringing down?

For the NOC (and the regulator's supervision view): when each station last posted, how many
receptions it delivered in the last hour, and whether it holds a live API key — a station
without one cannot post, which is the first thing to check when its traffic stops. Below, the
passes coming up with commands planned on them: how full each load window is, and how much of
its emergency reserve priority devices use — a window near its room is where ordinary
commands start to slip to later passes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.core.models import ApiKey
from satiot.network.downlink_loads import SAME_WINDOW, LoadRules
from satiot.network.models import Device, Downlink, GroundStation, UplinkReception
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, SignedIn
from satiot.web.views.network_rows import ago, id_floor

router = APIRouter()

PATH = "/ground-stations"
#: Upcoming load windows shown (soonest first).
LOAD_ROWS = 20


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


@dataclass(frozen=True)
class LoadRow:
    """One upcoming pass with commands planned on it."""

    station: str
    satellite: str
    load_at: datetime
    load_until: datetime
    commands: int
    priority: int
    room: int
    reserve: int

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.commands / self.room))


def load_rows(session: Session, now: datetime, rules: LoadRules) -> list[LoadRow]:
    """The next :data:`LOAD_ROWS` passes with scheduled downlinks, counted per window the
    way the planner counts them (set times within a couple of minutes are one pass)."""
    found = session.execute(
        select(
            GroundStation.name,
            Downlink.satellite,
            Downlink.load_until,
            func.min(Downlink.load_at),
            func.count(Downlink.id),
            func.sum(case((Device.priority > 0, 1), else_=0)),
        )
        .join(GroundStation, GroundStation.id == Downlink.ground_station_id)
        .join(Device, Device.id == Downlink.device_id)
        .where(Downlink.status == "scheduled", Downlink.load_until > now)
        .group_by(GroundStation.name, Downlink.satellite, Downlink.load_until)
    )
    passes: list[LoadRow] = []
    for station, satellite, load_until, load_at, commands, priority in found:
        if satellite is None or load_until is None:  # a scheduled downlink always has both
            continue
        start = load_at or now
        for i, p in enumerate(passes):
            if (p.station, p.satellite) == (station, satellite) and (
                abs(p.load_until - load_until) <= SAME_WINDOW
            ):
                passes[i] = replace(
                    p,
                    load_at=min(p.load_at, start),
                    commands=p.commands + commands,
                    priority=p.priority + int(priority or 0),
                )
                break
        else:
            passes.append(
                LoadRow(
                    station=station,
                    satellite=satellite,
                    load_at=start,
                    load_until=load_until,
                    commands=commands,
                    priority=int(priority or 0),
                    room=rules.per_pass,
                    reserve=rules.held,
                )
            )
    return sorted(passes, key=lambda p: (p.load_at, p.station, p.satellite))[:LOAD_ROWS]


@router.get(PATH)
def ground_stations_page(request: Request, signed_in: SignedIn) -> Response:
    signed_in.require_any("ground-stations:read")
    rules = LoadRules.from_settings(signed_in.ctx.settings)
    with signed_in.call.read() as session:
        rows = station_rows(session, signed_in)
        loads = load_rows(session, signed_in.now(), rules)
    return page(
        request,
        signed_in,
        "ground_stations.html",
        {
            "title": "Ground stations",
            "rows": rows,
            "total_hour": sum(r.receptions_hour for r in rows),
            "loads": loads,
            "rules": rules,
        },
    )
