"""A subscription's life after activation: suspend, resume, terminate, change offering.

Each call moves the subscription through :data:`satiot.bss.states.SUBSCRIPTION` (the caller's
role is checked against the table) and carries the move down to what the subscription binds,
in the caller's transaction:

============  ==========================  =======================  ==================
move          device (network)            IoT number (OSS)         handle (OSS)
============  ==========================  =======================  ==================
suspend       active → suspended          active → suspended       → suspended
resume        suspended → active          suspended → active       → active
terminate     → deactivated, priority     → cancelled → quarantine → retired
              normal
change        priority from the new
offering      offering and add-ons
============  ==========================  =======================  ==================

A suspended or deactivated device's frames are refused by ingest (``device-inactive``: the
device is not active), so suspension stops traffic at the network server from the next batch
on. Termination quarantines the number (at least 90 days) and retires the handle, which
releases the terminal and number bindings. The moves below the subscription are made by the
operator's system on the caller's behalf (a customer administrator may suspend its own
subscription but cannot move numbers itself). Rating (quota caps, prepaid balance at zero)
and anti-fraud call :func:`suspend_subscription` and :func:`terminate_subscription` with
their own principal.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from satiot.bss.activation import binding_view, on_behalf, sync_priority
from satiot.bss.models import ProductOffering, Subscription
from satiot.bss.states import SUBSCRIPTION
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES
from satiot.core.changes import record_change
from satiot.core.errors import InvalidInput, NotFound, PermissionDenied
from satiot.network import devices
from satiot.network.models import Device
from satiot.network.states import DEVICE
from satiot.oss import identifiers, numbering
from satiot.oss.models import Handle, HandleValue, IotNumber
from satiot.oss.states import NUMBER


class SubscriptionNotFound(NotFound):
    slug = "subscription-not-found"
    title = "Subscription not found"


def get_subscription(
    session: Session, subscription_id: uuid.UUID, *, lock: bool = False
) -> Subscription:
    """A subscription the session may see (``lock``: for update); SubscriptionNotFound."""
    stmt = select(Subscription).where(Subscription.id == subscription_id)
    sub = session.scalar(stmt.with_for_update() if lock else stmt)
    if sub is None:
        raise SubscriptionNotFound(f"subscription {subscription_id} not found")
    return sub


def _check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("say why (reason)", field="reason")
    if len(text) > 500:
        raise InvalidInput("reason: at most 500 characters", field="reason")
    return text


@dataclass(frozen=True)
class Bindings:
    """What many subscriptions bind (device, number, handle and its values), read at once.

    One move reads its device, number and handle a statement each; a file of 2,000 moves did
    that 8,000 times, each statement first flushing the moves before it, and spent most of its
    time there. :func:`read_bindings` reads them a thousand at a time instead (numbers locked,
    as a single move locks its number); the moves then find them here."""

    devices: dict[uuid.UUID, Device]
    numbers: dict[str, IotNumber]
    handles: dict[str, Handle]
    values: dict[uuid.UUID, list[HandleValue]]


#: Rows read per statement by :func:`read_bindings`.
_READ: Final = 1_000


def read_bindings(session: Session, subs: Sequence[Subscription]) -> Bindings:
    """The devices, numbers (locked), handles and handle values ``subs`` bind."""
    device_ids = sorted({s.device_id for s in subs if s.device_id})
    numbers = sorted({s.iot_number for s in subs if s.iot_number})
    handles = sorted({s.handle for s in subs if s.handle})
    found = Bindings({}, {}, {}, {})
    for i in range(0, len(device_ids), _READ):
        for device in session.scalars(
            select(Device).where(Device.id.in_(device_ids[i : i + _READ]))
        ):
            found.devices[device.id] = device
    for i in range(0, len(numbers), _READ):
        for number in session.scalars(
            select(IotNumber)
            .where(IotNumber.number.in_(numbers[i : i + _READ]))
            .order_by(IotNumber.id)
            .with_for_update()
        ):
            found.numbers[number.number] = number
    for i in range(0, len(handles), _READ):
        rows = list(
            session.scalars(select(Handle).where(Handle.handle.in_(handles[i : i + _READ])))
        )
        for row in rows:
            found.handles[row.handle] = row
            found.values[row.id] = []
        for value in session.scalars(
            select(HandleValue)
            .where(HandleValue.handle_id.in_([row.id for row in rows]))
            .order_by(HandleValue.handle_id, HandleValue.idx)
        ):
            found.values[value.handle_id].append(value)
    return found


@dataclass(frozen=True)
class _Carry:
    """A subscription's move carried down to what it binds, by the operator's system on the
    mover's behalf (``acting``), with the rows a file of moves has read (``bound``)."""

    session: Session
    acting: Principal
    at: datetime
    why: str
    bound: Bindings | None = None

    def all(self, sub: Subscription, device: str, number: str, handle: str, days: int) -> None:
        """Device, number (a cancelled one rests ``days`` in quarantine) and handle."""
        self.device(sub, device)
        self.number(sub, number, days)
        self.handle(sub, handle)

    def device(self, sub: Subscription, target: str) -> None:
        if not sub.device_id:
            return
        if self.bound is not None:
            device = self.bound.devices.get(sub.device_id)
        else:
            device = self.session.get(Device, sub.device_id)
        if device is None or device.status == target:
            return
        if (device.status, target) not in DEVICE.transitions:
            return  # e.g. already deactivated by the network's operators: nothing to carry down
        devices.move_device(self.session, self.acting, device, target, at=self.at, reason=self.why)

    def number(self, sub: Subscription, target: str, quarantine_days: int) -> None:
        if not sub.iot_number:
            return
        if self.bound is not None:
            row = self.bound.numbers.get(sub.iot_number)
        else:
            row = self.session.scalar(
                select(IotNumber).where(IotNumber.number == sub.iot_number).with_for_update()
            )
        if row is None or (row.status, target) not in NUMBER.transitions:
            return
        numbering.move_number(
            self.session, self.acting, row, target, at=self.at, reason=self.why,
            quarantine_days=quarantine_days,
        )  # fmt: skip

    def handle(self, sub: Subscription, target: str) -> None:
        if not sub.handle:
            return
        if self.bound is not None:
            row = self.bound.handles.get(sub.handle)
        else:
            row = self.session.scalar(select(Handle).where(Handle.handle == sub.handle))
        if row is None or row.status in (target, "retired"):
            return
        values = self.bound.values.get(row.id, []) if self.bound is not None else None
        identifiers.update_handle_row(
            self.session, self.acting, row, at=self.at, status=target, reason=self.why,
            values=values,
        )  # fmt: skip


