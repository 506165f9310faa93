"""Orders: validation against customer, contract, catalog and OSS; fulfilment item by item."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from satiot.bss import catalog
from satiot.bss.models import Contract, ProductOrder, Subscription
from satiot.bss.order_fulfilment import fulfil_due_orders, fulfil_order
from satiot.bss.order_items import ItemIn, OrderRejected
from satiot.bss.orders import cancel_order, get_order, hold_order, place_order, release_order
from satiot.bss.risk import CustomerNotReady
from satiot.core.errors import IllegalTransition, InvalidInput, PermissionDenied
from satiot.network import devices
from satiot.oss.models import IotNumber
from satiot.schema import metadata
from tests.bss.order_world import MODEL, Shop, shop, terminal
from tests.bss.test_activation import customer_admin
from tests.network.ingest_helpers import add_device


def all_counts(ctx) -> dict[str, int]:
    """Row counts of every table (nothing applied means all of them unchanged)."""
    with ctx.db.engine.connect() as conn:
        return {
            t.name: int(conn.execute(text(f'SELECT COUNT(*) FROM "{t.name}"')).scalar_one())
            for t in metadata().sorted_tables
        }


def place(s: Shop, *items: ItemIn, principal=None, **kw):
    with s.ctx.db.write() as session:
        return place_order(
            session,
            principal or s.world.system,
            s.order(*items, customer_id=s.customer_id, **kw),
            at=s.ctx.clock.now(),
            kek=s.ctx.kek,
        )


def fulfil(s: Shop, order_id: uuid.UUID) -> str:
    return fulfil_order(s.ctx.db, order_id, clock=s.ctx.clock, config=s.config)


def rejected(s: Shop, *items: ItemIn) -> list[dict]:
    with pytest.raises(OrderRejected) as err:
        place(s, *items)
    return err.value.extensions["errors"]


def test_an_order_is_acknowledged_then_fulfilled(ctx, world):
    s = shop(ctx, world)
    t1, t2 = terminal(), terminal()
    placed = place(s, s.add(t1, 0), s.add(t2, 1))
    assert placed.order.state == "acknowledged"
    assert [i.state for i in placed.items] == ["acknowledged", "acknowledged"]
    assert "nwk_s_key" not in placed.items[0].terminal
    assert set(placed.items[0].terminal["sealed"]) == {"kek_id", "nwk_s_key", "app_s_key"}
    assert fulfil(s, placed.id) == "completed"
    with ctx.db.read() as session:
        done = get_order(session, placed.id)
        subs = session.scalars(select(Subscription).order_by(Subscription.dev_eui)).all()
    assert done.order.completed_at is not None
    assert [i.state for i in done.items] == ["completed", "completed"]
    assert all("sealed" not in i.terminal for i in done.items), "keys are dropped once used"
    assert {i.subscription_id for i in done.items} == {sub.id for sub in subs}
    assert [(sub.dev_eui, sub.status) for sub in subs] == [
        (t1.dev_eui, "active"),
        (t2.dev_eui, "active"),
    ]
    assert subs[0].offering_id == s.offerings["SAT-BUNDLE-100"]


def test_validation_failures_name_the_item_and_field_and_change_nothing(ctx, world):
    s = shop(ctx, world, disclose=("SAT-BUNDLE-100", "EMERGENCY-PRIORITY"))
    good, twin = terminal(), terminal()
    before = all_counts(ctx)
    errors = rejected(
        s,
        s.add(good, 0),
        s.add(terminal(), 1, imei="354178036859788"),  # wrong Luhn digit
        s.add(terminal(), 2, terminal_model="TQ-UNKNOWN"),
        s.add(terminal(), 3, offering="SAT-MSG"),  # not disclosed by the contract
        s.add(terminal(), 4, offering="EMERGENCY-PRIORITY"),  # an add-on
        s.add(terminal(), 5, with_session=False),  # new to the network, no session
        replace(s.add(twin, 6), terminal=twin.spec(dev_eui=good.dev_eui)),
        s.add(terminal(), 7, scenario="maritime"),
        ItemIn("delete", 8, subscription_id=uuid.uuid4()),
    )
    by_item = {(e["item"], e["field"]) for e in errors}
    assert by_item == {
        (1, "imei"),
        (2, "terminal_model"),
        (3, "offering"),
        (4, "offering"),
        (5, "nwk_s_key"),
        (6, "dev_eui"),
        (7, "scenario"),
        (8, "subscription_id"),
    }, errors
    reasons = {e["item"]: e["reason"] for e in errors}
    assert "checksum" in reasons[1].lower() or "check" in reasons[1].lower()
    assert "does not disclose" in reasons[3]
    assert "already on item 0" in reasons[6]
    assert all_counts(ctx) == before


def test_a_reference_longer_than_its_column_is_refused_on_every_database(ctx, world):
    s = shop(ctx, world)
    before = all_counts(ctx)
    with pytest.raises(InvalidInput, match="at most 100") as err:
        place(s, s.add(terminal(), 0), external_id="R" * 101)
    assert err.value.extensions["field"] == "external_id"
    assert all_counts(ctx) == before
    assert place(s, s.add(terminal(), 0), external_id="R" * 100).order.external_id == "R" * 100


@pytest.mark.parametrize("ref", ["PO\x00-1", "PO\n1", "PO-\u202e1"])
def test_a_reference_with_control_characters_is_refused(ctx, world, ref):
    """A NUL failed on PostgreSQL alone, unnamed; other callers than the CLI reach here."""
    s = shop(ctx, world)
    before = all_counts(ctx)
    with pytest.raises(InvalidInput) as err:
        place(s, s.add(terminal(), 0), external_id=ref)
    assert err.value.extensions["field"] == "external_id"
    assert all_counts(ctx) == before
    assert place(s, s.add(terminal(), 0), external_id="  PO-1 ").order.external_id == "PO-1"


def test_the_contract_device_limit_counts_live_subscriptions(ctx, world):
    s = shop(ctx, world, max_devices=2)
    fulfil(s, place(s, s.add(terminal(), 0)).id)
    errors = rejected(s, s.add(terminal(), 0), s.add(terminal(), 1))
    assert [(e["item"], e["field"]) for e in errors] == [(1, "dev_eui")]
    assert "allows 2 devices; 1 are live" in errors[0]["reason"]


def test_a_customer_that_has_not_passed_risk_cannot_order(ctx, world):
    s = shop(ctx, world, risk="pending")
    with pytest.raises(CustomerNotReady):
        place(s, s.add(terminal()))


def test_versioning_keeps_old_subscribers_on_their_version(ctx, world):
    s = shop(ctx, world)
    v1 = s.offerings["SAT-BUNDLE-100"]
    order = place(s, s.add(terminal()))
    fulfil(s, order.id)
    with ctx.db.write() as session:
        found = catalog.get_offering(session, v1)
        dearer = replace(catalog.spec_of(found), name="Bundle 2027")
        v2 = catalog.revise_offering(session, world.system, v1, dearer, at=ctx.clock.now())
        catalog.set_lifecycle(session, world.system, v2.id, "Active", at=ctx.clock.now())
    with ctx.db.read() as session:
        (old_sub,) = session.scalars(select(Subscription)).all()
    assert old_sub.offering_id == v1, "the old subscriber stays on version 1"
    # Version 1 is retired for new orders; version 2's prices were never disclosed to this
    # customer, so ordering the code again is refused until the contract is amended.
    errors = rejected(s, s.add(terminal(), 0, offering=str(v1)))
    assert errors[0]["field"] == "offering" and "Retired" in errors[0]["reason"]
    errors = rejected(s, s.add(terminal(), 0))
    assert errors[0]["field"] == "offering" and "amended contract" in errors[0]["reason"]
    with ctx.db.write() as session:  # what a signed amendment disclosing version 2 gives
        contract = session.get(Contract, s.contract_id)
        contract.offering_ids = [*contract.offering_ids, str(v2.id)]
    newer = place(s, s.add(terminal(), 0))
    assert newer.items[0].offering_id == v2.id
    # Moving the old subscriber is an explicit modify, to the Active version.
    change = place(s, ItemIn("modify", 0, offering="SAT-BUNDLE-100", subscription_id=old_sub.id))
    assert fulfil(s, change.id) == "completed"
    with ctx.db.read() as session:
        assert session.get(Subscription, old_sub.id).offering_id == v2.id


def test_modify_and_delete_items(ctx, world):
    s = shop(ctx, world)
    fulfil(s, place(s, s.add(terminal(), 0), s.add(terminal(), 1)).id)
    with ctx.db.read() as session:
        a, b = session.scalars(select(Subscription).order_by(Subscription.dev_eui)).all()
    order = place(
        s,
        ItemIn(
            "modify",
            0,
            offering="SAT-MSG",
            add_ons=("EMERGENCY-PRIORITY",),
            subscription_id=a.id,
        ),
        ItemIn("delete", 1, subscription_id=b.id, reason="device lost at sea"),
    )
    assert fulfil(s, order.id) == "completed"
    with ctx.db.read() as session:
        a, b = session.get(Subscription, a.id), session.get(Subscription, b.id)
    assert a.offering_id == s.offerings["SAT-MSG"]
    assert a.add_on_ids == [str(s.offerings["EMERGENCY-PRIORITY"])]
    assert (b.status, b.status_reason) == ("terminated", "device lost at sea")
    errors = rejected(s, ItemIn("delete", 0, subscription_id=b.id))
    assert "terminated" in errors[0]["reason"]


def test_a_failed_item_never_half_applies_and_the_order_is_partial(ctx, world):
    s = shop(ctx, world)
    other = shop(ctx, world)
    good, clash = terminal(), terminal()
    order = place(s, s.add(good, 0), s.add(clash, 1))
    # Before fulfilment, another customer's device takes the DevEUI in the network.
    with ctx.db.write() as session:
        devices.create_device(
            session,
            world.system,
            kek=ctx.kek,
            tenant_id=other.tenant.id,
            dev_eui=clash.dev_eui,
            dev_addr="26FFFF01",
            nwk_s_key="AB" * 16,
            app_s_key="CD" * 16,
            at=ctx.clock.now(),
        )
    with ctx.db.read() as session:
        numbers_before = session.scalar(
            select(func.count()).select_from(IotNumber).where(IotNumber.status != "available")
        )
    assert fulfil(s, order.id) == "partial"
    with ctx.db.read() as session:
        done = get_order(session, order.id)
        reserved = session.scalar(
            select(func.count()).select_from(IotNumber).where(IotNumber.status != "available")
        )
        subs = session.scalars(select(Subscription)).all()
    assert [i.state for i in done.items] == ["completed", "failed"]
    failed = done.items[1]
    assert failed.error_field == "dev_eui" and "already exists" in (failed.error or "")
    assert "sealed" not in failed.terminal
    assert [sub.dev_eui for sub in subs] == [good.dev_eui]
    assert reserved == numbers_before + 1, "the failed item's number was rolled back"


def test_cancel_while_acknowledged_or_pending_only(ctx, world):
    s = shop(ctx, world)
    first = place(s, s.add(terminal(), 0))
    later = place(s, s.add(terminal(), 0), requested_start_at=ctx.clock.now() + timedelta(days=1))
    assert later.order.state == "pending"
    with ctx.db.write() as session:
        cancelled = cancel_order(session, world.system, first.id, at=ctx.clock.now(), reason="x")
    assert cancelled.order.state == "cancelled"
    assert [(i.state, "sealed" in i.terminal) for i in cancelled.items] == [("cancelled", False)]
    assert fulfil(s, first.id) == "cancelled"
    # The pending order waits for its start, then fulfil_due_orders picks it up.
    assert fulfil_due_orders(ctx.db, clock=ctx.clock, config=s.config) == {}
    ctx.clock.advance(timedelta(days=1))
    assert fulfil_due_orders(ctx.db, clock=ctx.clock, config=s.config) == {later.id: "completed"}
    with ctx.db.write() as session, pytest.raises(IllegalTransition):
        cancel_order(session, world.system, later.id, at=ctx.clock.now())
    with ctx.db.read() as session:
        assert session.get(ProductOrder, later.id).state == "completed"


def test_a_device_already_in_the_inventory_needs_no_session(ctx, world):
    s = shop(ctx, world)
    dev = add_device(ctx, world, s.tenant.id, status="inventory")
    t = replace(terminal(), dev_eui=dev.dev_eui)
    errors = rejected(s, s.add(t, 0))
    assert [e["field"] for e in errors] == ["nwk_s_key"]
    order = place(s, s.add(t, 0, with_session=False))
    assert fulfil(s, order.id) == "completed"
    with ctx.db.read() as session:
        sub = session.scalar(select(Subscription))
    assert (sub.dev_eui, sub.terminal_model) == (dev.dev_eui, MODEL)


def test_a_held_order_is_not_fulfilled_until_released(ctx, world):
    s = shop(ctx, world)
    later = place(s, s.add(terminal(), 0), requested_start_at=ctx.clock.now() + timedelta(hours=1))
    customer = customer_admin(s)
    with ctx.db.write() as session, pytest.raises(PermissionDenied):
        hold_order(session, customer, later.id, at=ctx.clock.now())  # the operator's decision
    with ctx.db.write() as session:
        held = hold_order(session, world.system, later.id, at=ctx.clock.now(), reason="KYC")
    assert held.order.state == "held"
    ctx.clock.advance(timedelta(days=1))
    assert fulfil_due_orders(ctx.db, clock=ctx.clock, config=s.config) == {}
    with ctx.db.write() as session:
        release_order(session, world.system, later.id, at=ctx.clock.now(), reason="KYC done")
    assert fulfil_due_orders(ctx.db, clock=ctx.clock, config=s.config) == {later.id: "completed"}
    with ctx.db.write() as session, pytest.raises(IllegalTransition):
        hold_order(session, world.system, later.id, at=ctx.clock.now())


def test_the_emergency_priority_add_on_makes_the_device_a_priority_device(ctx, world, client):
    """The add-on reaches the network server: the device is a priority device while its live
    subscription carries it — set at activation, following modify orders that add or drop
    it, cleared at termination — and the device API and audit log show it."""
    from satiot.core.models import AuditEntry
    from satiot.network.models import Device

    s = shop(ctx, world)
    urgent, plain = terminal(), terminal()
    addon = ItemIn(
        "add", 0, offering="SAT-BUNDLE-100", add_ons=("EMERGENCY-PRIORITY",), terminal=urgent.spec()
    )
    assert fulfil(s, place(s, addon, s.add(plain, 1)).id) == "completed"

    def priorities() -> dict[str, int]:
        with ctx.db.read() as session:
            rows = session.scalars(select(Device).where(Device.tenant_id == s.tenant.id))
            return {d.dev_eui: d.priority for d in rows}

    def shown(dev_eui: str) -> str:
        r = client.get(f"/api/v1/devices/{dev_eui}", headers=world.admin_headers())
        assert r.status_code == 200, r.text
        return r.json()["priority"]

    assert priorities() == {urgent.dev_eui: devices.PRIORITY_EMERGENCY, plain.dev_eui: 0}
    assert (shown(urgent.dev_eui), shown(plain.dev_eui)) == ("emergency", "normal")
    with ctx.db.read() as session:
        subs = {
            sub.dev_eui: sub.id
            for sub in session.scalars(
                select(Subscription).where(Subscription.tenant_id == s.tenant.id)
            )
        }

    def modify(dev_eui: str, add_ons: tuple[str, ...]) -> None:
        item = ItemIn(
            "modify", 0, offering="SAT-BUNDLE-100", add_ons=add_ons, subscription_id=subs[dev_eui]
        )
        assert fulfil(s, place(s, item).id) == "completed"

    modify(urgent.dev_eui, ())  # the add-on dropped
    modify(plain.dev_eui, ("EMERGENCY-PRIORITY",))  # and added to the other
    assert priorities() == {urgent.dev_eui: 0, plain.dev_eui: devices.PRIORITY_EMERGENCY}
    assert (shown(urgent.dev_eui), shown(plain.dev_eui)) == ("normal", "emergency")
    delete = ItemIn("delete", 0, subscription_id=subs[plain.dev_eui], reason="vessel sold")
    assert fulfil(s, place(s, delete).id) == "completed"
    assert priorities() == {urgent.dev_eui: 0, plain.dev_eui: 0}
    with ctx.db.read() as session:
        moves = session.execute(
            select(AuditEntry.target_id, AuditEntry.after)
            .where(AuditEntry.action == "device.priority-changed")
            .order_by(AuditEntry.seq)
        ).all()
    assert [m.after["priority"] for m in moves] == ["emergency", "normal", "emergency", "normal"]
