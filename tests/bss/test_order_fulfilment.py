"""Fulfilment a batch of items to a transaction: a refused item rolled back alone (with its
audit entries), progress after each batch, and a batch that fails as a whole done again an
item at a time."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select

from satiot.bss import order_fulfilment
from satiot.bss.models import ProductOrderItem, Subscription
from satiot.bss.orders import get_order
from satiot.core.models import AuditEntry
from satiot.network import devices
from satiot.oss.models import IotNumber
from tests.bss.order_world import Shop, Terminal, shop, terminal
from tests.bss.test_orders import place


def _taken_by_another_customer(s: Shop, other: Shop, t: Terminal) -> None:
    """Another customer's device takes ``t``'s DevEUI in the network before fulfilment."""
    with s.ctx.db.write() as session:
        devices.create_device(
            session,
            s.world.system,
            kek=s.ctx.kek,
            tenant_id=other.tenant.id,
            dev_eui=t.dev_eui,
            dev_addr="26FFFF02",
            nwk_s_key="AB" * 16,
            app_s_key="CD" * 16,
            at=s.ctx.clock.now(),
        )


def _audited(s: Shop, action: str) -> int:
    with s.ctx.db.read() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            )
            or 0
        )


def test_items_go_a_batch_to_a_transaction_and_a_refused_one_leaves_nothing(
    ctx, world, monkeypatch
):
    monkeypatch.setattr(order_fulfilment, "BATCH", 2)
    s, other = shop(ctx, world), shop(ctx, world)
    terminals = [terminal() for _ in range(5)]
    order = place(s, *(s.add(t, line) for line, t in enumerate(terminals)))
    _taken_by_another_customer(s, other, terminals[2])
    with ctx.db.read() as session:
        numbers_before = session.scalar(
            select(func.count()).select_from(IotNumber).where(IotNumber.status != "available")
        )
    handles_before = _audited(s, "handle.created")
    commits: list[int] = []

    def committed(conn: Any) -> None:
        commits.append(1)

    event.listen(ctx.db.engine, "commit", committed)
    told: list[tuple[int, int]] = []
    try:
        state = order_fulfilment.fulfil_order(
            ctx.db,
            order.id,
            clock=ctx.clock,
            config=s.config,
            progress=lambda done, total: told.append((done, total)),
        )
    finally:
        event.remove(ctx.db.engine, "commit", committed)
    assert state == "partial"
    assert told == [(2, 5), (4, 5), (5, 5)]
    # the order started, three batches, the order finished
    assert len(commits) == 5
    with ctx.db.read() as session:
        done = get_order(session, order.id)
        subs = session.scalars(select(Subscription).order_by(Subscription.dev_eui)).all()
        reserved = session.scalar(
            select(func.count()).select_from(IotNumber).where(IotNumber.status != "available")
        )
    assert [i.state for i in done.items] == ["completed"] * 2 + ["failed"] + ["completed"] * 2
    assert done.items[2].error_field == "dev_eui"
    assert "already exists" in (done.items[2].error or "")
    assert "sealed" not in done.items[2].terminal
    assert [x.dev_eui for x in subs] == sorted(t.dev_eui for i, t in enumerate(terminals) if i != 2)
    # the refused item's number, handle and audit entries went with its savepoint
    assert reserved == numbers_before + 4
    assert _audited(s, "handle.created") == handles_before + 4
    assert _audited(s, "subscription.activated") == 4


def test_a_batch_that_fails_as_a_whole_is_done_an_item_at_a_time(ctx, world, monkeypatch):
    s = shop(ctx, world)
    terminals = [terminal() for _ in range(3)]
    order = place(s, *(s.add(t, line) for line, t in enumerate(terminals)))
    activate = order_fulfilment.activate
    tried: list[str] = []

    def breaks_on_the_second(session: Any, principal: Any, request: Any, **kw: Any) -> Any:
        tried.append(request.terminal.dev_eui)
        if request.terminal.dev_eui == terminals[1].dev_eui:
            raise RuntimeError("a fault no one foresaw")
        return activate(session, principal, request, **kw)

    monkeypatch.setattr(order_fulfilment, "activate", breaks_on_the_second)
    assert (
        order_fulfilment.fulfil_order(ctx.db, order.id, clock=ctx.clock, config=s.config)
        == "partial"
    )
    # once in the batch (the first two, the batch rolled back), then one at a time
    euis = [t.dev_eui for t in terminals]
    assert tried == euis[:2] + euis
    with ctx.db.read() as session:
        items = session.scalars(
            select(ProductOrderItem)
            .where(ProductOrderItem.order_id == order.id)
            .order_by(ProductOrderItem.line)
        ).all()
        live = session.scalars(select(Subscription.dev_eui).order_by(Subscription.dev_eui)).all()
    assert [(i.state, i.error) for i in items] == [
        ("completed", None),
        ("failed", "internal error (logged for the operator)"),
        ("completed", None),
    ]
    assert list(live) == sorted([euis[0], euis[2]])
    assert _audited(s, "subscription.activated") == 2


@pytest.mark.parametrize("size", [1, 3])
def test_the_same_order_is_fulfilled_alike_whatever_the_batch(ctx, world, monkeypatch, size):
    monkeypatch.setattr(order_fulfilment, "BATCH", size)
    s = shop(ctx, world)
    order = place(s, *(s.add(terminal(), line) for line in range(4)))
    assert (
        order_fulfilment.fulfil_order(ctx.db, order.id, clock=ctx.clock, config=s.config)
        == "completed"
    )
    with ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Subscription)) == 4
