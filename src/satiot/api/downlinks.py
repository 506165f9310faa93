"""Downlinks: a device's command queue for customers, and the ground stations' side of it.

Customers queue, list, read and cancel their devices' downlinks (tenant-scoped like every
customer route). Every answer carries the plan: the satellite that will carry the command,
the station that loads it and the estimated delivery time.

Ground stations fetch the downlinks planned through them as encoded LoRaWAN frames and post
receipts. Those two routes serve every tenant's downlinks by design (a station carries all
customers' commands), so after checking that the key is this station's own (or operator
staff's) they use a session scoped to all tenants rather than the caller's tenant.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
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
from satiot.core.auth.tenancy import ALL_TENANTS, scope_session
from satiot.core.errors import InvalidInput
from satiot.network import downlinks
from satiot.network.devices import dev_addr_hex, get_device
from satiot.network.downlink_changes import downlink_message, station_names
from satiot.network.downlink_loads import LoadRules
from satiot.network.downlink_station import Receipt, apply_receipts, station_downlinks
from satiot.network.ground_stations import authorize_poster, get_station
from satiot.network.models import Downlink, GroundStation

router = APIRouter(tags=["downlinks"])
Reader = Annotated[Call, Depends(requires("downlinks:read"))]
Writer = Annotated[Call, Depends(requires("downlinks:write"))]
Station = Annotated[Call, Depends(requires("receptions:write"))]

DownlinkStatus = Literal[
    "queued",
    "scheduled",
    "on-satellite",
    "sent",
    "acknowledged",
    "expired",
    "failed",
    "cancelled",
]
MAX_RECEIPTS = 1000


class DownlinkIn(Input):
    payload: str = Field(
        max_length=4 * downlinks.MAX_PAYLOAD_BYTES,
        description=f"The command, base64; at most {downlinks.MAX_PAYLOAD_BYTES} bytes decoded",
        examples=["AQI="],
    )
    f_port: int = Field(ge=downlinks.F_PORT_MIN, le=downlinks.F_PORT_MAX, examples=[10])
    confirmed: bool = Field(
        default=False, description="Ask the device to acknowledge it (status acknowledged)"
    )
    expires_at: AwareDatetime = Field(
        description="Give up (status expired) if not sent by then; ISO-8601 with a zone, "
        f"at most {downlinks.MAX_LIFETIME.days} days ahead"
    )


def _decode(payload: str) -> bytes:
    """The payload's bytes. Checked in the handler, after the device lookup, so that a
    command aimed at a device the caller cannot see is a 404 whatever its payload."""
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("payload must be base64", field="payload") from exc


class DownlinkOut(Output):
    id: uuid.UUID
    tenant_id: uuid.UUID
    dev_eui: str
    status: DownlinkStatus
    f_port: int
    confirmed: bool
    payload: str = Field(description="The command as queued, base64")
    f_cnt_down: int | None = Field(description="Frame counter, once a station fetched it")
    expires_at: datetime | None
    estimated_delivery_at: datetime | None = Field(
        description="When the planned satellite next serves the device after loading it "
        "(the device must uplink then: Class A)"
    )
    satellite: str | None
    ground_station_id: uuid.UUID | None
    ground_station: str | None = Field(description="Where the satellite is loaded")
    load_at: datetime | None
    load_until: datetime | None
    reason: str | None = Field(description="Why it waits, or why it ended as it did")
    created_at: datetime
    updated_at: datetime
    loaded_at: datetime | None
    sent_at: datetime | None
    acknowledged_at: datetime | None


class Flushed(BaseModel):
    cancelled: int = Field(description="How many downlinks were cancelled")
    ids: list[uuid.UUID]
    kept: int = Field(description="Pending downlinks already on a satellite (not cancellable)")


def _outs(session: Session, rows: list[Downlink]) -> list[DownlinkOut]:
    names = station_names(session, [dl.ground_station_id for dl in rows])
    return [
        DownlinkOut.model_validate(
            downlink_message(dl, names.get(dl.ground_station_id) if dl.ground_station_id else None)
        )
        for dl in rows
    ]


@router.post(
    "/devices/{dev_eui}/downlinks",
    status_code=201,
    response_model=DownlinkOut,
    summary="Queue a downlink; the answer carries its plan and estimated delivery",
    responses={409: {"description": "Device not active, or its queue is full"}},
)
def post_downlink(
    call: Writer,
    request: Request,
    dev_eui: str,
    body: DownlinkIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    # Plan before the writing transaction: orbit arithmetic must not hold the writer.
    with call.read() as session:
        device = get_device(session, dev_eui)
        payload = _decode(body.payload)
        rules = LoadRules.from_settings(call.ctx.settings)
        plan = downlinks.prepare_plan(session, device, call.now(), rules)

    def create(session: Session) -> DownlinkOut:
        dl = downlinks.queue_downlink(
            session,
            call.principal,
            dev_eui=dev_eui,
            payload=payload,
            f_port=body.f_port,
            confirmed=body.confirmed,
            expires_at=body.expires_at,
            at=call.now(),
            cap=call.ctx.settings.downlink_queue_cap,
            plan=plan,
            rules=rules,
        )
        return _outs(session, [dl])[0]

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get(
    "/devices/{dev_eui}/downlinks",
    response_model=Page[DownlinkOut],
    summary="A device's downlinks in queue order (oldest first)",
)
def list_downlinks(
    call: Reader,
    request: Request,
    response: Response,
    dev_eui: str,
    status: Annotated[DownlinkStatus | None, Query(description="Only this status")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[DownlinkOut]:
    with call.read() as session:
        page = downlinks.list_downlinks(session, dev_eui, status=status, cursor=cursor, limit=limit)
        items = _outs(session, list(page.items))
    by_id = {o.id: o for o in items}
    return page_response(request, response, page, lambda dl: by_id[dl.id])


@router.get(
    "/devices/{dev_eui}/downlinks/{downlink_id}",
    response_model=DownlinkOut,
    summary="One downlink, with its status and estimated delivery",
)
def get_downlink(call: Reader, dev_eui: str, downlink_id: uuid.UUID) -> DownlinkOut:
    with call.read() as session:
        return _outs(session, [downlinks.get_downlink(session, dev_eui, downlink_id)])[0]


@router.delete(
    "/devices/{dev_eui}/downlinks/{downlink_id}",
    response_model=DownlinkOut,
    summary="Cancel a queued or scheduled downlink (409 once it has left the ground)",
)
def delete_downlink(call: Writer, dev_eui: str, downlink_id: uuid.UUID) -> DownlinkOut:
    with call.write() as session:
        dl = downlinks.cancel_downlink(session, call.principal, dev_eui, downlink_id, at=call.now())
        return _outs(session, [dl])[0]


@router.delete(
    "/devices/{dev_eui}/downlinks",
    response_model=Flushed,
    summary="Cancel every cancellable downlink of a device",
)
def flush_downlinks(call: Writer, dev_eui: str) -> Flushed:
    with call.write() as session:
        done = downlinks.flush_downlinks(session, call.principal, dev_eui, at=call.now())
    return Flushed(cancelled=len(done.cancelled), ids=done.cancelled, kept=done.kept)


# -- the ground stations' side -------------------------------------------------------------


class StationDownlinkOut(BaseModel):
    id: uuid.UUID
    dev_eui: str
    dev_addr: str = Field(description="8 hex digits")
    satellite: str | None = Field(description="Load the frame onto this satellite")
    load_at: datetime | None = Field(description="The planned load window opens")
    load_until: datetime | None = Field(description="… and closes")
    expires_at: datetime | None = Field(description="The satellite must not send it after")
    confirmed: bool
    f_cnt_down: int
    status: Literal["scheduled"]
    phy_payload: str = Field(description="The LoRaWAN frame to transmit, base64")


class StationDownlinks(BaseModel):
    items: list[StationDownlinkOut]


class ReceiptBatch(BaseModel):
    """The envelope; each receipt is checked on its own, so one bad item is one rejection."""

    model_config = ConfigDict(extra="forbid")

    receipts: list[Any] = Field(
        max_length=MAX_RECEIPTS,
        description=f"Items {{downlink_id, satellite, status: loaded|sent|failed, at (ISO-8601 "
        f"with zone), reason (optional)}}; at most {MAX_RECEIPTS}",
    )


class _ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    downlink_id: uuid.UUID
    satellite: str = Field(min_length=1, max_length=64)
    status: Literal["loaded", "sent", "failed"]
    at: AwareDatetime
    reason: str | None = Field(default=None, max_length=500)


class ReceiptRejected(BaseModel):
    index: int
    reason: str


class ReceiptAnswer(BaseModel):
    applied: int = Field(description="Receipts that moved a downlink")
    duplicates: int = Field(description="Receipts repeating what was already recorded")
    rejected: list[ReceiptRejected]


def _station_session(call: Call, station_id: uuid.UUID, session: Session) -> GroundStation:
    scope_session(session, ALL_TENANTS)
    station = get_station(session, station_id)
    authorize_poster(call.principal, station)
    return station


@router.get(
    "/ground-stations/{station_id}/downlinks",
    response_model=StationDownlinks,
    summary=(
        "The scheduled downlinks this station loads, as frames (the contact that closes "
        "first first; within a contact, priority devices first)"
    ),
)
def get_station_downlinks(
    call: Station,
    station_id: uuid.UUID,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> StationDownlinks:
    # A write: the first fetch of a downlink assigns its frame counter.
    with call.ctx.db.write() as session:
        station = _station_session(call, station_id, session)
        found = station_downlinks(session, station, call.ctx.kek, call.now(), limit=limit)
        items = [
            StationDownlinkOut(
                id=s.downlink.id,
                dev_eui=s.downlink.dev_eui,
                dev_addr=dev_addr_hex(s.dev_addr),
                satellite=s.downlink.satellite,
                load_at=s.downlink.load_at,
                load_until=s.downlink.load_until,
                expires_at=s.downlink.expires_at,
                confirmed=s.downlink.confirmed,
                f_cnt_down=s.f_cnt_down,
                status="scheduled",
                phy_payload=base64.b64encode(s.phy_payload).decode(),
            )
            for s in found
        ]
    return StationDownlinks(items=items)


@router.post(
    "/ground-stations/{station_id}/downlink-receipts",
    response_model=ReceiptAnswer,
    summary="Report downlinks loaded onto, sent by, or failed on a satellite",
)
def post_downlink_receipts(
    call: Station, station_id: uuid.UUID, body: ReceiptBatch
) -> ReceiptAnswer:
    parsed: list[tuple[int, Receipt]] = []
    rejected: list[ReceiptRejected] = []
    for index, item in enumerate(body.receipts):
        try:
            r = _ReceiptIn.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "receipt"
            rejected.append(ReceiptRejected(index=index, reason=f"{where}: {first['msg']}"))
            continue
        parsed.append((index, Receipt(r.downlink_id, r.satellite, r.status, r.at, r.reason)))
    with call.ctx.db.write() as session:
        station = _station_session(call, station_id, session)
        result = apply_receipts(
            session, call.principal, station, [r for _, r in parsed], now=call.now()
        )
    rejected += [ReceiptRejected(index=parsed[i][0], reason=why) for i, why in result.rejected]
    rejected.sort(key=lambda r: r.index)
    return ReceiptAnswer(applied=result.applied, duplicates=result.duplicates, rejected=rejected)
