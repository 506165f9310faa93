"""The Devices pages: every terminal the network knows, and one terminal in detail.

The list pages by id (cursor), so it stays as fast at 100,000 devices as at 10; the counts in
each row are computed for the rows on the page only. A device's page shows its newest uplinks
and its downlink queue with the planner's estimated delivery time, each section only to
people whose role may read it (the regulator sees devices, not message content).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.api.csv_files import streamed_download
from satiot.bss.subscriptions import SUSPENDED_BY_TEXT
from satiot.core.errors import DomainError, NotFound
from satiot.core.models import AuditEntry
from satiot.core.pagination import Page, paginate
from satiot.network import device_export
from satiot.network.models import Device, Downlink, GroundStation, Uplink
from satiot.network.states import DOWNLINK_PENDING_STATES
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, SignedIn
from satiot.web.views.device_service import ServiceFacts, history, service_facts
from satiot.web.views.network_rows import (
    MessageRow,
    ago,
    hex_payload,
    id_floor,
    message_rows,
    newest_uplinks,
    tenant_names,
)

router = APIRouter()

PATH = "/devices"
PAGE_SIZE = 50
#: Uplinks and downlinks shown on a device's page.
DEVICE_ROWS = 25
#: The list counts each device's uplinks of this last stretch of time.
RECENT = timedelta(hours=24)
#: The Silent filter's choices: no uplink for this many days (or never).
SILENT_CHOICES = (1, 7, 30)


@dataclass(frozen=True)
class DeviceRow:
    device: Device
    tenant: str
    last_seen: str
    uplinks: int  # in the last RECENT
    pending_downlinks: int


@dataclass
class DeviceList:
    rows: list[DeviceRow]
    next_url: str | None
    first_url: str | None
    q: str
    silent: int | None
    export_url: str


def _list_url(q: str, silent: int | None, after: str | None = None, path: str = PATH) -> str:
    query = urlencode({k: v for k, v in {"q": q, "silent": silent, "after": after}.items() if v})
    return f"{path}?{query}" if query else path


def _silent_days(text: str) -> int | None:
    """The Silent filter's days: one of :data:`SILENT_CHOICES`, anything else none."""
    return int(text) if text in {str(d) for d in SILENT_CHOICES} else None


def _where(q: str, silent: int | None, now: datetime) -> list[ColumnElement[bool]]:
    """The search (a DevEUI prefix or part of the name) and the Silent filter."""
    where: list[ColumnElement[bool]] = []
    term = q.strip()
    if term:
        where.append(or_(Device.dev_eui.startswith(term.upper()), Device.name.ilike(f"%{term}%")))
    if silent is not None:
        where.append(device_export.silent(silent, now))
    return where


