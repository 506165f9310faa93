"""Bill runs: proration, usage, one-time charges, VAT, dry runs, re-runs and late usage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from satiot.bss import billing
from satiot.bss.billing import RunSettings, dry_run, run_bills
from satiot.bss.models import BillLine, BillRun, CustomerBill, UsageRecord
from satiot.bss.money import prorate
from satiot.bss.periods import period_bounds
from satiot.core.errors import InvalidInput
from tests.bss.billing_world import offering, price, rate_all, shop, uplink

SETTINGS = RunSettings(
    tax_rate_bp=600, series_prefix="SAT", payment_terms_days=30, tz="Asia/Shanghai"
)
DEC_1 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, November is over
TERMS = {"tax_rate_bp": 600, "tz": "Asia/Shanghai"}


def _local(y, m, d, h=0):
    return datetime(y, m, d, h, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def setup(world):
    ctx = world.ctx
    s = shop(world)
    off = offering(
        ctx,
        "Tianqi Basic",
        [
            price("recurring", 10_000_000, name="Monthly fee 月功能费"),  # ¥10 per device
            price("one-time", 5_000_000, name="Activation 开通费"),  # ¥5
            price("per-message", 20_000, name="Per message"),  # ¥0.02
        ],
    )
    full = s.device(off, _local(2026, 10, 3))
    half = s.device(off, _local(2026, 11, 16, 9))  # days 16-30: 15 of 30
    gone = s.device(off, _local(2026, 9, 1), terminated_at=_local(2026, 11, 10, 12))  # 1-10
    ended_before = s.device(off, _local(2026, 9, 1), terminated_at=_local(2026, 11, 1))
    for i in range(3):
        uplink(ctx, full, 10, _local(2026, 11, 20) + timedelta(minutes=i))
    uplink(ctx, half, 10, _local(2026, 11, 20))
    rate_all(ctx)
    return ctx, s, off, (full, half, gone, ended_before)


def _bills(ctx):
    with ctx.db.read() as s:
        return list(s.scalars(select(CustomerBill).order_by(CustomerBill.number)))


def test_prorate_rounds_half_up_to_the_micro_yuan():
    assert prorate(10_000_000, 30, 30) == 10_000_000
    assert prorate(10_000_000, 15, 30) == 5_000_000
    assert prorate(1, 1, 2) == 1  # 0.5 rounds up
    assert prorate(10_000_000, 1, 31) == 322_581


def test_a_month_of_recurring_usage_one_time_and_vat(setup, world):
    ctx, _s, _, _ = setup
    told: list[str] = []
    with ctx.db.write() as w:
        run = run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS, step=told.append)
    assert (run.bills, run.status) == (1, "completed")
    (bill,) = _bills(ctx)
    # recurring: full ¥10 + half ¥5 + 10 days ¥3.333333 = ¥18.333333 -> ¥18.33
    assert bill.recurring_micros == 18_330_000
    assert bill.usage_micros == 80_000  # 4 messages x ¥0.02
    assert bill.one_time_micros == 5_000_000  # only the device activated in November
    subtotal = 18_330_000 + 80_000 + 5_000_000
    assert bill.tax_micros == 1_400_000  # 6 % of ¥23.41 = ¥1.4046 -> ¥1.40
    assert bill.total_micros == subtotal + 1_400_000
    assert bill.number == "SAT2026-00000001"
    assert (bill.period_start.isoformat(), bill.period_end.isoformat()) == (
        "2026-11-01",
        "2026-11-30",
    )
    assert bill.state == "new" and bill.due_at == DEC_1 + timedelta(days=30)
    with ctx.db.read() as r:
        lines = list(r.scalars(select(BillLine).where(BillLine.bill_id == bill.id)))
        assert {ln.kind for ln in lines} == {"recurring", "usage", "one-time"}
        recurring = next(ln for ln in lines if ln.kind == "recurring")
        assert recurring.quantity == 3 and "prorated" in recurring.description
        assert "55 of 90 device-days" in recurring.description
        usage = next(ln for ln in lines if ln.kind == "usage")
        assert usage.quantity == 4 and usage.unit == "msg"
        states = r.execute(select(UsageRecord.state, UsageRecord.bill_id)).all()
        assert {(st, b) for st, b in states} == {("billed", bill.id)}
    # what the CLI's spinner says while the run works, step by step
    assert told == [
        "pricing the month: recurring charges, usage, one-time charges",
        "numbering and writing 1 bill",
        f"writing {len(lines)} bill lines",
        "writing each device's fees",
        "marking the month's usage billed",
    ]


def test_the_dry_run_writes_nothing_and_matches_the_real_run(setup, world):
    ctx, s, _, _ = setup
    with ctx.db.read() as r:
        draft = dry_run(r, s.account_id, "2026-11", at=DEC_1, tax_rate_bp=600, tz="Asia/Shanghai")
        counts = (r.scalar(select(func.count()).select_from(BillRun)), len(_bills(ctx)))
    assert counts == (0, 0)
    assert draft is not None
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
    (bill,) = _bills(ctx)
    assert (draft.recurring_micros, draft.usage_micros, draft.one_time_micros) == (
        bill.recurring_micros,
        bill.usage_micros,
        bill.one_time_micros,
    )
    assert (draft.tax_micros, draft.total_micros) == (bill.tax_micros, bill.total_micros)
    with ctx.db.read() as r:  # billed: a dry run now has nothing more to bill
        assert (
            dry_run(r, s.account_id, "2026-11", at=DEC_1, tax_rate_bp=600, tz="Asia/Shanghai")
            is None
        )


def test_rerunning_a_period_bills_nobody_twice(setup, world):
    ctx, *_ = setup
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
    with ctx.db.write() as w:
        again = run_bills(
            w, world.system, "2026-11", at=DEC_1 + timedelta(hours=1), settings=SETTINGS
        )
    assert again.bills == 0
    assert len(_bills(ctx)) == 1


def test_late_usage_joins_the_next_bill(setup, world):
    ctx, _s, _off, (full, *_) = setup
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
    uplink(ctx, full, 10, _local(2026, 11, 30, 23))  # November usage arriving late
    rate_all(ctx)
    with ctx.db.write() as w:
        run_bills(
            w, world.system, "2026-12", at=datetime(2027, 1, 1, tzinfo=UTC), settings=SETTINGS
        )
    _nov, dec = _bills(ctx)
    assert dec.period == "2026-12" and dec.usage_micros == 20_000
    assert dec.number == "SAT2027-00000001"  # issued in 2027: the new year's series


def test_a_period_is_billed_only_once_it_is_over(setup, world):
    ctx, *_ = setup
    with ctx.db.write() as w, pytest.raises(InvalidInput):
        run_bills(w, world.system, "2026-11", at=_local(2026, 11, 30, 23), settings=SETTINGS)


@pytest.mark.parametrize("period", ["1970-01", "2026-08"])
def test_a_month_before_the_first_activation_is_not_run(setup, world, period):
    """Nothing can be charged for it: an empty run on record would be a typo taken for fact."""
    ctx, *_ = setup
    with ctx.db.write() as w, pytest.raises(InvalidInput) as caught:
        run_bills(w, world.system, period, at=DEC_1, settings=SETTINGS)
    assert caught.value.extensions["field"] == "period"
    assert "the first subscription was activated on 2026-09-01" in caught.value.detail
    with ctx.db.read() as r:
        assert r.scalar(select(func.count()).select_from(BillRun)) == 0
    # The month of the first activation runs, and so does a later one that bills nobody.
    with ctx.db.write() as w:
        assert run_bills(w, world.system, "2026-09", at=DEC_1, settings=SETTINGS).bills == 1


def test_a_run_for_accounts_with_nothing_activated_is_refused(setup, world):
    ctx, *_ = setup
    with ctx.db.write() as w, pytest.raises(InvalidInput, match="no subscription has been"):
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS, accounts=[uuid.uuid4()])


def test_a_dry_run_of_a_month_not_begun_is_refused(setup):
    ctx, s, *_ = setup
    with ctx.db.read() as r:
        with pytest.raises(InvalidInput, match="period 2026-12 has not begun"):
            dry_run(r, s.account_id, "2026-12", at=_local(2026, 11, 30, 23), **TERMS)
        assert dry_run(r, s.account_id, "2026-12", at=_local(2026, 12, 1), **TERMS) is not None


def test_activation_just_after_local_midnight_is_a_full_month(world):
    ctx = world.ctx
    s = shop(world)
    off = offering(ctx, "Monthly", [price("recurring", 31_000_000)])
    s.device(off, datetime(2026, 10, 31, 16, 30, tzinfo=UTC))  # 1 Nov 00:30 in Beijing
    with ctx.db.read() as r:
        draft = billing.compute(r, period_bounds("2026-11"), tax_rate_bp=0)[0]
    assert draft.recurring_micros == 31_000_000
    assert "prorated" not in draft.lines[0].description


def test_several_accounts_get_one_bill_each_numbered_in_account_order(world):
    ctx = world.ctx
    off = offering(ctx, "Monthly", [price("recurring", 1_000_000)])
    shops = [shop(world, uscc=u) for u in ("91110000600037341L", "91310115MA1K3BTP2B")]
    for sh in shops:
        sh.device(off, _local(2026, 10, 1))
        sh.device(off, _local(2026, 10, 1), account_id=sh.account())
    with ctx.db.write() as w:
        run = run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
    bills = _bills(ctx)
    assert run.bills == 4 and [b.number[-2:] for b in bills] == ["01", "02", "03", "04"]
    assert [b.billing_account_id for b in bills] == sorted(b.billing_account_id for b in bills)
    assert {b.tenant_id for b in bills} == {sh.tenant.id for sh in shops}
