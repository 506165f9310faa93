"""Activation: one device, one code, one number.

:func:`activate` binds a terminal's identity (IMEI and/or DevEUI), an IoT number and a
handle one-to-one-to-one and provisions the device's session in the network server, all in
the caller's transaction, so a failure anywhere leaves nothing behind:

1. the terminal model must be licensed and unexpired today (OSS), and allowed by the
   customer's contract in force for the application scenario (``contracts``);
2. an IoT number is allocated to the customer (OSS numbering; ``reserved``);
3. the network gets the device: a new ABP session (created ``active``), or an existing one
   from the inventory moved to ``active`` along the device lifecycle
   (test → inventory → activation-ready → active; deactivated → active);
4. a handle is minted under the operator's prefix with the device template (terminal id,
   model, licence number, IoT number, ICCID/IMSI, the customer's credit code, status);
5. the number becomes ``active`` and the subscription is stored ``active``;
6. the device gets the downlink priority the subscription buys (:func:`sync_priority`:
   emergency with the emergency-priority add-on, else normal);
7. every step is audited (``record_change``) with who asked and why.

Uniqueness. An IMEI, DevEUI, number or handle is held by one live subscription at most: the
checks here give a clear error, and the database enforces it anyway (partial unique indexes on
``subscriptions``, unique terminal id and number on ``handles``, unique DevEUI on
``devices``), so two concurrent activations of one terminal yield one subscription and one
:class:`~satiot.core.errors.Conflict`.

The registration at the external identification node is an effect outside the database and
never part of the activation: a handle whose node copy is missing or stale (``registered_at``
empty or older than ``updated_at``) *is* the queue. :func:`register_pending_handles` sends
them after the activating transaction has committed and is safe to repeat; a node that is
down leaves the handles pending, and the next run (after each order, or
``satiot subscriptions register-handles``) retries them. The activation is never undone.

The steps below the subscription (number, device, handle) are moves the operator's system
makes on the caller's behalf (a customer may order, but may not move numbers itself), so they
are recorded as ``system:… (for <caller>)``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from satiot.bss import contracts
from satiot.bss.customers import get_customer
from satiot.bss.models import Customer, ProductOffering, ProductOfferingPrice, Subscription
from satiot.bss.order_checks import contract_in_force
from satiot.bss.order_items import TerminalIn
from satiot.bss.periods import local_date
from satiot.bss.states import SUBSCRIPTION, SUBSCRIPTION_LIVE_STATES
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.changes import record_change
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.core.errors import Conflict, DomainError, InvalidInput
from satiot.network import devices
from satiot.network.keys import Kek
from satiot.network.models import Device
from satiot.network.states import DEVICE
from satiot.oss import identifiers, numbering
from satiot.oss.handle_client import BatchResult, HandleNodeClient, NodeConfig, node_values
from satiot.oss.models import Handle, TerminalModel
from satiot.oss.terminals import check_model_admissible

log = logging.getLogger(__name__)

#: The path from each device state to ``active`` (the DEVICE lifecycle's moves, in order).
_TO_ACTIVE: dict[str, tuple[str, ...]] = {
    "test": ("inventory", "activation-ready", "active"),
    "inventory": ("activation-ready", "active"),
    "activation-ready": ("active",),
    "deactivated": ("active",),
    "active": (),
}


@dataclass(frozen=True)
class ActivationConfig:
    """What activation needs from the operator's configuration."""

    kek: Kek
    handle_prefix: str | None
    quarantine_days: int = numbering.MIN_QUARANTINE_DAYS
    number_purpose: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, kek: Kek) -> ActivationConfig:
        return cls(
            kek=kek,
            handle_prefix=settings.handle_prefix,
            quarantine_days=settings.number_quarantine_days,
        )


@dataclass(frozen=True)
class ActivationRequest:
    """One terminal to activate for a customer on an offering version (and add-ons).

    ``terminal`` carries the ABP session in hex when the device is new to the network."""

    customer_id: uuid.UUID
    billing_account_id: uuid.UUID
    offering_id: uuid.UUID
    terminal: TerminalIn
    add_on_ids: tuple[uuid.UUID, ...] = ()
    reason: str | None = None


def on_behalf(principal: Principal, what: str) -> Principal:
    """The operator's system acting for ``principal`` (audited as such)."""
    spec = ROLES[Role.OPERATOR_ADMIN]
    return Principal(
        tenant_id=principal.tenant_id,
        role=Role.OPERATOR_ADMIN,
        scopes=spec.scopes,
        user_id=principal.user_id,
        username=f"system:{what} (for {principal.actor})",
        via="system",
    )


