"""The catalog: offerings, prices, versions and their lifecycle; the default catalog."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from satiot.bss import catalog
from satiot.bss.catalog import OfferingSpec, PriceSpec
from satiot.bss.catalog_seed import DEFAULT_CATALOG, seed_catalog
from satiot.bss.models import ProductOffering
from satiot.bss.money import to_micros
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.errors import Conflict, IllegalTransition, InvalidInput, PermissionDenied
from satiot.core.models import AuditEntry

BUNDLE = OfferingSpec(
    code="TEST-BUNDLE",
    name="Test bundle",
    prices=(
        PriceSpec("Bundle", "recurring", to_micros("6.00"), allowance_messages=100, pooled=True),
        PriceSpec("Overage", "per-message", to_micros("0.04")),
    ),
)


def _create(ctx, world, spec=BUNDLE, *, launch=False):
    with ctx.db.write() as s:
        made = catalog.create_offering(s, world.system, spec, at=ctx.clock.now())
        if launch:
            made = catalog.set_lifecycle(s, world.system, made.id, "Active", at=ctx.clock.now())
        return made


def test_an_offering_is_designed_then_launched(ctx, world):
    made = _create(ctx, world)
    assert (made.offering.version, made.offering.lifecycle_status) == (1, "In design")
    assert [p.kind for p in made.prices] == ["recurring", "per-message"]
    with ctx.db.write() as s:
        launched = catalog.set_lifecycle(s, world.system, made.id, "Active", at=ctx.clock.now())
        assert catalog.current_version(s, "test-bundle").id == made.id
    assert launched.offering.lifecycle_status == "Active"
    with ctx.db.read() as s:
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))
    assert actions[-2:] == ["offering.created", "offering.launched"]


def test_revising_an_active_offering_makes_a_new_version_and_keeps_the_old(ctx, world):
    v1 = _create(ctx, world, launch=True)
    cheaper = replace(
        BUNDLE,
        prices=(replace(BUNDLE.prices[0], amount_micros=to_micros("5.00")), BUNDLE.prices[1]),
    )
    with ctx.db.write() as s:
        v2 = catalog.revise_offering(s, world.system, v1.id, cheaper, at=ctx.clock.now())
    assert v2.id != v1.id
    assert (v2.offering.version, v2.offering.lifecycle_status) == (2, "In design")
    with ctx.db.write() as s:
        # Until v2 is launched, new orders still get v1.
        assert catalog.current_version(s, BUNDLE.code).id == v1.id
        catalog.set_lifecycle(s, world.system, v2.id, "Active", at=ctx.clock.now())
    with ctx.db.read() as s:
        old = catalog.get_offering(s, v1.id)
        assert old.offering.lifecycle_status == "Retired"
        assert old.prices[0].amount_micros == to_micros("6.00"), "v1's prices never change"
        assert catalog.current_version(s, BUNDLE.code).id == v2.id
        assert catalog.get_offering(s, v2.id).prices[0].amount_micros == to_micros("5.00")


def test_a_version_in_design_is_edited_in_place(ctx, world):
    made = _create(ctx, world)
    renamed = replace(BUNDLE, name="Renamed bundle", prices=BUNDLE.prices[:1])
    with ctx.db.write() as s:
        same = catalog.revise_offering(s, world.system, made.id, renamed, at=ctx.clock.now())
    assert same.id == made.id and same.offering.name == "Renamed bundle"
    assert len(same.prices) == 1


def test_only_one_version_is_in_design_and_retired_ones_do_not_change(ctx, world):
    v1 = _create(ctx, world, launch=True)
    with ctx.db.write() as s:
        catalog.new_version(s, world.system, v1.id, None, at=ctx.clock.now())
    with ctx.db.write() as s, pytest.raises(Conflict, match="still in design"):
        catalog.new_version(s, world.system, v1.id, None, at=ctx.clock.now())
    with ctx.db.write() as s:
        catalog.set_lifecycle(s, world.system, v1.id, "Retired", at=ctx.clock.now())
    with ctx.db.write() as s, pytest.raises(Conflict, match="Retired"):
        catalog.revise_offering(s, world.system, v1.id, BUNDLE, at=ctx.clock.now())


def test_lifecycle_moves_follow_the_table_and_the_roles(ctx, world):
    made = _create(ctx, world)
    with ctx.db.write() as s, pytest.raises(IllegalTransition, match="allowed: Active"):
        catalog.set_lifecycle(s, world.system, made.id, "Retired", at=ctx.clock.now())
    spec = ROLES[Role.BILLING]
    billing = Principal(world.operator.id, Role.BILLING, spec.scopes, None, "b", "session")
    with ctx.db.write() as s, pytest.raises(PermissionDenied):
        catalog.set_lifecycle(s, billing, made.id, "Active", at=ctx.clock.now())


@pytest.mark.parametrize(
    ("price", "field"),
    [
        (PriceSpec("", "recurring", 1), "prices[0].name"),
        # Price names are invoice lines: no line break, no reordering override.
        (PriceSpec("Monthly\nfee", "recurring", 1), "prices[0].name"),
        (PriceSpec("Monthly \u202eeef", "recurring", 1), "prices[0].name"),
        (PriceSpec("x", "per-minute", 1), "prices[0].kind"),
        (PriceSpec("x", "per-message", -1), "prices[0].amount_micros"),
        (PriceSpec("x", "per-message", 1, min_billable_bytes=10), "prices[0].min_billable_bytes"),
        (PriceSpec("x", "per-byte", 1, allowance_messages=5), "prices[0].allowance_messages"),
        (PriceSpec("x", "recurring", 1, pooled=True), "prices[0].pooled"),
        (PriceSpec("x", "one-time", 1, priority=True), "prices[0].priority"),
        (PriceSpec("x", "recurring", 1, applies_to="uplink"), "prices[0].applies_to"),
    ],
)
def test_bad_prices_are_named(ctx, world, price, field):
    spec = OfferingSpec("BAD-1", "Bad", prices=(price,))
    with ctx.db.write() as s, pytest.raises(InvalidInput) as err:
        catalog.create_offering(s, world.system, spec, at=ctx.clock.now())
    assert err.value.extensions["field"] == field


@pytest.mark.parametrize("name", ["", "Bundle\tA", "Bundle \u2066A", "x" * 201])
def test_bad_offering_names_are_refused(ctx, world, name):
    with ctx.db.write() as s, pytest.raises(InvalidInput) as err:
        catalog.create_offering(s, world.system, replace(BUNDLE, name=name), at=ctx.clock.now())
    assert err.value.extensions["field"] == "name"
    with ctx.db.read() as s:
        assert s.scalar(select(ProductOffering).where(ProductOffering.code == BUNDLE.code)) is None


def test_codes_are_unique_and_well_formed(ctx, world):
    _create(ctx, world)
    with ctx.db.write() as s, pytest.raises(Conflict):
        catalog.create_offering(s, world.system, BUNDLE, at=ctx.clock.now())
    with ctx.db.write() as s, pytest.raises(InvalidInput) as err:
        catalog.create_offering(s, world.system, replace(BUNDLE, code="a b"), at=ctx.clock.now())
    assert err.value.extensions["field"] == "code"


def test_the_default_catalog_seeds_once(ctx, world):
    with ctx.db.write() as s:
        first = seed_catalog(s, world.system, at=ctx.clock.now())
    assert first.created == [spec.code for spec in DEFAULT_CATALOG]
    with ctx.db.write() as s:
        again = seed_catalog(s, world.system, at=ctx.clock.now())
    assert (again.created, again.existing) == ([], first.created)
    with ctx.db.read() as s:
        rows = {o.code: o for o in s.scalars(select(ProductOffering))}
        assert {o.lifecycle_status for o in rows.values()} == {"Active"}
        assert rows["EMERGENCY-PRIORITY"].is_add_on
        byte = catalog.get_offering(s, rows["SAT-BYTE"].id)
        per_byte = next(p for p in byte.prices if p.kind == "per-byte")
        assert (per_byte.amount_micros, per_byte.min_billable_bytes) == (500, 10)
        bundle = catalog.get_offering(s, rows["SAT-BUNDLE-100"].id)
        assert catalog.describe_price(bundle.prices[0]) == (
            "¥6.00 per device per month, 100 messages per device included "
            "(pooled across the customer's devices)"
        )
        priority = catalog.get_offering(s, rows["EMERGENCY-PRIORITY"].id).prices[0]
        assert priority.priority and priority.kind == "recurring"
