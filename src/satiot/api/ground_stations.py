"""Ground stations: registration, their keys, and the ingest endpoint they post receptions to.

The receptions endpoint validates only the envelope as a whole; each record is validated on
its own by ingest, so one bad record is one rejected item, never a refused batch.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.api.common import (
    CursorParam,
    IdempotencyKey,
    Input,
    LimitParam,
    Output,
    Page,
    create_idempotently,
    page_response,
)
from satiot.api.deps import Call, requires
from satiot.core.pagination import paginate
from satiot.network import ground_stations
from satiot.network.ingest import ingest
from satiot.network.ingest_validate import REASONS, batch_items
from satiot.network.models import GroundStation

router = APIRouter(prefix="/ground-stations", tags=["ground-stations"])
Reader = Annotated[Call, Depends(requires("ground-stations:read"))]
Writer = Annotated[Call, Depends(requires("ground-stations:write"))]
Poster = Annotated[Call, Depends(requires("receptions:write"))]


class StationIn(Input):
    name: str = Field(min_length=1, max_length=64, examples=["Kashgar"])
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float = Field(default=0.0, ge=-500, le=10_000)
    min_elevation_deg: float = Field(default=10.0, ge=0, lt=90)
    antennas: int = Field(default=1, ge=1, le=64)


class StationOut(Output):
    id: uuid.UUID
    name: str
    lat: float
    lon: float
    alt_m: float
    min_elevation_deg: float
    antennas: int
    status: str
    api_key_id: uuid.UUID | None = Field(description="The station's current key (None: none)")
    last_seen_at: datetime | None = Field(description="When the station last posted")
    created_at: datetime


class StationCreated(StationOut):
    api_key: str | None = Field(description="The station's key: shown in this answer only")


class StationKey(BaseModel):
    station_id: uuid.UUID
    key_id: uuid.UUID
    prefix: str
    api_key: str | None = Field(description="The new key: shown in this answer only")


class ReceptionBatch(BaseModel):
    """The envelope; each item is a reception record, validated on its own by ingest."""

    model_config = ConfigDict(extra="forbid")

    receptions: list[Any] = Field(
        description=(
            "Reception records: satellite, received_at (ISO-8601 with zone), frequency_hz, "
            "rssi_dbm, snr_db, doppler_hz (or null), phy_payload (base64). At most 5000."
        )
    )
    batch_id: str | None = Field(default=None, description="Echoed back in the answer")


class Rejected(BaseModel):
    index: int
    reason: str = Field(description="; ".join(f"{k}: {v}" for k, v in REASONS.items()))
    detail: str


class IngestAnswer(BaseModel):
    accepted: int = Field(description="Records that were new uplinks")
    duplicates: int = Field(description="Copies of known uplinks (their receptions attached)")
    rejected: list[Rejected]
    batch_id: str | None = None


def _redact(body: dict[str, Any]) -> dict[str, Any]:
    return body | {"api_key": None}


@router.get("", response_model=Page[StationOut], summary="List ground stations")
def list_stations(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[StationOut]:
    with call.read() as session:
        page = paginate(
            session, select(GroundStation), GroundStation.id, cursor=cursor, limit=limit
        )
        return page_response(request, response, page, StationOut.model_validate)


@router.post(
    "", status_code=201, response_model=StationCreated, summary="Register a ground station"
)
def post_station(
    call: Writer, request: Request, body: StationIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> StationCreated:
        made = ground_stations.register_station(
            session,
            call.principal,
            name=body.name,
            lat=body.lat,
            lon=body.lon,
            alt_m=body.alt_m,
            min_elevation_deg=body.min_elevation_deg,
            antennas=body.antennas,
            at=call.now(),
        )
        out = StationOut.model_validate(made.station).model_dump()
        return StationCreated(**out, api_key=made.key.secret)

    return create_idempotently(call, request, idempotency_key, body, create, redact=_redact)


@router.get("/{station_id}", response_model=StationOut, summary="One ground station")
def get_station(call: Reader, station_id: uuid.UUID) -> StationOut:
    with call.read() as session:
        return StationOut.model_validate(ground_stations.get_station(session, station_id))


@router.post(
    "/{station_id}/key",
    status_code=201,
    response_model=StationKey,
    summary="Issue the station a new key (the old one is revoked)",
)
def post_station_key(
    call: Writer, request: Request, station_id: uuid.UUID, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> StationKey:
        issued = ground_stations.issue_station_key(
            session, call.principal, station_id, at=call.now()
        )
        return StationKey(
            station_id=station_id,
            key_id=issued.key.id,
            prefix=issued.key.prefix,
            api_key=issued.secret,
        )

    return create_idempotently(call, request, idempotency_key, _NoBody(), create, redact=_redact)


class _NoBody(BaseModel):
    """The key endpoint takes no body; the idempotency fingerprint is method and path."""


@router.post(
    "/{station_id}/receptions",
    response_model=IngestAnswer,
    summary="Post what the station downloaded (the ground-station protocol)",
    responses={413: {"description": "More than 5000 receptions, or a body over the limit"}},
)
def post_receptions(call: Poster, station_id: uuid.UUID, body: ReceptionBatch) -> JSONResponse:
    items, batch_id = batch_items({"receptions": body.receptions, "batch_id": body.batch_id})
    settings = call.ctx.settings
    result = ingest(
        call.ctx.db,
        station_id,
        items,
        kek=call.ctx.kek,
        at=call.now(),
        fcnt_window=settings.fcnt_window,
        principal=call.principal,
    )
    return JSONResponse(result.to_json(batch_id))