def binding_view(sub: Subscription) -> dict[str, object]:
    """The subscription as the audit log and events record it."""
    return {
        "customer_id": str(sub.customer_id),
        "billing_account_id": str(sub.billing_account_id),
        "offering_id": str(sub.offering_id),
        "add_on_ids": list(sub.add_on_ids),
        "imei": sub.imei,
        "dev_eui": sub.dev_eui,
        "terminal_model": sub.terminal_model,
        "iot_number": sub.iot_number,
        "handle": sub.handle,
        "status": sub.status,
    }


def subscription_priority(session: Session, sub: Subscription) -> int:
    """The downlink priority ``sub`` gives its device: emergency while it is live and its
    offering or one of its add-ons has a priority price (the emergency-priority add-on),
    otherwise normal."""
    if sub.status not in SUBSCRIPTION_LIVE_STATES:
        return devices.PRIORITY_NORMAL
    offerings = {sub.offering_id, *(uuid.UUID(a) for a in sub.add_on_ids)}
    priced = session.scalar(
        select(ProductOfferingPrice.id)
        .where(
            ProductOfferingPrice.offering_id.in_(offerings),
            ProductOfferingPrice.priority.is_(True),
        )
        .limit(1)
    )
    return devices.PRIORITY_EMERGENCY if priced is not None else devices.PRIORITY_NORMAL


def sync_priority(
    session: Session, acting: Principal, sub: Subscription, *, at: datetime, reason: str | None
) -> None:
    """Carry the subscription's priority down to its device in the network server (called
    at activation, whenever the offering or add-ons change, and at termination)."""
    if sub.device_id is None:
        return
    priority = subscription_priority(session, sub)
    devices.set_device_priority(session, acting, sub.device_id, priority, at=at, reason=reason)


def _check_unbound(session: Session, terminal: TerminalIn) -> None:
    idents = [i for i in (terminal.dev_eui, terminal.imei) if i]
    held = session.scalar(
        select(Subscription).where(
            Subscription.status.in_(SUBSCRIPTION_LIVE_STATES),
            or_(Subscription.dev_eui.in_(idents), Subscription.imei.in_(idents)),
        )
    )
    if held is not None:
        which = terminal.imei if terminal.imei in (held.imei, held.dev_eui) else terminal.dev_eui
        raise Conflict(
            f"terminal {which} is already bound to subscription {held.id}",
            field="imei" if which == terminal.imei else "dev_eui",
        )


def _device(
    session: Session,
    acting: Principal,
    req: ActivationRequest,
    tenant_id: uuid.UUID,
    *,
    at: datetime,
    config: ActivationConfig,
) -> Device:
    """The device's network session, now ``active``: created, or moved from the inventory."""
    t = req.terminal
    device = session.scalar(select(Device).where(Device.dev_eui == t.dev_eui))
    if device is None:
        if not (t.dev_addr and t.nwk_s_key and t.app_s_key):
            raise InvalidInput(
                f"device {t.dev_eui} is not in the network inventory: give its ABP session",
                field="nwk_s_key",
            )
        return devices.create_device(
            session,
            acting,
            kek=config.kek,
            tenant_id=tenant_id,
            dev_eui=t.dev_eui,
            dev_addr=t.dev_addr,
            nwk_s_key=t.nwk_s_key,
            app_s_key=t.app_s_key,
            at=at,
            name=t.name,
            status="active",
        )
    if device.tenant_id != tenant_id:
        raise Conflict(f"device {t.dev_eui} belongs to another customer", field="dev_eui")
    path = _TO_ACTIVE.get(device.status)
    if path is None:
        raise Conflict(f"device {t.dev_eui} is {device.status} and cannot be activated")
    for status in path:
        DEVICE.check(device.status, status)
        devices.set_device_status(
            session, acting, device.dev_eui, status, at=at, reason=req.reason or "activation"
        )
    return device


def activate(
    session: Session,
    principal: Principal,
    req: ActivationRequest,
    *,
    at: datetime,
    config: ActivationConfig,
) -> Subscription:
    """Activate one terminal (see the module's steps); the subscription, ``active``.

    Raises the first reason it cannot (ModelNotAdmissible, the contract's refusal, Conflict
    for a terminal already bound, NumbersExhausted …); the caller's transaction must then be
    rolled back, which undoes every step.
    """
    t = req.terminal
    if not config.handle_prefix:
        # "One device, one code, one number": without the operator's identifier prefix no
        # handle can be made, and a device activated without one would break the binding.
        raise Conflict(
            "no operator prefix for industrial-internet identifiers is configured "
            "(SATIOT_HANDLE_PREFIX): activation binds terminal, number and handle together",
            field="handle",
        )
    customer = get_customer(session, req.customer_id)
    contract = contract_in_force(session, customer)
    # A licence is valid through its expiry date in China, whatever the hour is in UTC.
    on = local_date(at)
    model = check_model_admissible(session, t.terminal_model, on=on, imei=t.imei)
    scenario = t.scenario or contract.scenario
    contracts.check_activation_allowed(session, contract, model.name, scenario)
    offering = session.get(ProductOffering, req.offering_id)
    if offering is None or offering.lifecycle_status == "In design" or offering.is_add_on:
        raise InvalidInput(f"offering {req.offering_id} cannot be subscribed", field="offering")
    _check_unbound(session, t)
    try:
        sub = _bind(session, principal, req, customer, model, contract.id, config, at=at)
    except IntegrityError as exc:
        # A concurrent activation bound one of the identities first (the unique indexes on
        # handles, devices and subscriptions decided): the caller rolls back everything.
        which = t.imei or t.dev_eui
        raise Conflict(f"terminal {which} is already bound (concurrently)", field="imei") from exc
    record_change(
        session,
        principal,
        at=at,
        action="subscription.activated",
        target=("subscription", sub.id),
        tenant_id=sub.tenant_id,
        after=binding_view(sub) | {"scenario": scenario},
        reason=req.reason,
    )
    return sub


