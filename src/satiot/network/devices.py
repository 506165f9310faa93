"""Devices: the network server's ABP sessions, provisioned, changed and moved through their
lifecycle.

A device's session keys are accepted once, in hex, sealed under the KEK with the device's
DevEUI and the key's purpose bound in as associated data (a sealed key copied onto another row
or into the other column fails to open), and never returned by any function here. Every change
is audited with who made it and why (``record_change``); status moves only through the
``network.states.DEVICE`` table.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES
from satiot.core.auth.users import require_tenant
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from satiot.core.lengths import optional_text
from satiot.network.keys import Kek
from satiot.network.models import Device
from satiot.network.states import DEVICE, DEVICE_CUSTOMER_INITIAL

_HEX16 = re.compile(r"^[0-9A-Fa-f]{16}$")
_HEX8 = re.compile(r"^[0-9A-Fa-f]{8}$")
_HEX32 = re.compile(r"^[0-9A-Fa-f]{32}$")

NWK_S_KEY = "nwk_s_key"
APP_S_KEY = "app_s_key"

#: Downlink priorities (``Device.priority``): a higher one is planned and loaded first where
#: downlinks compete (the planner's run, a station's contact). The BSS sets
#: ``PRIORITY_EMERGENCY`` for a device whose subscription carries the emergency-priority add-on.
PRIORITY_NORMAL = 0
PRIORITY_EMERGENCY = 1
PRIORITY_NAMES = {PRIORITY_NORMAL: "normal", PRIORITY_EMERGENCY: "emergency"}


def priority_name(priority: int) -> str:
    """A device's priority as people read it: ``emergency`` at or above the emergency level."""
    return PRIORITY_NAMES[PRIORITY_EMERGENCY if priority >= PRIORITY_EMERGENCY else PRIORITY_NORMAL]


def key_aad(dev_eui: str, purpose: str) -> bytes:
    """Associated data binding a sealed session key to its device and its role."""
    return f"satiot/device/{dev_eui.upper()}/{purpose}".encode()


def parse_dev_eui(text: str) -> str:
    """A DevEUI as stored: 16 hex digits, upper case."""
    if not isinstance(text, str) or not _HEX16.match(text):
        raise InvalidInput("dev_eui must be 16 hex digits", field="dev_eui")
    return text.upper()


def parse_dev_addr(text: str) -> int:
    if not isinstance(text, str) or not _HEX8.match(text):
        raise InvalidInput("dev_addr must be 8 hex digits", field="dev_addr")
    return int(text, 16)


def parse_key(text: str, field: str) -> bytes:
    if not isinstance(text, str) or not _HEX32.match(text):
        raise InvalidInput(f"{field} must be 32 hex digits (16 bytes)", field=field)
    return bytes.fromhex(text)


def dev_addr_hex(dev_addr: int) -> str:
    return f"{dev_addr:08X}"


def device_view(device: Device) -> dict[str, Any]:
    """What the audit log and events record of a device: never its keys."""
    return {
        "dev_eui": device.dev_eui,
        "dev_addr": dev_addr_hex(device.dev_addr),
        "name": device.name,
        "status": device.status,
        "lat": device.lat,
        "lon": device.lon,
    }


def _check_position(lat: float | None, lon: float | None) -> None:
    if lat is not None and not -90.0 <= lat <= 90.0:
        raise InvalidInput("lat must be within -90..90", field="lat")
    if lon is not None and not -180.0 <= lon <= 180.0:
        raise InvalidInput("lon must be within -180..180", field="lon")


def create_device(
    session: Session,
    principal: Principal,
    *,
    kek: Kek,
    tenant_id: uuid.UUID,
    dev_eui: str,
    dev_addr: str,
    nwk_s_key: str,
    app_s_key: str,
    at: datetime,
    name: str = "",
    lat: float | None = None,
    lon: float | None = None,
    status: str | None = None,
) -> Device:
    """Provision an ABP session in ``tenant_id``; a DevEUI already known anywhere is a 409.

    The operator's staff may name any lifecycle state (default ``active``: an ABP device can
    talk at once). A customer's own registration lands in ``inventory`` (or ``test``): the
    notice allows service only under a signed contract, so the device carries traffic once
    the BSS activates it (:mod:`satiot.bss.activation`).
    """
    eui = parse_dev_eui(dev_eui)
    addr = parse_dev_addr(dev_addr)
    nwk = parse_key(nwk_s_key, NWK_S_KEY)
    app = parse_key(app_s_key, APP_S_KEY)
    label = optional_text(name, Device.name, "name")
    _check_position(lat, lon)
    customer = not ROLES[principal.role].operator_staff
    initial = status or ("inventory" if customer else DEVICE.initial)
    if initial not in DEVICE.states:
        raise InvalidInput(f"status must be one of: {', '.join(DEVICE.states)}", field="status")
    if customer and initial not in DEVICE_CUSTOMER_INITIAL:
        raise PermissionDenied(
            f"a customer registers devices as {' or '.join(sorted(DEVICE_CUSTOMER_INITIAL))};"
            " service starts with activation under a signed contract (an order)",
            field="status",
        )
    require_tenant(session, tenant_id)
    if session.scalar(select(Device.id).where(Device.dev_eui == eui)) is not None:
        raise Conflict(f"device {eui} already exists", field="dev_eui")
    device = Device(
        tenant_id=tenant_id,
        dev_eui=eui,
        dev_addr=addr,
        name=label,
        status=initial,
        nwk_s_key_sealed=kek.seal(nwk, key_aad(eui, NWK_S_KEY)),
        app_s_key_sealed=kek.seal(app, key_aad(eui, APP_S_KEY)),
        kek_id=kek.id,
        f_cnt_up=None,
        f_cnt_down=0,
        lat=lat,
        lon=lon,
        active_since=at if initial == "active" else None,
        created_at=at,
        updated_at=at,
    )
    session.add(device)
    try:
        session.flush()
    except IntegrityError as exc:
        # Another tenant's device (invisible to a customer's session) holds the DevEUI, or a
        # concurrent request created it first: DevEUIs are unique network-wide.
        raise Conflict(f"device {eui} already exists", field="dev_eui") from exc
    record_change(
        session,
        principal,
        at=at,
        action="device.created",
        target=("device", device.id),
        tenant_id=device.tenant_id,
        after=device_view(device),
    )
    return device


