"""Fulfilling accepted orders, item by item, :data:`BATCH` items to a transaction.

An order goes ``acknowledged`` (or ``pending`` until its requested start) → ``inProgress`` →
``completed`` (every item done), ``failed`` (none) or ``partial`` (some), TMF622's states. An
item's work — activating a terminal, changing a subscription's offering, terminating one —
is done in a SAVEPOINT of its own and kept together with the item's ``completed`` mark, or
rolled back whole and the item marked ``failed`` with the reason: a failed item never leaves a
number, device or handle behind (nor an audit entry or event: those queued inside a rolled-back
savepoint are dropped), and a ``partial`` order says which items failed and why. A
transaction per item, as fulfilment first ran, cost each activation about a sixth more on
SQLite (the item locked and its order read again, the commit, the logs' heads); a batch whose
transaction fails as a whole (anything but an item's own refusal) is done again an item per
transaction, so that one item's trouble cannot hold back the others.

Fulfilment can be interrupted at any point (a process killed mid-order) and resumed by
running it again (:func:`fulfil_due_orders`, ``satiot orders fulfil``): items already marked
are skipped, and the item row is locked while it is worked on, so two runners never fulfil
one item twice.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from satiot.bss.activation import (
    ActivationConfig,
    ActivationRequest,
    activate,
    register_pending_handles,
)
from satiot.bss.models import ProductOrder, ProductOrderItem
from satiot.bss.order_items import TerminalIn
from satiot.bss.orders import drop_session, open_session, order_view
from satiot.bss.states import ORDER, ORDER_ITEM
from satiot.bss.subscriptions import change_offering, terminate_subscription
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.auth.tenancy import scope_session
from satiot.core.changes import record_change
from satiot.core.clock import Clock
from satiot.core.db import Database
from satiot.core.errors import DomainError
from satiot.oss.handle_client import NodeConfig

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_RETRIES = 3
#: Items per transaction: on SQLite a batch of activations holds the one writer for about a
#: second on a slow machine.
BATCH: Final = 100
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
_FIELDS = {"model": "terminal_model", "offering_id": "offering"}


def fulfilment_principal(order: ProductOrder) -> Principal:
    """The operator's system fulfilling ``order`` (the audit names the order and its placer)."""
    return Principal(
        tenant_id=order.tenant_id,
        role=Role.OPERATOR_ADMIN,
        scopes=ROLES[Role.OPERATOR_ADMIN].scopes,
        user_id=None,
        username=f"system:order-fulfilment (order {order.id} by {order.placed_by})",
        via="system",
    )


def _transient(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None)
    return state in _TRANSIENT_SQLSTATES or "database is locked" in str(exc.orig)


def _terminal(item: ProductOrderItem, config: ActivationConfig) -> TerminalIn:
    t = item.terminal
    keys = open_session(config.kek, item)
    return TerminalIn(
        dev_eui=t["dev_eui"],
        terminal_model=t["terminal_model"],
        imei=t.get("imei"),
        scenario=t.get("scenario"),
        iccid=t.get("iccid"),
        imsi=t.get("imsi"),
        name=t.get("name") or "",
        dev_addr=t.get("dev_addr") if keys else None,
        nwk_s_key=keys[0] if keys else None,
        app_s_key=keys[1] if keys else None,
    )


def _apply(
    session: Session,
    principal: Principal,
    order: ProductOrder,
    item: ProductOrderItem,
    *,
    at: datetime,
    config: ActivationConfig,
) -> uuid.UUID:
    why = item.reason or f"order {order.id} item {item.line}"
    if item.action == "add":
        assert item.offering_id is not None
        request = ActivationRequest(
            customer_id=order.customer_id,
            billing_account_id=order.billing_account_id,
            offering_id=item.offering_id,
            terminal=_terminal(item, config),
            add_on_ids=tuple(uuid.UUID(a) for a in item.add_on_ids),
            reason=why,
        )
        return activate(session, principal, request, at=at, config=config).id
    assert item.subscription_id is not None
    if item.action == "modify":
        assert item.offering_id is not None
        return change_offering(
            session,
            principal,
            item.subscription_id,
            item.offering_id,
            at=at,
            add_on_ids=[uuid.UUID(a) for a in item.add_on_ids],
            reason=why,
        ).id
    return terminate_subscription(
        session,
        principal,
        item.subscription_id,
        why,
        at,
        quarantine_days=config.quarantine_days,
    ).id


