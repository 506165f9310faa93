"""The downlink queue: customers' commands to their devices, from queued to acknowledged.

A downlink is durable from the moment it is accepted and moves only through the lifecycle
table (``network.states.DOWNLINK``); every move is audited and announced as a
``downlink.<status>`` event (:mod:`satiot.network.downlink_changes`), which delivery turns
into webhooks and MQTT messages. A device's queue has a cap
(``settings.downlink_queue_cap`` pending downlinks); a full queue is a 409 that says so,
never a silent drop.

Planning (which satellite, loaded at which station, delivered when) is
:mod:`satiot.network.downlink_plan`; the ground stations' side of the protocol is
:mod:`satiot.network.downlink_station`; the background planner and expirer are
:mod:`satiot.network.downlink_workers`. :func:`on_acks` is ingest's hook: an uplink with
the ACK bit settles the device's oldest sent confirmed downlink.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.core.pagination import Page, paginate
from satiot.network.devices import get_device
from satiot.network.downlink_changes import (
    record_queued,
    station_names,
    system_actor,
    transition,
)
from satiot.network.downlink_loads import LoadRules, Loads, current_loads
from satiot.network.downlink_plan import NoPlan, Plan, Request, load_inventory, plan_batch
from satiot.network.messages import AcceptedUplink, iso
from satiot.network.models import Device, Downlink
from satiot.network.states import (
    DEVICE_TRAFFIC_STATES,
    DOWNLINK,
    DOWNLINK_PENDING_STATES,
)

#: Largest application payload: the smallest LoRaWAN data rate's frame limit, which a
#: terminal at the edge of a satellite's footprint is held to.
MAX_PAYLOAD_BYTES = 51
#: Application FPorts (0 is MAC commands, 224 the test port, above that reserved).
F_PORT_MIN, F_PORT_MAX = 1, 223
#: A command older than this is stale by any measure; the queue is not an archive.
MAX_LIFETIME = timedelta(days=30)
#: States a customer may cancel from: nothing has left the ground yet.
CANCELLABLE = frozenset({"queued", "scheduled"})


def _validate(payload: bytes, f_port: int, expires_at: datetime, now: datetime) -> None:
    if not payload:
        raise InvalidInput("payload must not be empty", field="payload")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"payload is {len(payload)} bytes; the satellite downlink carries at most "
            f"{MAX_PAYLOAD_BYTES}",
            field="payload",
        )
    if not F_PORT_MIN <= f_port <= F_PORT_MAX:
        raise InvalidInput(f"f_port must be {F_PORT_MIN}..{F_PORT_MAX}", field="f_port")
    if expires_at.tzinfo is None:
        raise InvalidInput("expires_at needs a time zone", field="expires_at")
    if expires_at <= now:
        raise InvalidInput("expires_at must be in the future", field="expires_at")
    if expires_at > now + MAX_LIFETIME:
        raise InvalidInput(
            f"expires_at may be at most {MAX_LIFETIME.days} days ahead", field="expires_at"
        )


def _require_traffic(device: Device) -> None:
    if device.status not in DEVICE_TRAFFIC_STATES:
        raise Conflict(
            f"device {device.dev_eui} is {device.status}; downlinks need an active device",
            field="dev_eui",
        )


def pending_estimates(session: Session, device_id: uuid.UUID) -> datetime | None:
    """The latest estimated delivery among the device's pending downlinks: a new one is
    planned no earlier, so a device receives its commands in queue order."""
    value: datetime | None = session.scalar(
        select(func.max(Downlink.estimated_delivery_at)).where(
            Downlink.device_id == device_id, Downlink.status.in_(DOWNLINK_PENDING_STATES)
        )
    )
    return value


def prepare_plan(
    session: Session, device: Device, now: datetime, rules: LoadRules | None = None
) -> Plan | NoPlan:
    """A plan for a new downlink of ``device`` on a load window with room for it (may take
    tens of milliseconds: call it outside a writing transaction and pass the result to
    :func:`queue_downlink`)."""
    if device.lat is None or device.lon is None:
        return NoPlan("position unknown")
    not_before = pending_estimates(session, device.id)
    inv = load_inventory(session)
    loads = current_loads(session, now, rules)
    request = Request(device.lat, device.lon, not_before, priority=device.priority)
    return plan_batch(inv, [request], now, loads=loads)[0][0]


def apply_plan(
    session: Session,
    principal: Principal,
    dl: Downlink,
    plan: Plan | NoPlan,
    *,
    at: datetime,
    loads: Loads | None = None,
    priority: int = 0,
) -> bool:
    """Schedule a queued downlink on ``plan``, or leave it queued with the reason; True if it
    was scheduled. A plan that cannot deliver before the downlink expires is no plan, and
    neither is one whose load window filled up since it was made (``loads``, read in this
    transaction: the planner tries again later)."""
    expires = dl.expires_at
    if isinstance(plan, Plan) and expires is not None and plan.estimated_delivery_at >= expires:
        plan = NoPlan(
            f"earliest delivery {iso(plan.estimated_delivery_at)} is after the downlink "
            f"expires at {iso(expires)}"
        )
    if isinstance(plan, Plan) and loads is not None:
        if loads.has_room(plan.satellite, plan.station_id, plan.load_until, priority):
            loads.take(plan.satellite, plan.station_id, plan.load_until)
        else:
            plan = NoPlan(
                f"the load window of {plan.satellite} at {plan.station} filled up meanwhile; "
                "planning again"
            )
    if isinstance(plan, NoPlan):
        if dl.reason != plan.reason:
            dl.reason = plan.reason
        dl.updated_at = at
        return False
    dl.satellite = plan.satellite
    dl.ground_station_id = plan.station_id
    dl.load_at = plan.load_at
    dl.load_until = plan.load_until
    dl.estimated_delivery_at = plan.estimated_delivery_at
    transition(session, principal, dl, "scheduled", at=at, reason=None, station=plan.station)
    return True


def queue_downlink(
    session: Session,
    principal: Principal,
    *,
    dev_eui: str,
    payload: bytes,
    f_port: int,
    confirmed: bool,
    expires_at: datetime,
    at: datetime,
    cap: int,
    plan: Plan | NoPlan | None = None,
    rules: LoadRules | None = None,
) -> Downlink:
    """Accept a downlink for ``dev_eui`` (in the session's tenant) and schedule it.

    404 for a device the caller cannot see, 409 if it is not active or its queue already
    holds ``cap`` pending downlinks (nothing is written then), 422 for a bad payload, port or
    expiry. ``plan`` is :func:`prepare_plan`'s answer, computed before the transaction.
    """
    found = get_device(session, dev_eui)
    # Lock the device row (and read it afresh under the lock): concurrent requests for one
    # device then count its queue one after the other.
    device = session.scalars(
        select(Device)
        .where(Device.id == found.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    _require_traffic(device)
    _validate(payload, f_port, expires_at, at)
    pending = session.scalar(
        select(func.count())
        .select_from(Downlink)
        .where(Downlink.device_id == device.id, Downlink.status.in_(DOWNLINK_PENDING_STATES))
    )
    if pending is not None and pending >= cap:
        raise Conflict(
            f"queue full: {pending} downlinks pending for device {device.dev_eui}; cancel or wait",
            field="dev_eui",
            pending=pending,
            cap=cap,
        )
    dl = Downlink(
        tenant_id=device.tenant_id,
        device_id=device.id,
        dev_eui=device.dev_eui,
        f_port=f_port,
        payload=payload,
        confirmed=confirmed,
        status=DOWNLINK.initial,
        expires_at=expires_at,
        created_at=at,
        updated_at=at,
    )
    session.add(dl)
    session.flush()
    record_queued(session, principal, dl, at=at)
    if plan is None:
        plan = prepare_plan(session, device, at, rules)
    loads = current_loads(session, at, rules)
    apply_plan(
        session, system_actor(dl.tenant_id), dl, plan, at=at, loads=loads, priority=device.priority
    )
    return dl


def get_downlink(session: Session, dev_eui: str, downlink_id: uuid.UUID) -> Downlink:
    """One downlink of a device the caller can see, or 404 (the same 404 either way)."""
    device = get_device(session, dev_eui)
    dl = session.get(Downlink, downlink_id)
    if dl is None or dl.device_id != device.id:
        raise NotFound(f"downlink {downlink_id} not found")
    return dl


def list_downlinks(
    session: Session,
    dev_eui: str,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Downlink]:
    """A device's downlinks in queue order (oldest first), optionally of one status."""
    device = get_device(session, dev_eui)
    stmt = select(Downlink).where(Downlink.device_id == device.id)
    if status is not None:
        if status not in DOWNLINK.states:
            raise InvalidInput(f"status must be one of: {', '.join(DOWNLINK.states)}")
        stmt = stmt.where(Downlink.status == status)
    return paginate(session, stmt, Downlink.id, cursor=cursor, limit=limit)


def cancel_downlink(
    session: Session,
    principal: Principal,
    dev_eui: str,
    downlink_id: uuid.UUID,
    *,
    at: datetime,
) -> Downlink:
    """Cancel one downlink; only a queued or scheduled one can be (409 says why not)."""
    dl = get_downlink(session, dev_eui, downlink_id)
    if dl.status not in CANCELLABLE:
        why = {
            "on-satellite": "it is already on satellite " + str(dl.satellite),
            "sent": "it was already sent to the device",
        }.get(dl.status, f"it is already {dl.status}")
        raise Conflict(
            f"downlink {dl.id} cannot be cancelled: {why}", current=dl.status, field="status"
        )
    names = station_names(session, [dl.ground_station_id])
    station = names.get(dl.ground_station_id) if dl.ground_station_id else None
    transition(
        session,
        principal,
        dl,
        "cancelled",
        at=at,
        reason="cancelled by the customer",
        station=station,
        role=principal.role,
    )
    return dl


@dataclass(frozen=True)
class Flushed:
    cancelled: list[uuid.UUID]
    kept: int  # pending downlinks already past the point of cancelling (on a satellite)


def flush_downlinks(
    session: Session, principal: Principal, dev_eui: str, *, at: datetime
) -> Flushed:
    """Cancel every cancellable downlink of a device; report what was cancelled and kept."""
    device = get_device(session, dev_eui)
    rows = list(
        session.scalars(
            select(Downlink)
            .where(
                Downlink.device_id == device.id,
                Downlink.status.in_(DOWNLINK_PENDING_STATES),
            )
            .order_by(Downlink.id)
            .with_for_update()
        )
    )
    names = station_names(session, [r.ground_station_id for r in rows])
    cancelled: list[uuid.UUID] = []
    for dl in rows:
        if dl.status in CANCELLABLE:
            station = names.get(dl.ground_station_id) if dl.ground_station_id else None
            transition(
                session,
                principal,
                dl,
                "cancelled",
                at=at,
                reason="cancelled by the customer (queue flushed)",
                station=station,
                role=principal.role,
            )
            cancelled.append(dl.id)
    return Flushed(cancelled, len(rows) - len(cancelled))


def on_acks(session: Session, acks: Sequence[AcceptedUplink], *, at: datetime) -> None:
    """Called by ingest, inside its transaction, with every newly accepted uplink that
    carries the ACK bit (ingest builds these for ACKs alone: it runs on the hot path).

    One query finds the devices' sent confirmed downlinks, and each ACK settles its device's
    oldest one (a Class A device acknowledges the last confirmed downlink it received, in its
    next uplink). No ACKs, no query.
    """
    acks = [u for u in acks if u.ack]
    if not acks:
        return
    rows = session.scalars(
        select(Downlink)
        .where(
            Downlink.device_id.in_({u.device_id for u in acks}),
            Downlink.status == "sent",
            Downlink.confirmed.is_(True),
        )
        .order_by(Downlink.sent_at, Downlink.id)
        .with_for_update()
    )
    waiting: dict[uuid.UUID, list[Downlink]] = {}
    for dl in rows:
        waiting.setdefault(dl.device_id, []).append(dl)
    if not waiting:
        return
    settled: list[tuple[Downlink, AcceptedUplink]] = []
    for u in sorted(acks, key=lambda u: (u.received_at, u.f_cnt)):
        queue = waiting.get(u.device_id)
        if queue:
            settled.append((queue.pop(0), u))
    names: Mapping[uuid.UUID, str] = station_names(
        session, [dl.ground_station_id for dl, _ in settled]
    )
    for dl, u in settled:
        dl.acknowledged_at = u.received_at
        transition(
            session,
            system_actor(dl.tenant_id, "ingest"),
            dl,
            "acknowledged",
            at=at,
            reason=f"ACK in uplink FCnt {u.f_cnt}",
            station=names.get(dl.ground_station_id) if dl.ground_station_id else None,
        )
