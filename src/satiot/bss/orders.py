"""Product orders (TMF622): placing, reading and cancelling them.

Placing an order checks every item first (:mod:`satiot.bss.order_items` on their own,
:mod:`satiot.bss.order_checks` against the customer, contract, catalog and inventory). If any
item fails, :class:`~satiot.bss.order_items.OrderRejected` lists each failure and nothing is
stored: a rejected order leaves no row behind. An accepted order is stored ``acknowledged``
(``pending`` when it asks to start later) with one row per item, and is then fulfilled item by
item (:mod:`satiot.bss.order_fulfilment`), each item in a savepoint of its own.

An ``add`` item may carry a device's ABP session keys (for a device not yet in the network
inventory). Between placing and fulfilment they are kept sealed under the key-encryption key,
bound to the item's DevEUI, and dropped from the item once it is fulfilled, failed or
cancelled; no answer, audit entry or event ever carries them.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.bss.models import ProductOrder, ProductOrderItem
from satiot.bss.order_checks import Resolved, check_against_inventory, resolve_party
from satiot.bss.order_items import ItemError, OrderIn, OrderRejected, TerminalIn, check_items
from satiot.bss.states import ORDER, ORDER_ITEM
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import InvalidInput, NotFound
from satiot.core.lengths import optional_text
from satiot.network.keys import Kek

#: How many items one order may hold (a CSV file of this many rows is one order).
MAX_ITEMS = 10_000
SEALED = "sealed"


class OrderNotFound(NotFound):
    slug = "order-not-found"
    title = "Product order not found"


@dataclass(frozen=True)
class Order:
    """An order with its items in line order."""

    order: ProductOrder
    items: list[ProductOrderItem]

    @property
    def id(self) -> uuid.UUID:
        return self.order.id


def _aad(dev_eui: str, purpose: str) -> bytes:
    return f"satiot/order-item/{dev_eui.upper()}/{purpose}".encode()


def seal_session(kek: Kek, terminal: TerminalIn) -> dict[str, str]:
    """The terminal's session keys sealed for storage in its order item."""
    assert terminal.nwk_s_key and terminal.app_s_key
    sealed = {"kek_id": kek.id}
    for purpose, text in (("nwk_s_key", terminal.nwk_s_key), ("app_s_key", terminal.app_s_key)):
        blob = kek.seal(bytes.fromhex(text), _aad(terminal.dev_eui, purpose))
        sealed[purpose] = base64.b64encode(blob).decode()
    return sealed


def open_session(kek: Kek, item: ProductOrderItem) -> tuple[str, str] | None:
    """The (NwkSKey, AppSKey) hex an item carries sealed, or None if it carries none."""
    sealed = item.terminal.get(SEALED)
    if not sealed:
        return None
    dev_eui = str(item.terminal["dev_eui"])
    keys = [
        kek.open(base64.b64decode(sealed[p]), _aad(dev_eui, p)).hex().upper()
        for p in ("nwk_s_key", "app_s_key")
    ]
    return keys[0], keys[1]


def drop_session(item: ProductOrderItem) -> None:
    """Forget an item's sealed keys (its device holds them now, or never will)."""
    if SEALED in item.terminal:
        item.terminal = {k: v for k, v in item.terminal.items() if k != SEALED}


def order_view(order: ProductOrder, items: int | None = None) -> dict[str, Any]:
    """What the audit log and events record of an order."""
    view: dict[str, Any] = {
        "customer_id": str(order.customer_id),
        "contract_id": str(order.contract_id),
        "billing_account_id": str(order.billing_account_id),
        "state": order.state,
        "source": order.source,
        "external_id": order.external_id,
    }
    if items is not None:
        view["items"] = items
    return view


def _item_row(order: ProductOrder, r: Resolved, kek: Kek) -> ProductOrderItem:
    item = r.item
    terminal: dict[str, Any] = {}
    if item.terminal is not None:
        terminal = item.terminal.public()
        if item.terminal.has_session:
            terminal[SEALED] = seal_session(kek, item.terminal)
    return ProductOrderItem(
        tenant_id=order.tenant_id,
        order_id=order.id,
        line=item.line,
        action=item.action,
        offering_id=r.offering_id,
        add_on_ids=[str(a) for a in r.add_on_ids],
        subscription_id=item.subscription_id,
        terminal=terminal,
        reason=item.reason,
        state=ORDER_ITEM.initial,
    )


def _reject(order: OrderIn, errors: list[ItemError]) -> NoReturn:
    """Refuse the order with each item's errors, the first one found per field (a field that
    failed its own check is not reported again by the checks that needed it)."""
    first: dict[tuple[int, str], ItemError] = {}
    for e in errors:
        first.setdefault((e.item, e.field), e)
    unique = sorted(first.values(), key=lambda e: e.item)
    if order.source == "csv":
        raise OrderRejected(unique, item_key="line", field_key="column", noun="line")
    raise OrderRejected(unique)