#: Why an item failed when the fault was not its own refusal (both are logged).
_DB_REFUSED: Final = "the database refused the change (logged for the operator)"
_INTERNAL: Final = "internal error (logged for the operator)"


def _fulfil_batch(
    db: Database, item_ids: list[uuid.UUID], *, clock: Clock, config: ActivationConfig
) -> str | None:
    """Do the items (of one order) in one transaction, each in a SAVEPOINT: an item refused is
    rolled back alone and marked failed with its reason. None once the transaction committed;
    else why it did not (nothing of it was kept: the caller does the items one at a time, and
    marks one that fails so alone with that reason)."""
    for attempt in range(_RETRIES):
        try:
            with db.write() as session:
                items = session.scalars(
                    select(ProductOrderItem)
                    .where(ProductOrderItem.id.in_(item_ids))
                    .order_by(ProductOrderItem.line)
                    .with_for_update()
                ).all()
                if not items:
                    return None
                order = session.get(ProductOrder, items[0].order_id)
                assert order is not None
                if order.state != "inProgress":
                    return None
                scope_session(session, order.tenant_id)
                principal = fulfilment_principal(order)
                for item in items:
                    if item.state == "acknowledged":
                        _in_savepoint(session, principal, order, item, clock=clock, config=config)
            return None
        except DBAPIError as exc:
            if attempt < _RETRIES - 1 and _transient(exc):
                time.sleep(0.05 * 2**attempt)
                continue
            log.exception("order items from %s failed on the database", item_ids[0])
            return _DB_REFUSED
        except Exception:
            log.exception("order items from %s failed", item_ids[0])
            return _INTERNAL
    raise AssertionError("unreachable")


def _in_savepoint(
    session: Session,
    principal: Principal,
    order: ProductOrder,
    item: ProductOrderItem,
    *,
    clock: Clock,
    config: ActivationConfig,
) -> None:
    """Do one item inside a SAVEPOINT of ``session``'s transaction, or mark it failed (its
    work rolled back). A transient database error is raised: the whole batch is retried."""
    at = clock.now()
    failure: tuple[str, str]
    try:
        with session.begin_nested():
            item.subscription_id = _apply(session, principal, order, item, at=at, config=config)
            ORDER_ITEM.check(item.state, "completed")
            item.state, item.done_at = "completed", at
            drop_session(item)
        return
    except DomainError as exc:
        field = str(exc.extensions.get("field") or "")
        failure = (_FIELDS.get(field, field), exc.detail)
    except IntegrityError:
        failure = ("dev_eui", "an identity of this item is already bound elsewhere")
    except DBAPIError as exc:
        if _transient(exc):
            raise
        log.exception("order item %s failed on the database", item.id)
        failure = ("", _DB_REFUSED)
    _failed(item, *failure, at)


def _failed(item: ProductOrderItem, field: str, reason: str, at: datetime) -> None:
    ORDER_ITEM.check(item.state, "failed")
    item.state, item.done_at = "failed", at
    item.error_field, item.error = field or None, reason
    drop_session(item)


def _mark_failed(db: Database, item_id: uuid.UUID, field: str, reason: str, at: datetime) -> None:
    with db.write() as session:
        item = session.get(ProductOrderItem, item_id)
        assert item is not None
        if item.state != "acknowledged":
            return
        _failed(item, field, reason, at)


def _start(db: Database, order_id: uuid.UUID, at: datetime) -> bool:
    """Move the order to ``inProgress`` if it is due; whether its items should be worked."""
    with db.write() as session:
        order = session.scalar(
            select(ProductOrder).where(ProductOrder.id == order_id).with_for_update()
        )
        if order is None:
            return False
        if order.state == "inProgress":
            return True  # resuming an interrupted run
        due = order.requested_start_at is None or order.requested_start_at <= at
        if order.state not in ("acknowledged", "pending") or not due:
            return False
        ORDER.check(order.state, "inProgress")
        before = order_view(order)
        order.state = "inProgress"
        _record(session, order, "order.in-progress", before, at)
        return True