def get_device(session: Session, dev_eui: str) -> Device:
    """The device (within the session's tenant scope) or 404; a malformed DevEUI is 404 too,
    so an answer never tells a well-formed foreign DevEUI from a typo."""
    eui = dev_eui.upper() if isinstance(dev_eui, str) and _HEX16.match(dev_eui) else None
    device = None
    if eui is not None:
        device = session.scalar(select(Device).where(Device.dev_eui == eui))
    if device is None:
        raise NotFound(f"device {dev_eui} not found")
    return device


def update_device(
    session: Session,
    principal: Principal,
    dev_eui: str,
    changes: dict[str, Any],
    *,
    at: datetime,
) -> Device:
    """Change ``name``, ``lat`` and/or ``lon`` (the keys of ``changes``); audited if anything
    differs. A ``None`` position clears it."""
    unknown = set(changes) - {"name", "lat", "lon"}
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}", field=min(unknown))
    device = get_device(session, dev_eui)
    if "name" in changes:
        if changes["name"] is None:
            raise InvalidInput("name must be a string", field="name")
        changes = changes | {"name": optional_text(str(changes["name"]), Device.name, "name")}
    _check_position(changes.get("lat"), changes.get("lon"))
    before = device_view(device)
    for key, value in changes.items():
        setattr(device, key, value)
    after = device_view(device)
    if after != before:
        device.updated_at = at
        record_change(
            session,
            principal,
            at=at,
            action="device.updated",
            target=("device", device.id),
            tenant_id=device.tenant_id,
            before=before,
            after=after,
        )
    return device


def set_device_status(
    session: Session,
    principal: Principal,
    dev_eui: str,
    status: str,
    *,
    at: datetime,
    reason: str | None,
) -> Device:
    """Move a device through its lifecycle: 409 for a move the table does not have, 403 for
    one the caller's role may not make. The network stops taking its frames outside
    ``active`` from the next batch on."""
    return move_device(
        session, principal, get_device(session, dev_eui), status, at=at, reason=reason
    )


def move_device(
    session: Session,
    principal: Principal,
    device: Device,
    status: str,
    *,
    at: datetime,
    reason: str | None,
) -> Device:
    """:func:`set_device_status` on a device already read (a subscription's move has it)."""
    DEVICE.check(device.status, status, principal.role)
    before = device_view(device)
    if status == "active" and device.status != "active":
        device.active_since = at
    device.status = status
    device.updated_at = at
    record_change(
        session,
        principal,
        at=at,
        action="device.status-changed",
        target=("device", device.id),
        tenant_id=device.tenant_id,
        before=before,
        after=device_view(device),
        reason=reason,
        payload={"dev_eui": device.dev_eui, "from": before["status"], "to": status},
    )
    return device


def set_device_priority(
    session: Session,
    principal: Principal,
    device_id: uuid.UUID,
    priority: int,
    *,
    at: datetime,
    reason: str | None,
) -> Device:
    """Give a device its downlink priority (``PRIORITY_*``); audited when it changes.

    The network ranks only downlinks by it, never uplinks: what the satellites bring down is
    all taken, whoever sent it.
    """
    if priority not in PRIORITY_NAMES:
        raise InvalidInput(
            f"priority must be one of: {', '.join(map(str, PRIORITY_NAMES))}", field="priority"
        )
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found")
    if device.priority == priority:
        return device
    before = {"dev_eui": device.dev_eui, "priority": PRIORITY_NAMES.get(device.priority)}
    device.priority = priority
    device.updated_at = at
    record_change(
        session,
        principal,
        at=at,
        action="device.priority-changed",
        target=("device", device.id),
        tenant_id=device.tenant_id,
        before=before,
        after={"dev_eui": device.dev_eui, "priority": PRIORITY_NAMES[priority]},
        reason=reason,
    )
    return device


def open_keys(kek: Kek, device: Device) -> tuple[bytes, bytes]:
    """The device's (NwkSKey, AppSKey) in clear, for the network server's own use only."""
    return (
        kek.open(device.nwk_s_key_sealed, key_aad(device.dev_eui, NWK_S_KEY)),
        kek.open(device.app_s_key_sealed, key_aad(device.dev_eui, APP_S_KEY)),
    )