def _record(
    session: Session,
    principal: Principal,
    sub: Subscription,
    action: str,
    before: dict[str, object],
    *,
    at: datetime,
    reason: str | None,
) -> None:
    record_change(
        session,
        principal,
        at=at,
        action=action,
        target=("subscription", sub.id),
        tenant_id=sub.tenant_id,
        before=before,
        after=binding_view(sub),
        reason=reason,
    )


#: Where a suspension comes from. A customer lifts only its own; ``balance`` is lifted by a
#: top-up that brings the balance above zero (or the operator), ``quota`` by the month's end
#: (or the operator), ``operator`` (compliance, fraud, a business decision) by the operator.
SUSPENSION_ORIGINS = ("customer", "operator", "quota", "balance")
#: Each origin as a list or a figure names it after "suspended" (the console's choice, the
#: dashboard's note).
SUSPENDED_BY_LABEL = {
    "customer": "by the customer",
    "operator": "by the operator",
    "quota": "at the quota",
    "balance": "at a zero balance",
}


#: A suspension a customer did not make, as people read it (by ``suspended_by``).
SUSPENDED_BY_TEXT = {
    "operator": "by the operator; only the operator can resume it",
    "quota": "at the contract's monthly quota; service returns next month",
    "balance": "when the prepaid balance ran out; a top-up resumes it",
}


def suspended_by(origin: str) -> list[ColumnElement[bool]]:
    """The subscriptions suspended from ``origin`` (one of :data:`SUSPENSION_ORIGINS`): what
    the lists filter on, e.g. every device the quota stopped this month."""
    if origin not in SUSPENSION_ORIGINS:
        raise InvalidInput(
            f"suspended by must be one of {', '.join(SUSPENSION_ORIGINS)}", field="suspended_by"
        )
    return [Subscription.status == "suspended", Subscription.suspended_by == origin]


def customer_may_resume(sub: Subscription) -> bool:
    """Whether the customer may lift the subscription's suspension: only one it made."""
    return sub.suspended_by == "customer"


def check_move(principal: Principal, sub: Subscription, target: str, reason: str) -> None:
    """Refuse (a DomainError) what :func:`suspend_locked` (``target`` suspended) or
    :func:`resume_locked` (active) would refuse before changing anything: a move the state or
    the caller's role may not make, a suspension the customer may not lift, a reason missing
    or too long. A file of moves too large for one transaction is checked whole with it,
    reading only, before it is applied in parts."""
    _check_reason(reason)
    SUBSCRIPTION.check(sub.status, target, principal.role)
    if target == "active" and _is_customer(principal) and not customer_may_resume(sub):
        cause = SUSPENDED_BY_TEXT.get(sub.suspended_by or "", SUSPENDED_BY_TEXT["operator"])
        raise PermissionDenied(
            f"subscription {sub.id} was suspended {cause} ({sub.status_reason})",
            field="subscription_id",
        )


def _is_customer(principal: Principal) -> bool:
    return not ROLES[principal.role].operator_staff


def suspend_subscription(
    session: Session,
    principal: Principal,
    subscription_id: uuid.UUID,
    reason: str,
    at: datetime,
    *,
    origin: str | None = None,
) -> Subscription:
    """Stop the subscription's service: its device's frames are refused from now on, its
    number is suspended and its handle says so. Resumable with :func:`resume_subscription`,
    by whoever the ``origin`` allows (default: the caller's side, customer or operator)."""
    sub = get_subscription(session, subscription_id, lock=True)
    return suspend_locked(session, principal, sub, reason, at, origin=origin)