def _record(
    session: Session, order: ProductOrder, action: str, before: dict[str, Any], at: datetime
) -> None:
    rows = session.execute(
        select(ProductOrderItem.state, func.count())
        .where(ProductOrderItem.order_id == order.id)
        .group_by(ProductOrderItem.state)
    )
    counts = {state: n for state, n in rows}
    record_change(
        session,
        fulfilment_principal(order),
        at=at,
        action=action,
        target=("product-order", order.id),
        tenant_id=order.tenant_id,
        before=before,
        after=order_view(order) | {"items": counts},
    )


def _finish(db: Database, order_id: uuid.UUID, at: datetime) -> str:
    with db.write() as session:
        order = session.scalar(
            select(ProductOrder).where(ProductOrder.id == order_id).with_for_update()
        )
        assert order is not None
        if order.state != "inProgress":
            return order.state
        states = list(
            session.scalars(
                select(ProductOrderItem.state).where(ProductOrderItem.order_id == order_id)
            )
        )
        if "acknowledged" in states:
            return order.state  # another runner is still working on it
        done, failed = states.count("completed"), states.count("failed")
        target = "completed" if not failed else "failed" if not done else "partial"
        ORDER.check(order.state, target)
        before = order_view(order)
        order.state, order.completed_at = target, at
        _record(session, order, f"order.{target}", before, at)
        return target


def fulfil_order(
    db: Database,
    order_id: uuid.UUID,
    *,
    clock: Clock,
    config: ActivationConfig,
    progress: Progress | None = None,
) -> str:
    """Fulfil every open item of a due order; the order's state afterwards (unchanged if it
    is not due, cancelled or already final)."""
    if not _start(db, order_id, clock.now()):
        with db.read() as session:
            order = session.get(ProductOrder, order_id)
            return order.state if order else "missing"
    with db.read() as session:
        item_ids = list(
            session.scalars(
                select(ProductOrderItem.id)
                .where(
                    ProductOrderItem.order_id == order_id,
                    ProductOrderItem.state == "acknowledged",
                )
                .order_by(ProductOrderItem.line)
            )
        )
    for start in range(0, len(item_ids), BATCH):
        batch = item_ids[start : start + BATCH]
        if _fulfil_batch(db, batch, clock=clock, config=config) is not None:
            for item_id in batch:  # one item at a time, each in its own transaction
                why = _fulfil_batch(db, [item_id], clock=clock, config=config)
                if why is not None:
                    _mark_failed(db, item_id, "", why, clock.now())
        if progress is not None:
            progress(start + len(batch), len(item_ids))
    return _finish(db, order_id, clock.now())


def fulfil_and_register(
    db: Database,
    order_id: uuid.UUID,
    *,
    clock: Clock,
    config: ActivationConfig,
    node: NodeConfig | None,
) -> str:
    """Fulfil an order, then send the handles it minted to the identification node (if one
    is configured; a node that is down leaves them pending for the next run)."""
    state = fulfil_order(db, order_id, clock=clock, config=config)
    register_pending_handles(db, node, at=clock.now())
    return state


def due_orders(db: Database, at: datetime, *, limit: int = 100) -> list[uuid.UUID]:
    """Orders to work on: acknowledged, interrupted (in progress) or pending and now due."""
    with db.read() as session:
        return list(
            session.scalars(
                select(ProductOrder.id)
                .where(
                    or_(
                        ProductOrder.state.in_(("acknowledged", "inProgress")),
                        (ProductOrder.state == "pending") & (ProductOrder.requested_start_at <= at),
                    )
                )
                .order_by(ProductOrder.id)
                .limit(limit)
            )
        )


def fulfil_due_orders(
    db: Database, *, clock: Clock, config: ActivationConfig, limit: int = 100
) -> dict[uuid.UUID, str]:
    """Fulfil every due order (see :func:`due_orders`); each order's resulting state."""
    return {
        order_id: fulfil_order(db, order_id, clock=clock, config=config)
        for order_id in due_orders(db, clock.now(), limit=limit)
    }