def place_order(
    session: Session, principal: Principal, order: OrderIn, *, at: datetime, kek: Kek
) -> Order:
    """Check ``order`` and store it ``acknowledged`` (``pending`` if it starts later).

    Raises :class:`OrderRejected` listing every failing item (nothing stored), or the error
    that stops the whole order (customer not ready, no contract in force, no account).
    """
    if not order.items and not order.errors:
        raise InvalidInput("an order needs at least one item", field="items")
    if len(order.items) > MAX_ITEMS:
        raise InvalidInput(f"an order holds at most {MAX_ITEMS} items", field="items")
    if order.errors and not order.items:
        _reject(order, list(order.errors))
    # The customer's own reference: shown in lists and searched by, so plain text (a NUL
    # would also fail on PostgreSQL only, without naming the field); blank is no reference.
    external_id = optional_text(order.external_id, ProductOrder.external_id, "external_id")
    party = resolve_party(session, principal, order)
    checked = check_items(order.items)
    resolved, errors = check_against_inventory(session, party, checked.items, at=at)
    if order.errors or checked.errors or errors:
        _reject(order, [*order.errors, *checked.errors, *errors])
    row = ProductOrder(
        tenant_id=party.customer.tenant_id,
        customer_id=party.customer.id,
        contract_id=party.contract.id,
        billing_account_id=party.account.id,
        state=ORDER.initial,
        source=order.source,
        external_id=external_id or None,
        note=order.note,
        placed_by=principal.actor,
        requested_start_at=order.requested_start_at,
        created_at=at,
    )
    session.add(row)
    session.flush()
    items = [_item_row(row, r, kek) for r in resolved]
    session.add_all(items)
    record_change(
        session,
        principal,
        at=at,
        action="order.acknowledged",
        target=("product-order", row.id),
        tenant_id=row.tenant_id,
        after=order_view(row, len(items)),
    )
    if order.requested_start_at is not None and order.requested_start_at > at:
        ORDER.check(row.state, "pending")
        row.state = "pending"
        record_change(
            session,
            principal,
            at=at,
            action="order.pending",
            target=("product-order", row.id),
            tenant_id=row.tenant_id,
            after=order_view(row) | {"requested_start_at": order.requested_start_at.isoformat()},
        )
    session.flush()
    return Order(row, items)


def get_order(session: Session, order_id: uuid.UUID) -> Order:
    """An order the session may see, with its items; OrderNotFound otherwise."""
    row = session.get(ProductOrder, order_id)
    if row is None:
        raise OrderNotFound(f"product order {order_id} not found")
    items = session.scalars(
        select(ProductOrderItem)
        .where(ProductOrderItem.order_id == order_id)
        .order_by(ProductOrderItem.line)
    ).all()
    return Order(row, list(items))


def _locked(session: Session, order_id: uuid.UUID) -> ProductOrder:
    """The order's row, locked against a concurrent move (PostgreSQL; SQLite serialises)."""
    row = session.scalar(select(ProductOrder).where(ProductOrder.id == order_id).with_for_update())
    if row is None:
        raise OrderNotFound(f"product order {order_id} not found")
    return row


def cancel_order(
    session: Session,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    at: datetime,
    reason: str | None = None,
) -> Order:
    """Cancel an order not yet in progress (``acknowledged``, ``pending`` or ``held``): its
    items are cancelled and their sealed keys dropped. 409 once fulfilment has started."""
    row = _locked(session, order_id)
    ORDER.check(row.state, "cancelled", principal.role)
    before = order_view(row)
    row.state = "cancelled"
    row.completed_at = at
    found = get_order(session, order_id)
    for item in found.items:
        if item.state == "acknowledged":
            ORDER_ITEM.check(item.state, "cancelled")
            item.state, item.done_at = "cancelled", at
            drop_session(item)
    record_change(
        session,
        principal,
        at=at,
        action="order.cancelled",
        target=("product-order", row.id),
        tenant_id=row.tenant_id,
        before=before,
        after=order_view(row),
        reason=reason,
    )
    return found


def _move(
    session: Session,
    principal: Principal,
    order_id: uuid.UUID,
    target: str,
    *,
    at: datetime,
    reason: str | None,
) -> Order:
    row = _locked(session, order_id)
    ORDER.check(row.state, target, principal.role)
    before = order_view(row)
    row.state = target
    record_change(
        session,
        principal,
        at=at,
        action=f"order.{'held' if target == 'held' else 'released'}",
        target=("product-order", row.id),
        tenant_id=row.tenant_id,
        before=before,
        after=order_view(row),
        reason=reason,
    )
    return get_order(session, order_id)


def hold_order(
    session: Session,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    at: datetime,
    reason: str | None = None,
) -> Order:
    """Hold a ``pending`` order (a future-dated one not yet due): it is not fulfilled when its
    start comes, until released. For the operator's sales staff, e.g. while a document or a
    payment is checked."""
    return _move(session, principal, order_id, "held", at=at, reason=reason)


def release_order(
    session: Session,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    at: datetime,
    reason: str | None = None,
) -> Order:
    """Put a held order back to ``pending``: fulfilled once its requested start has come."""
    return _move(session, principal, order_id, "pending", at=at, reason=reason)
