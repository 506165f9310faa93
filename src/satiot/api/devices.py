"""Devices (ABP sessions) and the pull API for their messages.

Session keys go in once, in hex, and never come out: no answer, stored idempotent reply, audit
entry or event carries them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import ColumnElement, select
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
from satiot.api.csv_files import CSV_FILE, streamed_download
from satiot.api.deps import Call, requires
from satiot.core.pagination import paginate
from satiot.network import device_export, devices, uplinks
from satiot.network.models import Device

router = APIRouter(prefix="/devices", tags=["devices"])
Reader = Annotated[Call, Depends(requires("devices:read"))]
Writer = Annotated[Call, Depends(requires("devices:write"))]
UplinkReader = Annotated[Call, Depends(requires("uplinks:read"))]

DeviceState = Literal[
    "test", "inventory", "activation-ready", "active", "suspended", "deactivated", "retired"
]
_HEX16 = r"^[0-9A-Fa-f]{16}$"
_HEX8 = r"^[0-9A-Fa-f]{8}$"
_HEX32 = r"^[0-9A-Fa-f]{32}$"


class DeviceIn(Input):
    dev_eui: str = Field(pattern=_HEX16, examples=["70B3D57ED0000001"])
    dev_addr: str = Field(pattern=_HEX8, examples=["26000001"])
    nwk_s_key: str = Field(pattern=_HEX32, description="NwkSKey, 32 hex digits; never returned")
    app_s_key: str = Field(pattern=_HEX32, description="AppSKey, 32 hex digits; never returned")
    name: str = Field(default="", max_length=100)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    status: DeviceState | None = Field(
        default=None,
        description=(
            "Initial lifecycle state. Operator staff: any (default active). Customers: "
            "inventory (default) or test; the device carries traffic once activated under a "
            "signed contract (an order)"
        ),
    )
    tenant_id: uuid.UUID | None = Field(
        default=None, description="Operator staff only: the customer's tenant (default: yours)"
    )


class DevicePatch(Input):
    # A name can be changed, not removed: the schema offers no null, and the domain refuses
    # one (422). The length applies to the string alone: on the whole union, pydantic raised
    # a TypeError for a null, a 500.
    name: Annotated[str, Field(max_length=100)] | SkipJsonSchema[None] = None
    lat: float | None = Field(default=None, ge=-90, le=90, description="null clears it")
    lon: float | None = Field(default=None, ge=-180, le=180, description="null clears it")


class DeviceStatusIn(Input):
    status: DeviceState
    reason: str | None = Field(default=None, max_length=500)


class DeviceOut(Output):
    id: uuid.UUID
    tenant_id: uuid.UUID
    dev_eui: str
    dev_addr: str = Field(description="8 hex digits")
    name: str
    status: str
    f_cnt_up: int | None = Field(description="Highest uplink frame counter accepted")
    f_cnt_down: int = Field(description="Next downlink frame counter")
    lat: float | None
    lon: float | None
    last_seen_at: datetime | None
    active_since: datetime | None = Field(
        description="When the device last entered `active`: a device not heard since is "
        "silent from here. Null for one never active, or active from before this was recorded "
        "with no subscription to date it (its creation counts instead)"
    )
    priority: Literal["normal", "emergency"] = Field(
        description=(
            "Downlink priority: `emergency` while the device's subscription carries the "
            "emergency-priority add-on (set by the BSS); its downlinks are planned and loaded "
            "before others' where they compete. Uplinks are never ranked."
        )
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, device: Device) -> DeviceOut:
        return cls(
            id=device.id,
            tenant_id=device.tenant_id,
            dev_eui=device.dev_eui,
            dev_addr=devices.dev_addr_hex(device.dev_addr),
            name=device.name,
            status=device.status,
            f_cnt_up=device.f_cnt_up,
            f_cnt_down=device.f_cnt_down,
            lat=device.lat,
            lon=device.lon,
            last_seen_at=device.last_seen_at,
            active_since=device.active_since,
            priority=devices.priority_name(device.priority),
            created_at=device.created_at,
            updated_at=device.updated_at,
        )


class ReceptionOut(BaseModel):
    ground_station_id: uuid.UUID
    ground_station: str
    satellite: str
    received_at: str
    frequency_hz: int
    rssi_dbm: float
    snr_db: float
    doppler_hz: float | None


class UplinkMessage(BaseModel):
    """One message, exactly as the webhook and MQTT deliver it (``id`` is stable)."""

    type: Literal["uplink.accepted"]
    id: uuid.UUID
    tenant_id: uuid.UUID
    dev_eui: str
    f_cnt: int
    f_port: int | None
    payload: str = Field(description="base64 of the decrypted FRMPayload")
    confirmed: bool
    ack: bool
    received_at: str = Field(description="Earliest reception when the message was accepted")
    accepted_at: str
    receptions: list[ReceptionOut] = Field(description="Every copy known at the time of reading")


StatusParam = Annotated[DeviceState | None, Query()]
TenantParam = Annotated[uuid.UUID | None, Query(description="Only this tenant")]
SilentParam = Annotated[
    int | None,
    Query(
        ge=1,
        le=device_export.MAX_SILENT_DAYS,
        description="Only active devices with no uplink in this many days and active since "
        "before then (`active_since`, else their creation)",
    ),
]


def _filters(
    call: Call, status: str | None, tenant_id: uuid.UUID | None, silent_for_days: int | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if status is not None:
        where.append(Device.status == status)
    if tenant_id is not None:
        where.append(Device.tenant_id == tenant_id)
    if silent_for_days is not None:
        where.append(device_export.silent(silent_for_days, call.now()))
    return where


@router.get("", response_model=Page[DeviceOut], summary="List devices, oldest first")
def list_devices(
    call: Reader,
    request: Request,
    response: Response,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    status: StatusParam = None,
    tenant_id: TenantParam = None,
    silent_for_days: SilentParam = None,
) -> Page[DeviceOut]:
    stmt = select(Device).where(*_filters(call, status, tenant_id, silent_for_days))
    with call.read() as session:
        page = paginate(session, stmt, Device.id, cursor=cursor, limit=limit)
        return page_response(request, response, page, DeviceOut.of)


@router.get(
    "/csv",
    summary="Every device the list's filters keep, as one CSV file (streamed)",
    response_class=StreamingResponse,
    responses=CSV_FILE,
)
def export_csv(
    call: Reader,
    status: StatusParam = None,
    tenant_id: TenantParam = None,
    silent_for_days: SilentParam = None,
) -> StreamingResponse:
    """One line per device: DevEUI, name, tenant, status, priority, DevAddr, last seen and
    whole days since (``never`` for a device never heard), frame counters, position,
    creation and last activation (China time), oldest first; the columns are in
    :mod:`satiot.network.device_export`."""
    now = call.now()
    where = _filters(call, status, tenant_id, silent_for_days)
    return streamed_download(
        call.read,
        lambda session: device_export.export_devices(session, where, now=now),
        device_export.file_name(now),
    )


@router.post("", status_code=201, response_model=DeviceOut, summary="Provision a device (ABP)")
def post_device(
    call: Writer, request: Request, body: DeviceIn, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    def create(session: Session) -> DeviceOut:
        device = devices.create_device(
            session,
            call.principal,
            kek=call.ctx.kek,
            tenant_id=body.tenant_id or call.principal.tenant_id,
            dev_eui=body.dev_eui,
            dev_addr=body.dev_addr,
            nwk_s_key=body.nwk_s_key,
            app_s_key=body.app_s_key,
            name=body.name,
            lat=body.lat,
            lon=body.lon,
            status=body.status,
            at=call.now(),
        )
        return DeviceOut.of(device)

    return create_idempotently(call, request, idempotency_key, body, create)


@router.get("/{dev_eui}", response_model=DeviceOut, summary="One device (never its keys)")
def get_device(call: Reader, dev_eui: str) -> DeviceOut:
    with call.read() as session:
        return DeviceOut.of(devices.get_device(session, dev_eui))


@router.patch("/{dev_eui}", response_model=DeviceOut, summary="Rename or move a device")
def patch_device(call: Writer, dev_eui: str, body: DevicePatch) -> DeviceOut:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    with call.write() as session:
        device = devices.update_device(session, call.principal, dev_eui, changes, at=call.now())
        return DeviceOut.of(device)


@router.post(
    "/{dev_eui}/status",
    response_model=DeviceOut,
    summary="Move a device through its lifecycle",
    responses={409: {"description": "Not an allowed transition from the current state"}},
)
def post_device_status(call: Writer, dev_eui: str, body: DeviceStatusIn) -> DeviceOut:
    with call.write() as session:
        device = devices.set_device_status(
            session, call.principal, dev_eui, body.status, at=call.now(), reason=body.reason
        )
        return DeviceOut.of(device)


@router.get(
    "/{dev_eui}/uplinks",
    response_model=Page[UplinkMessage],
    summary="A device's messages in acceptance order (pull with a cursor)",
)
def list_device_uplinks(
    call: UplinkReader,
    request: Request,
    response: Response,
    dev_eui: str,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
) -> Page[Any]:
    with call.read() as session:
        page = uplinks.list_uplinks(session, dev_eui, cursor=cursor, limit=limit)
    return page_response(request, response, page, lambda item: item)