def suspend_locked(
    session: Session,
    principal: Principal,
    sub: Subscription,
    reason: str,
    at: datetime,
    *,
    origin: str | None = None,
    bound: Bindings | None = None,
) -> Subscription:
    """:func:`suspend_subscription` on a subscription this transaction has locked (a file of
    them is read and locked at once, in id order, and what they bind with ``bound``)."""
    why = _check_reason(reason)
    origin = origin or ("customer" if _is_customer(principal) else "operator")
    if origin not in SUSPENSION_ORIGINS:
        raise InvalidInput(f"origin must be one of {', '.join(SUSPENSION_ORIGINS)}")
    check_move(principal, sub, "suspended", why)
    before = binding_view(sub)
    carry = _Carry(session, on_behalf(principal, "suspension"), at, why, bound)
    carry.all(sub, "suspended", "suspended", "suspended", numbering.MIN_QUARANTINE_DAYS)
    sub.status, sub.status_reason, sub.suspended_by = "suspended", why, origin
    sub.suspended_at = at
    _record(session, principal, sub, "subscription.suspended", before, at=at, reason=why)
    return sub


def resume_subscription(
    session: Session,
    principal: Principal,
    subscription_id: uuid.UUID,
    reason: str,
    at: datetime,
) -> Subscription:
    """Give a suspended subscription its service back (device, number and handle active).

    A customer may lift only a suspension it made itself: one made by the operator's staff
    (compliance, fraud), by the contract's monthly quota or by an exhausted prepaid balance is
    not the customer's to undo (a top-up lifts the last one by itself)."""
    sub = get_subscription(session, subscription_id, lock=True)
    return resume_locked(session, principal, sub, reason, at)


def resume_locked(
    session: Session,
    principal: Principal,
    sub: Subscription,
    reason: str,
    at: datetime,
    *,
    bound: Bindings | None = None,
) -> Subscription:
    """:func:`resume_subscription` on a subscription this transaction has locked (and what
    it binds, read with ``bound`` for a file of them)."""
    why = _check_reason(reason)
    check_move(principal, sub, "active", why)
    before = binding_view(sub)
    carry = _Carry(session, on_behalf(principal, "resumption"), at, why, bound)
    carry.all(sub, "active", "active", "active", numbering.MIN_QUARANTINE_DAYS)
    sub.status, sub.status_reason, sub.suspended_by = "active", None, None
    sub.suspended_at = None
    _record(session, principal, sub, "subscription.resumed", before, at=at, reason=why)
    return sub


def terminate_subscription(
    session: Session,
    principal: Principal,
    subscription_id: uuid.UUID,
    reason: str,
    at: datetime,
    *,
    quarantine_days: int = numbering.MIN_QUARANTINE_DAYS,
) -> Subscription:
    """End the subscription: device deactivated, number cancelled into quarantine for
    ``quarantine_days``, handle retired (the terminal and number are free to bind again —
    the number only after its quarantine). Final."""
    why = _check_reason(reason)
    sub = get_subscription(session, subscription_id, lock=True)
    SUBSCRIPTION.check(sub.status, "pendingTerminate", principal.role)
    SUBSCRIPTION.check("pendingTerminate", "terminated")
    before = binding_view(sub)
    acting = on_behalf(principal, "termination")
    _Carry(session, acting, at, why).all(
        sub, "deactivated", "cancelled", "retired", quarantine_days
    )
    sub.status, sub.status_reason, sub.terminated_at = "terminated", why, at
    sync_priority(session, acting, sub, at=at, reason=why)
    _record(session, principal, sub, "subscription.terminated", before, at=at, reason=why)
    return sub


def change_offering(
    session: Session,
    principal: Principal,
    subscription_id: uuid.UUID,
    offering_id: uuid.UUID,
    *,
    at: datetime,
    add_on_ids: Sequence[uuid.UUID] | None = None,
    reason: str | None = None,
) -> Subscription:
    """Move a live subscription to another offering version (an Active one) and, if given,
    another set of add-ons. Rating prices usage from the moment of the change; the device's
    downlink priority follows the emergency-priority add-on at once."""
    sub = get_subscription(session, subscription_id, lock=True)
    if sub.status not in ("active", "suspended"):
        raise InvalidInput(f"subscription {sub.id} is {sub.status}", field="subscription_id")
    offering = session.get(ProductOffering, offering_id)
    if offering is None or offering.lifecycle_status != "Active" or offering.is_add_on:
        raise InvalidInput(f"offering {offering_id} is not an Active offering", field="offering")
    before = binding_view(sub)
    sub.offering_id = offering.id
    if add_on_ids is not None:
        sub.add_on_ids = [str(a) for a in add_on_ids]
    acting = on_behalf(principal, "offering change")
    sync_priority(session, acting, sub, at=at, reason=reason or "offering changed")
    _record(session, principal, sub, "subscription.offering-changed", before, at=at, reason=reason)
    return sub