def _bind(
    session: Session,
    principal: Principal,
    req: ActivationRequest,
    customer: Customer,
    model: TerminalModel,
    contract_id: uuid.UUID,
    config: ActivationConfig,
    *,
    at: datetime,
) -> Subscription:
    """Steps 2-5: number, device, handle, subscription (flushed)."""
    t = req.terminal
    acting = on_behalf(principal, "activation")
    why = req.reason or f"activation of {t.imei or t.dev_eui}"
    number = numbering.allocate(
        session,
        acting,
        tenant_id=customer.tenant_id,
        at=at,
        purpose=config.number_purpose,
        reason=why,
    )
    device = _device(session, acting, req, customer.tenant_id, at=at, config=config)
    handle: Handle | None = None
    if config.handle_prefix:  # always, since activate() checked; kept for the type checker
        record = identifiers.DeviceRecord(
            terminal_id=t.imei or t.dev_eui,
            model=model.name,
            licence_number=model.licence_number,
            iot_number=number.number,
            credit_code=customer.uscc,
            iccid=t.iccid,
            imsi=t.imsi,
        )
        handle = identifiers.create_handle(
            session,
            acting,
            prefix=config.handle_prefix,
            record=record,
            tenant_id=customer.tenant_id,
            at=at,
        )
    numbering.transition(session, acting, number.number, "active", at=at, reason=why)
    # The subscription is stored at the end of its path: created → pendingActive → active.
    SUBSCRIPTION.check(SUBSCRIPTION.initial, "pendingActive")
    SUBSCRIPTION.check("pendingActive", "active")
    sub = Subscription(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        billing_account_id=req.billing_account_id,
        contract_id=contract_id,
        offering_id=req.offering_id,
        add_on_ids=[str(a) for a in req.add_on_ids],
        device_id=device.id,
        imei=t.imei,
        dev_eui=t.dev_eui,
        terminal_model=model.name,
        iot_number=number.number,
        handle=handle.handle if handle else None,
        status="active",
        created_at=at,
        activated_at=at,
    )
    session.add(sub)
    session.flush()
    sync_priority(session, acting, sub, at=at, reason=why)
    return sub


def register_pending_handles(
    db: Database,
    node: NodeConfig | None,
    *,
    at: datetime,
    limit: int = 2000,
    client: HandleNodeClient | None = None,
) -> BatchResult | None:
    """Send handles whose node copy is missing or stale to the identification node; None
    when no node is configured or it cannot be reached (they stay pending for the next run).

    The node is called outside any transaction (a slow node holds no database lock); the
    outcome is written afterwards, and a handle changed meanwhile stays pending.
    """
    own = client is None
    if client is None:
        if node is None:
            return None
        client = HandleNodeClient(node)
    try:
        return _register(db, client, at=at, limit=limit)
    finally:
        if own:
            client.close()


def _register(
    db: Database, client: HandleNodeClient, *, at: datetime, limit: int
) -> BatchResult | None:
    with db.read() as session:
        pending = list(
            session.scalars(
                select(Handle)
                .where(
                    or_(Handle.registered_at.is_(None), Handle.registered_at < Handle.updated_at)
                )
                .order_by(Handle.updated_at, Handle.id)
                .limit(limit)
            )
        )
        records = [(h.handle, node_values(session, h)) for h in pending]
    if not records:
        return BatchResult()
    try:
        result = client.register_many(records)
    except DomainError as exc:
        log.warning("identification node: %s; %d handles stay pending", exc.detail, len(records))
        return None
    failed = {f.handle: f.reason for f in result.failed}
    with db.write() as session:
        for h in pending:
            row = session.get(Handle, h.id)
            if row is None or row.updated_at != h.updated_at:
                continue  # changed since it was read: its new state is still pending
            if h.handle in failed:
                row.node_error = failed[h.handle]
            else:
                row.registered_at, row.node_error = max(at, row.updated_at), None
    return result
