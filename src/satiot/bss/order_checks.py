"""Checking an order against the customer, its contract, the catalog and the inventory.

Everything here reads and nothing writes: an order that fails any check is refused whole with
every failing item listed (:class:`~satiot.bss.order_items.OrderRejected`), and nothing is
created. What the checks ask:

- the customer may order (validated, risk passed: :func:`satiot.bss.risk.require_order_ready`)
  and has a contract in force (:func:`satiot.bss.contracts.contract_in_force`);
- each ``add`` names a licensed, unexpired terminal model (OSS), one the contract allows for
  its application scenario (:func:`satiot.bss.contracts.check_activation_allowed`), an Active
  offering (and Active add-ons) whose tariff the contract discloses, and a terminal whose IMEI
  and DevEUI no live subscription holds; a device not yet in the network inventory needs its
  ABP session, one already there must be waiting for activation;
- the contract's device limit holds: live subscriptions plus this order's additions;
- ``modify`` and ``delete`` name a live subscription of the same customer.

Lookups are batched (one query per kind of thing, in chunks), so a 10,000-row CSV is checked
in a few dozen queries rather than tens of thousands.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.bss import accounts, contracts, customers, risk
from satiot.bss.models import BillingAccount, Contract, Customer, ProductOffering, Subscription
from satiot.bss.order_items import ItemError, ItemIn, OrderIn
from satiot.bss.periods import local_date
from satiot.bss.states import SUBSCRIPTION_LIVE_STATES
from satiot.core.auth.principal import Principal
from satiot.core.errors import DomainError, InvalidInput
from satiot.network.models import Device
from satiot.oss.models import Handle
from satiot.oss.terminals import check_model_admissible

T = TypeVar("T")
CHUNK = 500
#: Device states from which activation moves a device to ``active`` (an ``active`` device
#: that no live subscription holds is adopted as it is).
ACTIVATABLE_DEVICE_STATES = frozenset({"test", "inventory", "activation-ready", "deactivated"})
#: Subscription states that an order may modify or delete.
CHANGEABLE_STATES = frozenset({"active", "suspended"})


@dataclass(frozen=True)
class Party:
    """Who the order is for: the customer, its contract in force and the paying account."""

    customer: Customer
    contract: Contract
    account: BillingAccount
    disclosed_ids: frozenset[uuid.UUID]
    disclosed_codes: frozenset[str]


@dataclass(frozen=True)
class Resolved:
    """An item with what the checks found: the offering version, add-ons, and the scenario
    (the contract's when the item named none)."""

    item: ItemIn
    offering_id: uuid.UUID | None = None
    add_on_ids: tuple[uuid.UUID, ...] = ()


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _customer_id(session: Session, principal: Principal, order: OrderIn) -> uuid.UUID:
    if principal.all_tenants:
        if order.customer_id is None:
            raise InvalidInput("name the customer the order is for", field="customer_id")
        return order.customer_id
    own = customers.customer_of_tenant(session, principal.tenant_id)
    if order.customer_id is not None and (own is None or order.customer_id != own.id):
        # A customer session sees only its own customer: another one is simply not found.
        raise customers.CustomerNotFound(f"customer {order.customer_id} not found")
    if own is None:
        raise customers.CustomerNotFound(
            "this tenant has no customer record (real-name onboarding comes before any order)"
        )
    return own.id


def _account(session: Session, customer: Customer, wanted: uuid.UUID | None) -> BillingAccount:
    if wanted is not None:
        account = accounts.get_account(session, wanted, customer_id=customer.id)
    else:
        open_ones = [a for a in accounts.accounts_of(session, customer.id) if a.status == "active"]
        if len(open_ones) != 1:
            raise InvalidInput(
                f"customer {customer.name} has {len(open_ones)} open billing accounts: "
                "name the one to charge",
                field="billing_account_id",
            )
        account = open_ones[0]
    if account.status != "active":
        raise InvalidInput(f"billing account {account.id} is {account.status}")
    return account


def _ids(values: Iterable[Any]) -> list[uuid.UUID]:
    out = []
    for v in values:
        try:
            out.append(uuid.UUID(str(v)))
        except ValueError:
            continue
    return out


def contract_in_force(session: Session, customer: Customer) -> Contract:
    """The customer's contract in force; ActivationNotAllowed (409) when there is none."""
    contract = contracts.contract_in_force(session, customer.id)
    if contract is None:
        raise contracts.ActivationNotAllowed(
            f"customer {customer.name} has no signed contract in force: services are "
            "activated only under one",
            field="contract",
        )
    return contract


def resolve_party(session: Session, principal: Principal, order: OrderIn) -> Party:
    """The customer (ready to order), its contract in force and the account to charge;
    raises the first reason the order cannot be taken at all."""
    customer = risk.require_order_ready(session, _customer_id(session, principal, order))
    contract = contract_in_force(session, customer)
    account = _account(session, customer, order.billing_account_id)
    ids = _ids(contract.offering_ids)
    codes = set(session.scalars(select(ProductOffering.code).where(ProductOffering.id.in_(ids))))
    return Party(customer, contract, account, frozenset(ids), frozenset(codes))


@dataclass
class _Lookups:
    """Everything the item checks need, loaded in batches."""

    offerings: dict[str, ProductOffering | None] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    bound: dict[str, str] = field(default_factory=dict)  # terminal id -> where it is bound
    subscriptions: dict[uuid.UUID, Subscription] = field(default_factory=dict)
    models: dict[tuple[str, str | None], str | None] = field(default_factory=dict)
    allowed: dict[tuple[str, str], DomainError | None] = field(default_factory=dict)


def _load(session: Session, party: Party, items: Sequence[ItemIn]) -> _Lookups:
    found = _Lookups()
    terminals = [i.terminal for i in items if i.terminal is not None]
    euis = sorted({t.dev_eui for t in terminals})
    imeis = sorted({t.imei for t in terminals if t.imei})
    for part in chunks(euis):
        for device in session.scalars(select(Device).where(Device.dev_eui.in_(part))):
            found.devices[device.dev_eui] = device
    live = Subscription.status.in_(SUBSCRIPTION_LIVE_STATES)
    for column, values in ((Subscription.dev_eui, euis), (Subscription.imei, imeis)):
        for part in chunks(values):
            for sub in session.scalars(select(Subscription).where(live, column.in_(part))):
                for ident in (sub.dev_eui, sub.imei):
                    if ident:
                        found.bound[ident] = f"subscription {sub.id}"
    handle_ids = sorted(set(euis) | set(imeis))
    for part in chunks(handle_ids):
        for h in session.scalars(select(Handle).where(Handle.terminal_id.in_(part))):
            assert h.terminal_id is not None
            found.bound.setdefault(h.terminal_id, f"handle {h.handle}")
    sub_ids = sorted({i.subscription_id for i in items if i.subscription_id is not None})
    for id_part in chunks(sub_ids):
        for sub in session.scalars(select(Subscription).where(Subscription.id.in_(id_part))):
            found.subscriptions[sub.id] = sub
    return found


def _offering(session: Session, found: _Lookups, ref: str) -> ProductOffering | None:
    if ref not in found.offerings:
        try:
            row = session.get(ProductOffering, uuid.UUID(ref))
        except ValueError:
            row = session.scalar(
                select(ProductOffering).where(
                    ProductOffering.code == ref.upper(),
                    ProductOffering.lifecycle_status == "Active",
                )
            )
        found.offerings[ref] = row
    return found.offerings[ref]


def _sellable(
    session: Session, party: Party, found: _Lookups, ref: str, *, add_on: bool
) -> ProductOffering | str:
    """The offering version ``ref`` names, or why it cannot be ordered."""
    row = _offering(session, found, ref)
    if row is None:
        return f"no offering {ref} (an Active offering's id or code)"
    label = f"{row.code} version {row.version}"
    if row.lifecycle_status != "Active":
        return f"{label} is {row.lifecycle_status}: order the Active version"
    if row.is_add_on != add_on:
        return f"{label} is an add-on" if row.is_add_on else f"{label} is not an add-on"
    if row.id not in party.disclosed_ids:
        # The contract discloses tariffs by version: a revised price list reaches a customer
        # only through an amended, signed contract, never by ordering the same code again.
        if row.code in party.disclosed_codes:
            return (
                f"the contract discloses another version of {row.code}'s tariff; {label} "
                "needs an amended contract"
            )
        return f"the contract does not disclose the tariff of {row.code}"
    return row


def _model_problem(
    session: Session, found: _Lookups, model: str, imei: str | None, at: datetime
) -> tuple[str, str] | None:
    key = (model, imei[:8] if imei else None)
    if key not in found.models:
        try:
            check_model_admissible(session, model, on=local_date(at), imei=imei)
            found.models[key] = None
        except DomainError as exc:
            where = "imei" if exc.extensions.get("field") == "imei" else "terminal_model"
            found.models[key] = f"{where}\x00{exc.detail}"
    problem = found.models[key]
    if problem is None:
        return None
    where, _, why = problem.partition("\x00")
    return where, why


def _contract_problem(
    session: Session, party: Party, found: _Lookups, model: str, scenario: str
) -> tuple[str, str] | None:
    key = (model, scenario)
    if key not in found.allowed:
        try:
            contracts.check_activation_allowed(session, party.contract, model, scenario)
            found.allowed[key] = None
        except DomainError as exc:
            found.allowed[key] = exc
    refused = found.allowed[key]
    if refused is None:
        return None
    where = str(refused.extensions.get("field") or "")
    if where == "max_devices":
        return None  # counted for the whole order below, this order's additions included
    return (where if where in ("terminal_model", "scenario") else "dev_eui"), refused.detail


def _check_add(
    session: Session, party: Party, found: _Lookups, item: ItemIn, at: datetime
) -> tuple[Resolved, list[ItemError]]:
    errors: list[ItemError] = []
    t = item.terminal
    assert t is not None
    t = replace(t, scenario=t.scenario or party.contract.scenario)
    line = item.line

    def bad(name: str, reason: str) -> None:
        errors.append(ItemError(line, name, reason))

    for problem in (
        _model_problem(session, found, t.terminal_model, t.imei, at),
        _contract_problem(session, party, found, t.terminal_model, t.scenario or ""),
    ):
        if problem is not None:
            bad(*problem)
    offering = _sellable(session, party, found, item.offering or "", add_on=False)
    if isinstance(offering, str):
        bad("offering", offering)
    add_ons: list[uuid.UUID] = []
    for ref in item.add_ons or ():
        add_on = _sellable(session, party, found, ref, add_on=True)
        if isinstance(add_on, str):
            bad("add_ons", add_on)
        else:
            add_ons.append(add_on.id)
    for name, ident in (("dev_eui", t.dev_eui), ("imei", t.imei)):
        if ident and ident in found.bound:
            bad(name, f"{ident} is already bound to {found.bound[ident]}")
    device = found.devices.get(t.dev_eui)
    if device is None:
        if not t.has_session:
            bad("nwk_s_key", "the device is not in the network inventory: give its ABP session")
    elif device.tenant_id != party.customer.tenant_id:
        bad("dev_eui", f"device {t.dev_eui} belongs to another customer")
    elif t.has_session:
        bad("nwk_s_key", "the device is in the network inventory: leave its session out")
    elif device.status not in ACTIVATABLE_DEVICE_STATES | {"active"}:
        bad("dev_eui", f"device {t.dev_eui} is {device.status} and cannot be activated")
    resolved = Resolved(
        replace(item, terminal=t),
        offering.id if not isinstance(offering, str) else None,
        tuple(add_ons),
    )
    return resolved, errors


def _check_change(
    session: Session, party: Party, found: _Lookups, item: ItemIn
) -> tuple[Resolved, list[ItemError]]:
    errors: list[ItemError] = []
    sub_id = item.subscription_id
    assert sub_id is not None
    sub = found.subscriptions.get(sub_id)
    if sub is None or sub.customer_id != party.customer.id:
        return Resolved(item), [
            ItemError(item.line, "subscription_id", f"no subscription {sub_id}")
        ]
    if sub.status not in CHANGEABLE_STATES:
        reason = f"subscription {sub_id} is {sub.status}"
        return Resolved(item), [ItemError(item.line, "subscription_id", reason)]
    if item.action == "delete":
        return Resolved(item), errors
    offering = _sellable(session, party, found, item.offering or "", add_on=False)
    if isinstance(offering, str):
        errors.append(ItemError(item.line, "offering", offering))
        return Resolved(item), errors
    add_ons: list[uuid.UUID] = []
    for ref in item.add_ons or ():
        add_on = _sellable(session, party, found, ref, add_on=True)
        if isinstance(add_on, str):
            errors.append(ItemError(item.line, "add_ons", add_on))
        else:
            add_ons.append(add_on.id)
    keep = item.add_ons is None
    wanted_add_ons = tuple(_ids(sub.add_on_ids)) if keep else tuple(add_ons)
    if offering.id == sub.offering_id and set(wanted_add_ons) == set(_ids(sub.add_on_ids)):
        errors.append(ItemError(item.line, "offering", "the subscription is on it already"))
    return Resolved(item, offering.id, wanted_add_ons), errors


def check_against_inventory(
    session: Session, party: Party, items: Sequence[ItemIn], *, at: datetime
) -> tuple[list[Resolved], list[ItemError]]:
    """Every item checked against the contract, catalog and inventory; the resolved items
    and every error (items that already failed their own checks are passed in too: they
    are checked as far as their fields allow)."""
    found = _load(session, party, items)
    resolved: list[Resolved] = []
    errors: list[ItemError] = []
    for item in items:
        if item.action == "add" and item.terminal is not None:
            done, problems = _check_add(session, party, found, item, at)
        elif item.action in ("modify", "delete") and item.subscription_id is not None:
            done, problems = _check_change(session, party, found, item)
        else:
            done, problems = Resolved(item), []
        resolved.append(done)
        errors.extend(problems)
    live = customers.live_subscriptions(session, party.customer.id)
    room = party.contract.max_devices - live
    adds = [r.item for r in resolved if r.item.action == "add"]
    for item in adds[max(room, 0) :]:
        errors.append(
            ItemError(
                item.line,
                "dev_eui",
                f"the contract allows {party.contract.max_devices} devices; {live} are live "
                f"and this order adds {len(adds)}",
            )
        )
    return resolved, errors
