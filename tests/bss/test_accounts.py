"""Billing accounts: opening, finding, and how the balance reads."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from satiot.bss import accounts, customers
from satiot.bss.models import BillingAccount
from satiot.core.errors import Conflict, InvalidInput
from satiot.core.models import Event
from tests.bss.onboarding_world import application, uscc_for


def onboard(world, n=1):
    with world.ctx.db.write() as s:
        return customers.onboard(
            s, world.system, application(n, uscc=uscc_for(n)), at=world.ctx.clock.now()
        )


def open_account(world, customer_id, mode="prepaid", name=None):
    with world.ctx.db.write() as s:
        return accounts.open_account(
            s, world.system, customer_id, payment_mode=mode, name=name, at=world.ctx.clock.now()
        )


def test_open_postpaid_and_prepaid_accounts(world, ctx):
    customer = onboard(world)
    pre = open_account(world, customer.id, "prepaid", "Fleet A")
    post = open_account(world, customer.id, "postpaid")
    assert (pre.name, pre.payment_mode, pre.balance_micros, pre.status) == (
        "Fleet A",
        "prepaid",
        0,
        "active",
    )
    assert post.name == customer.name and post.tenant_id == customer.tenant_id
    with ctx.db.read() as s:
        assert [a.id for a in accounts.accounts_of(s, customer.id)] == [pre.id, post.id]
        assert accounts.get_account(s, pre.id).id == pre.id
        event = s.scalars(select(Event).where(Event.type == "billing-account.created")).first()
        assert event.payload["payment_mode"] == "prepaid"


def test_an_unknown_mode_is_refused(world):
    customer = onboard(world)
    with pytest.raises(InvalidInput, match="payment_mode") as caught:
        open_account(world, customer.id, "barter")
    assert caught.value.extensions["field"] == "payment_mode"


@pytest.mark.parametrize("name", ["Fleet\nA", "Fleet \u202eA", "x" * 201])
def test_bad_account_names_are_refused(world, ctx, name):
    """An account's name heads its invoices."""
    customer = onboard(world)
    with pytest.raises(InvalidInput) as caught:
        open_account(world, customer.id, "postpaid", name)
    assert caught.value.extensions["field"] == "name"
    with ctx.db.read() as s:
        assert accounts.accounts_of(s, customer.id) == []


def test_a_closed_customer_gets_no_account(world, ctx):
    customer = onboard(world)
    with ctx.db.write() as s:
        customers.change_status(
            s, world.system, customer.id, "closed", at=ctx.clock.now(), reason="left"
        )
    with pytest.raises(Conflict, match="closed"):
        open_account(world, customer.id)


def test_get_account_checks_the_customer(world, ctx):
    one, two = onboard(world, 1), onboard(world, 2)
    account = open_account(world, one.id)
    with ctx.db.read() as s:
        with pytest.raises(accounts.AccountNotFound):
            accounts.get_account(s, account.id, customer_id=two.id)
        with pytest.raises(accounts.AccountNotFound):
            accounts.get_account(s, uuid.uuid4())


@pytest.mark.parametrize(
    ("micros", "text"), [(0, "¥0.00"), (120_500_000, "¥120.50"), (-3_456_780_000, "-¥3,456.78")]
)
def test_balance_text(micros, text):
    assert accounts.balance_text(BillingAccount(balance_micros=micros)) == text