def _counts(
    session: Session, ids: list[uuid.UUID], now: datetime
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    """Uplinks of the last :data:`RECENT` and downlinks waiting, of the devices ``ids``.

    The uplinks are a range of each device's (device, id) index (ids are time-ordered), so a
    page costs the same however long the devices have been sending; a count of all their
    uplinks grew with every message (25,000 entries for a page at 1,000,000 uplinks)."""
    if not ids:
        return {}, {}
    since = now - RECENT
    uplinks = session.execute(
        select(Uplink.device_id, func.count(Uplink.id))
        .where(Uplink.device_id.in_(ids), Uplink.id >= id_floor(since), Uplink.accepted_at >= since)
        .group_by(Uplink.device_id)
    )
    pending = session.execute(
        select(Downlink.device_id, func.count(Downlink.id))
        .where(Downlink.device_id.in_(ids), Downlink.status.in_(DOWNLINK_PENDING_STATES))
        .group_by(Downlink.device_id)
    )
    return {k: v for k, v in uplinks}, {k: v for k, v in pending}


def list_devices(
    session: Session,
    signed_in: ConsoleSession,
    *,
    q: str,
    after: str | None,
    silent: int | None = None,
) -> DeviceList:
    """One page of the devices the session may see, optionally searched by DevEUI or name
    and kept to those silent for ``silent`` days."""
    now = signed_in.now()
    term = q.strip()
    stmt = select(Device).where(*_where(term, silent, now))
    found: Page[Device] = paginate(session, stmt, Device.id, cursor=after, limit=PAGE_SIZE)
    devices = list(found.items)
    ids = [d.id for d in devices]
    uplinks, pending = _counts(session, ids, now)
    staff = signed_in.principal.all_tenants
    tenants = tenant_names(session, {d.tenant_id for d in devices}) if staff else {}
    rows = [
        DeviceRow(
            d,
            tenants.get(d.tenant_id, ""),
            ago(d.last_seen_at, now),
            uplinks.get(d.id, 0),
            pending.get(d.id, 0),
        )
        for d in devices
    ]
    return DeviceList(
        rows,
        _list_url(term, silent, found.next_cursor) if found.next_cursor else None,
        _list_url(term, silent) if after else None,
        term,
        silent,
        _list_url(term, silent, path=PATH + "/export.csv"),
    )


@router.get(PATH)
def devices_page(
    request: Request,
    signed_in: SignedIn,
    q: str = "",
    after: str | None = None,
    silent: str = "",
) -> Response:
    signed_in.require_any("devices:read")
    flash = None
    status_code = 200
    days = _silent_days(silent)
    try:
        with signed_in.call.read() as session:
            listing = list_devices(session, signed_in, q=q, after=after or None, silent=days)
    except DomainError as exc:  # a cursor this server did not issue: show the first page
        with signed_in.call.read() as session:
            listing = list_devices(session, signed_in, q=q, after=None, silent=days)
        flash, status_code = Flash("error", exc.detail), exc.status
    return page(
        request,
        signed_in,
        "devices.html",
        {
            "title": "Devices",
            "listing": listing,
            "with_tenant": signed_in.principal.all_tenants,
            "silent_choices": SILENT_CHOICES,
        },
        flash=flash,
        status_code=status_code,
    )


@router.get(PATH + "/export.csv")
def export_csv(signed_in: SignedIn, q: str = "", silent: str = "") -> Response:
    """Every device the search and the Silent filter keep, as the API's CSV."""
    signed_in.require_any("devices:read")
    now = signed_in.now()
    where = _where(q, _silent_days(silent), now)
    return streamed_download(
        signed_in.call.read,
        lambda session: device_export.export_devices(session, where, now=now),
        device_export.file_name(now),
    )


@dataclass(frozen=True)
class DownlinkRow:
    downlink: Downlink
    payload: str
    station: str
    eta: str


@dataclass
class DeviceDetail:
    device: Device
    tenant: str
    last_seen: str
    uplink_count: int
    uplinks: list[MessageRow] = field(default_factory=list)
    downlinks: list[DownlinkRow] = field(default_factory=list)
    pending: int = 0
    service: ServiceFacts | None = None
    history: list[AuditEntry] = field(default_factory=list)


def _downlinks(session: Session, device: Device, signed_in: ConsoleSession) -> list[DownlinkRow]:
    """Pending downlinks first (in queue order), then the most recent settled ones."""
    pending = list(
        session.scalars(
            select(Downlink)
            .where(Downlink.device_id == device.id, Downlink.status.in_(DOWNLINK_PENDING_STATES))
            .order_by(Downlink.id)
            .limit(DEVICE_ROWS)
        )
    )
    settled = list(
        session.scalars(
            select(Downlink)
            .where(Downlink.device_id == device.id, Downlink.status.not_in(DOWNLINK_PENDING_STATES))
            .order_by(Downlink.id.desc())
            .limit(max(0, DEVICE_ROWS - len(pending)))
        )
    )
    station_ids = {d.ground_station_id for d in pending + settled if d.ground_station_id}
    stations: dict[uuid.UUID, str] = {}
    if station_ids:
        found = session.execute(
            select(GroundStation.id, GroundStation.name).where(GroundStation.id.in_(station_ids))
        )
        stations = {station_id: name for station_id, name in found}
    now = signed_in.now()
    rows = []
    for d in pending + settled:
        eta = ""
        if d.status in DOWNLINK_PENDING_STATES and d.estimated_delivery_at is not None:
            minutes = (d.estimated_delivery_at - now).total_seconds() / 60
            eta = "due now" if minutes <= 0 else f"in {minutes:.0f} min"
        rows.append(
            DownlinkRow(
                d,
                hex_payload(d.payload),
                stations.get(d.ground_station_id, "") if d.ground_station_id else "",
                eta,
            )
        )
    return rows


def device_detail(session: Session, signed_in: ConsoleSession, dev_eui: str) -> DeviceDetail:
    eui = dev_eui.upper()
    device = session.scalar(select(Device).where(Device.dev_eui == eui))
    if device is None:
        raise NotFound(f"device {dev_eui} not found")
    scopes = signed_in.principal.scopes
    staff = signed_in.principal.all_tenants
    count = session.scalar(select(func.count(Uplink.id)).where(Uplink.device_id == device.id))
    detail = DeviceDetail(
        device,
        tenant_names(session, [device.tenant_id]).get(device.tenant_id, "") if staff else "",
        ago(device.last_seen_at, signed_in.now()),
        int(count or 0),
    )
    if "subscriptions:read" in scopes:
        tz = signed_in.ctx.settings.business_timezone
        detail.service = service_facts(session, device, now=signed_in.now(), tz=tz)
    if "audit:read" in scopes:
        detail.history = history(session, device)
    if "uplinks:read" in scopes:
        uplinks = newest_uplinks(session, limit=DEVICE_ROWS, device_id=device.id)
        detail.uplinks = message_rows(session, uplinks, with_tenant=False)
    if "downlinks:read" in scopes:
        detail.downlinks = _downlinks(session, device, signed_in)
        detail.pending = sum(
            1 for r in detail.downlinks if r.downlink.status in DOWNLINK_PENDING_STATES
        )
    return detail


@router.get(PATH + "/{dev_eui}")
def device_page(request: Request, signed_in: SignedIn, dev_eui: str) -> Response:
    signed_in.require_any("devices:read")
    try:
        with signed_in.call.read() as session:
            detail = device_detail(session, signed_in, dev_eui)
    except NotFound as exc:
        return page(
            request,
            signed_in,
            "not_found.html",
            {
                "title": "Device not found",
                "message": exc.detail,
                "back": PATH,
                "back_label": "All devices",
            },
            status_code=404,
        )
    return page(
        request,
        signed_in,
        "device.html",
        {
            "title": detail.device.name or detail.device.dev_eui,
            "d": detail,
            "suspended_by": SUSPENDED_BY_TEXT,
        },
    )
