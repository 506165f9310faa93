"""A prepaid balance running low is announced once per fall below the account's threshold,
before the service stops at zero; a top-up above it arms the notice again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from satiot.bss.accounts import set_low_balance
from satiot.bss.models import BillingAccount
from satiot.bss.payments import top_up
from satiot.bss.rating_store import BALANCE_LOW
from satiot.core.errors import Conflict, InvalidInput
from satiot.core.models import AuditEntry, Event
from tests.bss.billing_world import DEC_1, offering, price, rate_all, shop, uplink
from tests.network.delivery_support import deliveries, fan_out, webhook

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def _notices(ctx) -> list[dict]:
    with ctx.db.read() as r:
        return [e.payload for e in r.scalars(select(Event).where(Event.type == BALANCE_LOW))]


def _send(ctx, sub, messages: int, day: int) -> None:
    for i in range(messages):
        uplink(ctx, sub, 10, datetime(2026, 11, day, i, tzinfo=UTC))
    rate_all(ctx)


def test_a_balance_falling_below_its_threshold_is_announced_once_per_fall(world):
    ctx = world.ctx
    s = shop(world, payment_mode="prepaid")
    with ctx.db.write() as w:  # ¥0.05
        top_up(w, world.system, s.account_id, amount_micros=50_000, method="alipay",
               reference="T1", at=NOV)  # fmt: skip
        set_low_balance(w, world.system, s.account_id, 30_000, at=NOV)  # below ¥0.03
    sub = s.device(offering(ctx, "Per message", [price("per-message", 10_000)]), NOV)
    _send(ctx, sub, 2, 5)  # ¥0.03 left: not below
    assert _notices(ctx) == []
    hook = webhook(ctx, world, s.tenant.id, "https://erp.example/hook")
    _send(ctx, sub, 1, 6)  # ¥0.02: below
    (notice,) = _notices(ctx)
    fan_out(ctx)  # pushed to the customer's integrations with its other notices
    (delivered,) = [d for d in deliveries(ctx, hook) if d.event_type == BALANCE_LOW]
    assert delivered.body["balance"] == "0.02" and delivered.body["threshold"] == "0.03"
    assert notice == {
        "type": BALANCE_LOW,
        "billing_account_id": str(s.account_id),
        "balance_micros": 20_000,
        "balance": "0.02",
        "threshold_micros": 30_000,
        "threshold": "0.03",
        "cause": "usage",
    }
    _send(ctx, sub, 1, 7)  # lower still: told already
    assert len(_notices(ctx)) == 1
    with ctx.db.write() as w:  # ¥0.11: above again, the notice is armed
        top_up(w, world.system, s.account_id, amount_micros=100_000, method="alipay",
               reference="T2", at=NOV)  # fmt: skip
    _send(ctx, sub, 9, 8)  # ¥0.02 in one rating batch: one notice
    assert [n["balance"] for n in _notices(ctx)] == ["0.02", "0.02"]
    with ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros == 20_000
        event = r.scalars(select(Event).where(Event.type == BALANCE_LOW)).first()
        assert event.tenant_id == s.tenant.id and event.subject_id == str(s.account_id)


def test_without_a_threshold_nothing_is_announced(world):
    ctx = world.ctx
    s = shop(world, payment_mode="prepaid")
    with ctx.db.write() as w:
        top_up(w, world.system, s.account_id, amount_micros=10_000, method="alipay",
               reference="T1", at=NOV)  # fmt: skip
        set_low_balance(w, world.system, s.account_id, 5_000, at=NOV)
        set_low_balance(w, world.system, s.account_id, None, at=DEC_1)  # cleared
    sub = s.device(offering(ctx, "Per message", [price("per-message", 10_000)]), NOV)
    _send(ctx, sub, 2, 5)
    assert _notices(ctx) == []
    with ctx.db.read() as r:
        changes = r.scalars(
            select(AuditEntry).where(AuditEntry.action == "billing-account.low-balance-set")
        ).all()
    assert [c.after["low_balance_micros"] for c in changes] == [5_000, None]


def test_only_a_prepaid_account_takes_a_threshold_and_only_a_sensible_one(world):
    ctx = world.ctx
    post = shop(world)
    pre = shop(world, uscc="91310115MA1K3BTP2B", payment_mode="prepaid")
    with ctx.db.write() as w, pytest.raises(Conflict, match="no balance to watch"):
        set_low_balance(w, world.system, post.account_id, 1_000_000, at=NOV)
    for bad in (-1, 10**15):
        with ctx.db.write() as w, pytest.raises(InvalidInput) as refused:
            set_low_balance(w, world.system, pre.account_id, bad, at=NOV)
        assert refused.value.extensions["field"] == "low_balance"
    with ctx.db.read() as r:
        assert r.get(BillingAccount, pre.account_id).low_balance_micros is None
